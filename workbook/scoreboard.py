"""Lesson 11's scoreboard: one model under every serving stack, measured side by side in one run."""

import json
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import (WorkbookError, badinput, bench, containers, floor, footprint, imagefs, inventory, layers,
               service, stacks)
from .measure import record, write_csv

OUT = bench.OUT


@dataclass(frozen=True)
class Contender:
    """One image on the scoreboard: how to build it, what its health check asks, how to ask it."""

    name: str
    title: str
    kind: str  # "hand-written", "framework" or "floor": the decision table compares the kinds
    health: str
    protocol: str  # as stacks.Stack.protocol: records, wrapped or v2
    variant: str = ""  # a VARIANTS rung of docker/app; else a stack of docker/stacks, or a traced image

    def build(self, client):
        """The contender's image, built (or found in the layer cache) like the lessons build it."""
        if self.variant:
            image = service.build(client, self.variant, log="none")
            if self.kind != "floor":
                return image
            return floor.build(client, service.tag(self.variant), service.LADDER_OWNER, log="none")
        return stacks.build(client, stacks.STACKS[self.name])


FLASK = "Flask + gunicorn"
CONTENDERS = {c.name: c for c in (
    Contender("production", f"{FLASK} (production)", "hand-written", "/health", "records", "production"),
    Contender("minimal", f"{FLASK} (minimal)", "hand-written", "/health", "records", "minimal"),
    Contender("traced", f"{FLASK} (traced)", "floor", "/health", "records", "production"),
    Contender("onnx", "ONNX Runtime + Flask", "hand-written", "/health", "records", "onnx"),
    Contender("onnx-traced", "ONNX Runtime + Flask (traced)", "floor", "/health", "records", "onnx"),
    *(Contender(s.name, s.title, "framework", s.health, s.protocol) for s in stacks.STACKS.values()),
)}
# Features a framework adds, seen from outside: a path that answers 200 on the service port.
FEATURES = {"OpenAPI schema": ("/openapi.json", "/docs.json", "/v2/docs/dataplane.json"),
            "Prometheus metrics on the service port": ("/metrics",)}


# --- one contender's figures ----------------------------------------------------------------

def started(client, image, contender, owner, **kw):
    """A running container of `image`, answering 200 on its health path (or WorkbookError)."""
    c = service.run(client, image, owner, kind=contender.name, **kw)
    try:
        service.wait_ready(c, timeout=90, path=contender.health)
    except WorkbookError as exc:
        exc.why = why_stopped(c.logs().decode(errors="replace"))
        c.remove(force=True)
        raise
    return c


def why_stopped(log):
    """The line of a log that says why a process ended: the last OS error, else the last line."""
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    return next((ln for ln in reversed(lines) if "[Errno" in ln), lines[-1] if lines else "")


def start_times(client, image, contender, owner, runs):
    """Seconds from `docker run` to the first 200 on the health path, and to Docker's 'healthy'."""
    first, healthy = [], []
    for _ in range(runs):
        a, b = bench.start_seconds(client, image, owner, path=contender.health)
        first.append(a)
        healthy.append(b)
    return {"first 200": timing(first), "healthy": timing(healthy)}


def timing(runs):
    """Repeated seconds as JSON keeps them: the runs, their min and median."""
    return {"runs": runs, "min": min(runs), "median": statistics.median(runs)}


def under_load(container, url, body, clients, seconds):
    """(requests per second with `clients` senders, most memory in use while they send)."""
    seen, stop = [], threading.Event()

    def sample():
        while not stop.is_set():
            seen.append(bench.memory_in_use(container))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        rate = bench.throughput(url, body, clients=clients, seconds=seconds)
    finally:
        stop.set()
        sampler.join(timeout=10)
    return rate, max(seen, default=bench.memory_in_use(container))


def bad_input(contender, url):
    """{case: HTTP status} of every bad body of workbook/badinput.py, said in the stack's protocol."""
    statuses = {}
    for case, raw in badinput.CASES.items():
        said = stacks.bad_payload(contender.protocol, raw)
        if said is None:
            continue  # cannot be said in this protocol (a tensor has no feature names)
        statuses[case] = service.call(url, said[0], raw=said[1], timeout=30)[0]
    return statuses


def features(url):
    """The FEATURES a running service shows: name -> the path that answered 200, or None."""
    found = {}
    for name, paths in FEATURES.items():
        found[name] = next((p for p in paths if _status(url, p) == 200), None)
    return found


def _status(url, path):
    """The status GET url+path answers, or None when nothing answers."""
    try:
        return service.call(url, path, timeout=5)[0]
    except OSError:
        return None


def writes(container):
    """The folders a container added files or folders to (`docker diff`, A lines), top-most only."""
    added = sorted(d["Path"] for d in container.diff() or [] if d["Kind"] == 1)
    tops = [p for p in added if not any(p.startswith(q + "/") for q in added)]
    return sorted({p.rsplit("/", 1)[0] or "/" for p in tops})


def hardened(client, image, contender, owner, flowers, expected):
    """How the image serves under `--read-only --cap-drop ALL`: ('yes' | 'with --tmpfs /tmp' | 'no',
    the log line that said why it could not as it is, or "")."""
    why = ""
    for extra, verdict in (({}, "yes"), ({"tmpfs": {"/tmp": ""}}, "with --tmpfs /tmp")):
        try:
            c = started(client, image, contender, owner, read_only=True, cap_drop=["ALL"], **extra)
        except WorkbookError as exc:
            why = why or getattr(exc, "why", "")
            continue
        try:
            if stacks.ask(contender, service.url(c), flowers) == expected:
                return verdict, why
        except (WorkbookError, OSError):
            pass
        finally:
            c.remove(force=True)
    return "no", why


def measure(client, contender, owner, bound, expected, params):
    """Every figure of one contender (expected: the reference labels of the 30 flowers, or None)."""
    image = contender.build(client)
    ref = image.tags[0] if image.tags else image.id
    files = inventory.Files()  # one `docker save` for both dive's figures and the inventory
    saved = imagefs.read(client, image, files)
    packages = files.packages(saved)
    row = {"name": contender.name, "title": contender.title, "kind": contender.kind, "image": ref,
           "protocol": contender.protocol,
           "bytes": image.attrs["Size"], "times_bound": image.attrs["Size"] / bound,
           "efficiency": layers.efficiency(layers.dive_layers(saved)).efficiency, "packages": len(packages),
           "advisories": len(inventory.advisories(packages)),
           "starts": start_times(client, image.id, contender, owner, params["starts"])}
    flowers = stacks.flowers()
    c = started(client, image.id, contender, owner)
    try:
        url = service.url(c)
        row["labels"] = stacks.ask(contender, url, flowers)
        row["same_labels"] = expected is None or row["labels"] == expected
        row["uid"] = containers.first_uid(c)
        row["processes"] = len(c.top()["Processes"])  # docker top
        path, body = stacks.payload(contender.protocol, flowers[:1])
        row["latency"] = bench.latency(url + path, body, n=params["requests"], warmup=10)
        row["memory_idle"] = bench.memory_in_use(c)
        row["throughput"], row["memory_load"] = under_load(c, url + path, body, params["clients"],
                                                           params["seconds"])
        row["bad_input"] = bad_input(contender, url)
        row["features"] = features(url)
        row["writes"] = writes(c)
    finally:
        c.remove(force=True)
    row["hardened"], row["hardened_why"] = hardened(client, image.id, contender, owner, flowers, row["labels"])
    return row


def run(client, owner, params, names=None, progress=print):
    """The scoreboard: every contender's row, production's first (its labels are the reference)."""
    bound = footprint.trace(client, service.tag("production"), owner).bytes
    rows, expected = [], None
    for name in names or CONTENDERS:
        started_at = time.perf_counter()
        row = measure(client, CONTENDERS[name], owner, bound, expected, params)
        expected = expected or row["labels"]
        rows.append(row)
        progress(f"{name}: measured in {time.perf_counter() - started_at:.0f} s")
    return {"bound": bound, "params": params, "rows": rows}


# --- reading it --------------------------------------------------------------------------------

def fours(row):
    """(bad bodies answered with a 4xx, bodies sent)."""
    return sum(400 <= s < 500 for s in row["bad_input"].values()), len(row["bad_input"])


def ranked(board):
    """The rows that gave the reference labels, smallest image first; the others are never ranked."""
    return sorted((r for r in board["rows"] if r["same_labels"]), key=lambda r: r["bytes"])


def unranked(board):
    """The rows whose labels differ from production's on the 30 flowers."""
    return [r for r in board["rows"] if not r["same_labels"]]


def write(board, engine_version):
    """build/bench/scoreboard.json (with the machine) and scoreboard.csv (one row per image)."""
    path = record("scoreboard", board, engine_version)
    flat = [{"name": r["name"], "kind": r["kind"], "bytes": r["bytes"], "times_bound": round(r["times_bound"], 3),
             "efficiency": round(r["efficiency"], 4), "packages": r["packages"], "advisories": r["advisories"],
             "first_200_s": round(r["starts"]["first 200"]["median"], 3),
             "healthy_s": round(r["starts"]["healthy"]["median"], 3),
             "p50_ms": round(r["latency"]["p50"] * 1000, 3), "p99_ms": round(r["latency"]["p99"] * 1000, 3),
             "throughput_rps": round(r["throughput"], 1), "memory_idle": r["memory_idle"],
             "memory_load": r["memory_load"], "uid": r["uid"], "hardened": r["hardened"],
             "bad_input_4xx": "%d/%d" % fours(r), "same_labels": r["same_labels"]} for r in board["rows"]]
    write_csv(OUT / "scoreboard.csv", flat)
    return path


def load(path=None):
    """A written scoreboard (build/bench/scoreboard.json): (board, machine, measured_at)."""
    doc = json.loads(Path(path or OUT / "scoreboard.json").read_text())
    return doc["figures"], doc["machine"], doc["measured_at"]


def table(board):
    """(header, rows) of the scoreboard for show.table: ranked rows first, then the unranked."""
    from .measure import size
    header = ["#", "stack", "size", "× bound", "dive eff.", "packages", "advisories", "first 200",
              "healthy", "p50", "p99", "req/s (8 clients)", "memory idle / load", "uid",
              "--read-only --cap-drop ALL", "bad input 4xx", "features"]
    rows = []
    for rank, r in [(i + 1, r) for i, r in enumerate(ranked(board))] + [("—", r) for r in unranked(board)]:
        rows.append([rank, r["title"] + ("" if r["same_labels"] else " (labels differ: not ranked)"),
                     size(r["bytes"]), f"{r['times_bound']:.2f}×", f"{r['efficiency']:.1%}", r["packages"],
                     r["advisories"], f"{r['starts']['first 200']['median']:.2f} s",
                     f"{r['starts']['healthy']['median']:.2f} s", bench.ms(r["latency"]["p50"]),
                     bench.ms(r["latency"]["p99"]), f"{r['throughput']:.0f}",
                     f"{size(r['memory_idle'])} / {size(r['memory_load'])}", r["uid"], r["hardened"],
                     "%d/%d" % fours(r), ", ".join(f.split()[0] for f, path in r["features"].items() if path) or "—"])
    return header, rows


def charts(board, machine, out=None):
    """build/bench/scoreboard.png: size against the bound, start, latency, throughput, memory."""
    import matplotlib.pyplot as plt
    rows = ranked(board) + unranked(board)
    names = [r["name"] + ("" if r["same_labels"] else " ✗") for r in rows]
    colours = [{"hand-written": "#4c72b0", "floor": "#55a868", "framework": "#dd8452"}[r["kind"]]
               if r["same_labels"] else "#bbbbbb" for r in rows]
    panels = [("image size (MB)", [r["bytes"] / 1e6 for r in rows]),
              ("docker run → first 200 (s, median)", [r["starts"]["first 200"]["median"] for r in rows]),
              ("p50 of one prediction (ms)", [r["latency"]["p50"] * 1000 for r in rows]),
              ("requests/s, 8 clients", [r["throughput"] for r in rows]),
              ("memory under load (MB)", [r["memory_load"] / 1e6 for r in rows]),
              ("bad bodies answered 4xx (%)", [100 * fours(r)[0] / max(fours(r)[1], 1) for r in rows])]
    fig, axes = plt.subplots(2, 3, figsize=(12, 0.3 * len(rows) * 2 + 2.5), sharey=True)
    for ax, (title, values) in zip(axes.flat, panels):
        ax.barh(names, values, color=colours)
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=8)
    axes.flat[0].axvline(board["bound"] / 1e6, color="#c44e52", linestyle="--", linewidth=1)
    axes.flat[0].invert_yaxis()
    fig.suptitle(f"One model, {len(rows)} images (blue: hand-written, green: traced floor, orange: "
                 f"framework) — {machine['host']}, {machine['cores']} cores", fontsize=10)
    fig.tight_layout()
    path = Path(out or OUT / "scoreboard.png")
    fig.savefig(path, dpi=100)
    return fig, path


# What a learner may need, and how the scoreboard decides it: (need, rows that meet it, the figure
# to pick by, lowest or highest wins). "ok" rows run non-root, survive a hardened run and gave the labels.
NEEDS = [
    ("predictions only, smallest image", lambda r: True, "bytes", min),
    ("predictions only, quickest start", lambda r: True, "first_200", min),
    ("lowest latency (p50)", lambda r: True, "p50", min),
    ("most requests/s at 8 clients", lambda r: True, "throughput", max),
    ("least memory under load", lambda r: True, "memory_load", min),
    ("every bad body refused with a 4xx", lambda r: fours(r)[0] == len(badinput.CASES), "bytes", min),
    ("an OpenAPI schema served for you", lambda r: r["features"]["OpenAPI schema"], "bytes", min),
    ("Prometheus metrics on the service port", lambda r: r["features"]["Prometheus metrics on the service port"],
     "bytes", min),
    ("the V2 inference protocol (KServe, Triton clients)", lambda r: r["protocol"] == "v2", "bytes", min),
]


TIE = 0.05


def figure(row, name):
    """One figure of a row by a short name (bytes, first_200, p50, throughput, memory_load)."""
    return {"bytes": row["bytes"], "first_200": row["starts"]["first 200"]["median"],
            "p50": row["latency"]["p50"], "throughput": row["throughput"],
            "memory_load": row["memory_load"]}[name]


def ok(row):
    """Ranked, non-root, and it serves under --read-only --cap-drop ALL (with a tmpfs at most)."""
    return row["same_labels"] and row["uid"] not in (0, None) and row["hardened"] != "no"


def decisions(board):
    """The decision table: each need -> the image that meets it best, and its cost against the
    best hand-written image for the same figure (computed from the board, never asserted)."""
    rows = [r for r in board["rows"] if ok(r)]
    hand = [r for r in rows if r["kind"] != "framework"]
    table = []
    for need, meets, by, best in NEEDS:
        fit = [r for r in rows if meets(r)]
        if not fit:
            table.append((need, "none of them", "", ""))
            continue
        top = figure(best(fit, key=lambda r: figure(r, by)), by)
        # within TIE of the best is a tie (runs differ by that much): the smaller image wins it
        pick = min((r for r in fit if abs(figure(r, by) - top) <= TIE * abs(top)), key=lambda r: r["bytes"])
        base = min(hand, key=lambda r: figure(r, "bytes")) if hand else pick
        cost = (f"{pick['bytes'] / base['bytes']:.2f}× the size, "
                f"{figure(pick, 'first_200') / figure(base, 'first_200'):.2f}× the start of {base['name']}")
        table.append((need, pick["title"], pick["kind"], "—" if pick is base else cost))
    return table
