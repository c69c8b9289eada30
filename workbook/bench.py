"""The benchmark of lesson 08 and `make bench`: the image ladder measured side by side."""

import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from . import BUILD, WorkbookError, bases, compose, images, layers, notebooks, resources, service
from .measure import record, write_csv

OUT = BUILD / "bench"
ONE = service.SAMPLES[0][0]
BATCH = [dict(service.SAMPLES[i % 3][0], sepal_length=4.5 + i / 100) for i in range(100)]


def variants():
    """Every image the benchmark compares: the ladder, plus the ONNX rung."""
    return dict(service.VARIANTS)


# --- sizes ---------------------------------------------------------------------------------

def size_row(client, variant):
    """Total bytes, layers with files, and dive's efficiency and wasted bytes of one image."""
    ref = service.tag(variant)
    image = client.images.get(ref)
    eff = layers.analyse(client, ref)
    sized = [h["Size"] for h in image.history() if h["Size"]]
    return {"variant": variant, "bytes": image.attrs["Size"], "layers_with_files": len(sized),
            "largest_layer": max(sized), "efficiency": eff.efficiency,
            "wasted_bytes": eff.wasted_bytes, "user_wasted_fraction": eff.user_wasted_fraction}


# --- build times --------------------------------------------------------------------------

def build_seconds(client, variant, owner, context=service.APP, nocache=False, tag=None):
    """Seconds for one `docker build` of a variant (nocache: every step runs again)."""
    start = time.perf_counter()
    service.build(client, variant, owner=owner, context=context, log="none", nocache=nocache,
                  tag=tag or f"workbook/bench:{variant}")
    return time.perf_counter() - start


def code_change(context, n):
    """Change the service's code (a comment), as an edit before a rebuild would."""
    app = Path(context) / "app.py"
    app.write_text(app.read_text() + f"\n# benchmark edit {n}\n")


# --- start times ----------------------------------------------------------------------------

def start_seconds(client, image, owner, path="/health"):
    """(seconds from `docker run` to the first 200 on `path`, to Docker's 'healthy')."""
    start = time.perf_counter()
    c = service.run(client, image, owner, kind="start")
    try:
        service.wait_ready(c, timeout=90, path=path)
        answered = time.perf_counter() - start
        service.wait_healthy(c, timeout=90)
        return answered, time.perf_counter() - start
    finally:
        c.remove(force=True)


# --- latency and throughput -----------------------------------------------------------------

def post(url, body, timeout=10):
    """One POST of JSON; the seconds it took (raises on anything but 200)."""
    data = json.dumps(body).encode()
    start = time.perf_counter()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        resp.read()
        if resp.status != 200:
            raise WorkbookError(f"{url} answered {resp.status}")
    return time.perf_counter() - start


def latency(url, body, n=200, warmup=20):
    """p50, p95, p99 and mean seconds of `n` sequential requests, after `warmup` untimed ones."""
    for _ in range(warmup):
        post(url, body)
    runs = sorted(post(url, body) for _ in range(n))
    return {"p50": statistics.median(runs), "p95": runs[int(0.95 * (len(runs) - 1))],
            "p99": runs[int(0.99 * (len(runs) - 1))], "mean": statistics.fmean(runs), "n": n}


def throughput(url, body, clients=8, seconds=3.0):
    """Requests per second answered with `clients` concurrent senders for `seconds`."""
    done, stop = [0] * clients, threading.Event()

    def sender(i):
        while not stop.is_set():
            post(url, body)
            done[i] += 1

    threads = [threading.Thread(target=sender, args=(i,), daemon=True) for i in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(timeout=15)
    return sum(done) / (time.perf_counter() - start)


def answered(url, path, timeout, problem, fix):
    """Poll GET url+path until it answers 200; raise WorkbookError(problem, fix) after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if service.call(url, path, timeout=2)[0] == 200:
                return
        except (OSError, LookupError):  # not listening yet, or its port not published yet
            time.sleep(0.05)
    raise WorkbookError(problem, fix)


class HostServer:
    """The service under gunicorn on this machine (no container), on 127.0.0.1."""

    def __init__(self, workers):
        self.workers, self.port, self.proc = workers, resources.free_port(), None

    def __enter__(self):
        env = {**os.environ, "WORKERS": str(self.workers), "MODEL_PATH": str(service.ensure_model()),
               "LOG_LEVEL": "warning"}
        gunicorn = Path(sys.executable).parent / "gunicorn"
        self.proc = subprocess.Popen([str(gunicorn), "--config", "gunicorn.conf.py", "--bind",
                                      f"127.0.0.1:{self.port}", "app:create_app()"],
                                     cwd=service.APP, env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        try:
            answered(self.url, "/health", 60, "gunicorn on the host did not answer /health in 60 s.",
                     "Run `make install`; then try the gunicorn command by hand.")
        except WorkbookError:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(timeout=20)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"


class Container:
    """The service in a container from `image`, on 127.0.0.1: through a published port (and
    on `network`, as `api`), or on the host's network stack with no port publishing at all."""

    def __init__(self, client, image, owner, workers, network=None, host_network=False):
        self.client, self.image, self.owner, self.workers = client, image, owner, workers
        self.network, self.host_network, self.c, self.port = network, host_network, None, None

    def __enter__(self):
        env = {"WORKERS": str(self.workers), "LOG_LEVEL": "warning"}
        if self.host_network:
            # gunicorn.conf.py binds 0.0.0.0; on the host's network that would be every
            # interface, so bind loopback only (command-line settings win over the file).
            self.port = resources.free_port()
            env["GUNICORN_CMD_ARGS"] = f"--bind 127.0.0.1:{self.port}"
            self.c = self.client.containers.run(
                self.image, detach=True, network_mode="host", environment=env,
                name=resources.unique_name(self.owner, "bench"), labels=resources.labels(self.owner))
        else:
            self.c = service.run(self.client, self.image, self.owner, kind="bench", env=env,
                                 network=self.network)
        if self.network:  # nginx finds it as `api`, as in the compose stack
            self.client.networks.get(self.network).disconnect(self.c)
            self.client.networks.get(self.network).connect(self.c, aliases=["api"])
        if self.host_network:
            answered(self.url, "/health", 60, f"{self.c.name} did not answer on 127.0.0.1:"
                     f"{self.port} in 60 s.", "Read its log: `docker logs` of it.")
        else:
            service.wait_ready(self.c)
        return self

    def __exit__(self, *exc):
        self.c.remove(force=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}" if self.host_network else service.url(self.c)

    def memory(self):
        """Bytes of memory in use (`docker stats`: usage minus page cache)."""
        return memory_in_use(self.c)


def memory_in_use(container):
    """Bytes of memory a container uses, as `docker stats` counts it: usage minus page cache."""
    stats = container.stats(stream=False)["memory_stats"]
    cache = stats.get("stats", {}).get("inactive_file", stats.get("stats", {}).get("cache", 0))
    return stats["usage"] - cache


class Proxy:
    """nginx (docker/compose/nginx) in front of a network, published on 127.0.0.1."""

    def __init__(self, client, owner, network):
        self.client, self.owner, self.network, self.c = client, owner, network, None

    def __enter__(self):
        tag = f"workbook/bench-nginx:{self.owner.split('_')[0]}"
        images.build(self.client, compose.STACK / "nginx", tag, self.owner, log="none",
                     buildargs={"NGINX_IMAGE": bases.resolve("nginx", self.client).ref})
        self.c = self.client.containers.run(
            tag, detach=True, name=resources.unique_name(self.owner, "nginx"),
            labels=resources.labels(self.owner), network=self.network,
            ports={"80/tcp": ("127.0.0.1", None)})
        answered(self.url, "/healthz", 30, "nginx did not answer /healthz in 30 s.",
                 "Read `docker logs` of it.")
        return self

    def __exit__(self, *exc):
        self.c.remove(force=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{resources.host_port(self.c, '80/tcp')}"


def network(client, owner):
    """A labelled bridge network for a benchmark's containers."""
    return client.networks.create(resources.unique_name(owner, "net"), labels=resources.labels(owner))


# --- results --------------------------------------------------------------------------------

def notebook_durations(report=BUILD / "report.json"):
    """Seconds each notebook took in the last `make run` ({} before the first run)."""
    return notebooks.past_durations(report)


def write(results, engine_version):
    """build/bench/results.json (with the machine) and results.csv (one row per image)."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = record("results", results, engine_version)
    write_csv(OUT / "results.csv", results["images"])
    return path


def charts(results=None):
    """build/bench/{builds,starts,latency}.png from results.json (sizes.png: lesson 08 itself)."""
    import matplotlib
    matplotlib.use("Agg")  # files only: no display needed under `make bench`
    import matplotlib.pyplot as plt
    doc = json.loads(Path(results or OUT / "results.json").read_text())
    figures, machine_line = doc["figures"], f"{doc['machine']['host']}, {doc['machine']['cores']} cores"
    made = []

    def bars(name, title, xlabel, rows):
        fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.2))
        ax.barh([r[0] for r in rows], [r[1] for r in rows], color="#4c72b0")
        ax.invert_yaxis()
        ax.set_xlabel(xlabel)
        ax.set_title(f"{title} ({machine_line})", fontsize=10)
        fig.tight_layout()
        fig.savefig(OUT / name, dpi=100)
        plt.close(fig)
        made.append(OUT / name)

    bars("builds.png", "Build time, median", "seconds",
         [(f"{v} {kind}", t["median"]) for v, b in figures["builds"].items() for kind, t in b.items()])
    bars("starts.png", "docker run to first 200 on /health, median", "seconds",
         [(v, s["first 200"]["median"]) for v, s in figures["starts"].items()])
    bars("latency.png", "p50 of one prediction", "milliseconds",
         [(k, v["one"]["p50"] * 1000) for k, v in figures["paths"].items()])
    return made


def ms(s):
    """Milliseconds with two decimals: request latencies are too short for whole ms."""
    return f"{s * 1000:.2f} ms"


def bucket(ratio):
    """A factor as a stable bucket for prose: 'about the same', '1.5-2x', '2-5x', ..."""
    for low, high, text in [(0, 1.15, "about the same"), (1.15, 1.5, "1.15-1.5×"),
                            (1.5, 2, "1.5-2×"), (2, 5, "2-5×"), (5, 10, "5-10×"),
                            (10, 100, "10-100×"), (100, float("inf"), "over 100×")]:
        if low <= ratio < high:
            return text
    return "less than 1×"  # negative: not a factor

