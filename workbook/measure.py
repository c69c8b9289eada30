"""Repeat a measurement, report min/median with units a reader can compare, record figures."""

import csv
import json
import os
import platform
import statistics
import time
from datetime import datetime, timezone
from dataclasses import dataclass, field

import workbook  # workbook.BUILD is read at each call: tests point it elsewhere


@dataclass
class Timing:
    """Wall-clock seconds of repeated runs."""

    runs: list = field(default_factory=list)

    @property
    def min(self):
        return min(self.runs)

    @property
    def median(self):
        return statistics.median(self.runs)

    def __str__(self):
        return f"min {seconds(self.min)}, median {seconds(self.median)} over {len(self.runs)} runs"


def repeat(fn, runs=5, warmup=1):
    """Time fn() `runs` times after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    t = Timing()
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        t.runs.append(time.perf_counter() - start)
    return t


def seconds(s):
    """Format a duration: '412 ms', '3.21 s', '2.5 min'."""
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 120:
        return f"{s:.2f} s"
    return f"{s / 60:.1f} min"


def size(n):
    """Format a byte count in decimal units, as `docker images` does: '74.8 MB'."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000


def machine():
    """Where a figure was measured: host name, cores, OS, architecture, engine."""
    return {"host": platform.node() or "host", "cores": os.cpu_count(),
            "os": f"{platform.system()} {platform.release()}", "arch": platform.machine()}


def record(name, figures, engine_version=None):
    """Write build/bench/NAME.json: the figures of one run, with the machine and the time."""
    out = workbook.BUILD / "bench" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"name": name, "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "machine": {**machine(), "engine": engine_version}, "figures": figures}
    out.write_text(json.dumps(doc, indent=2, default=_plain) + "\n")
    return out


def write_csv(path, rows):
    """Write dict rows as CSV, one column per key of the first row."""
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _plain(value):
    if isinstance(value, Timing):
        return {"runs": value.runs, "min": value.min, "median": value.median}
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
