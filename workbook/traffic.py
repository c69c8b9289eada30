"""Continuous requests in the background while something changes (a kill, an update)."""

import threading
import time
from collections import Counter

from . import service


class Traffic:
    """POST flowers to `url` (a /predict endpoint) from a thread until the `with` block ends.

    with Traffic("http://127.0.0.1:8080/api/predict") as traffic:
        ...               # kill a replica, roll out an update
    traffic.sent, traffic.failed, traffic.versions, traffic.served_by, traffic.errors,
    traffic.timeline: (seconds since the start, model version or None when it failed) per request
    """

    # pause: about 40 requests a second, steady traffic that leaves the CPU to the services.
    def __init__(self, url, headers=None, pause=0.02, timeout=5, vary=50):
        self.url, self.headers, self.pause, self.timeout, self.vary = url, headers, pause, timeout, vary
        self.sent = self.failed = 0
        self.versions, self.served_by = Counter(), Counter()
        self.errors = []  # the first few failures, to read
        self.timeline, self.marks = [], []  # marks: (seconds since the start, what happened then)
        self._start = time.perf_counter()
        self.seconds = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        start, flower = self._start, dict(service.SAMPLES[0][0])
        while not self._stop.is_set():
            # A slightly different flower each time, so that a cache cannot answer them all.
            flower["sepal_length"] = round(4.5 + (self.sent % self.vary) / 100, 2)
            self.sent += 1
            sent_at = time.perf_counter() - start
            try:
                status, body = service.call(self.url, "", flower, self.timeout, headers=self.headers)
            except OSError as exc:
                status, body = None, repr(exc)
            self.timeline.append((sent_at, body["model_version"] if status == 200 else None))
            if status == 200:
                self.versions[body["model_version"]] += 1
                self.served_by[body["served_by"]] += 1
            else:
                self.failed += 1
                if len(self.errors) < 5:
                    self.errors.append((status, str(body)[:200]))
            if self.pause:
                time.sleep(self.pause)
        self.seconds = time.perf_counter() - start

    def mark(self, what):
        """Note when something happened (an update started, a task was killed), for the timeline."""
        self.marks.append((time.perf_counter() - self._start, what))

    def __enter__(self):
        self._start = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=self.timeout + 1)

    def __str__(self):
        return f"{self.sent} requests, {self.failed} failed, versions {dict(self.versions)}"
