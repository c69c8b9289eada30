"""Execute notebooks (papermill for runs, nbclient for committed copies) and report on them."""

import contextlib
import hashlib
import json
import os
import signal
import sys
import time
from pathlib import Path

import nbformat

from . import BUILD, ROOT, WorkbookError
from .show import markdown_table

DIRS = ("notebooks", "solutions")
EXECUTED = BUILD / "executed"
REPORT = BUILD / "report.md"
KERNEL = "python3"
CELL_TIMEOUT = 1800


def committed():
    """Every committed lesson and solution notebook, in order."""
    return sorted(p for d in DIRS for p in (ROOT / d).glob("*.ipynb"))


def code_hash(nb):
    """A hash of the notebook's code, to tell whether its outputs are from this code."""
    sources = [c.source for c in nb.cells if c.cell_type == "code"
               and "injected-parameters" not in c.metadata.get("tags", [])]
    return hashlib.sha256(json.dumps(sources).encode()).hexdigest()


def stamp_of(nb):
    """The code hash recorded when the notebook was last executed in place."""
    return nb.metadata.get("workbook", {}).get("code_sha256")


def parameters_cell(nb):
    """The cell tagged 'parameters' (papermill), or None."""
    return next((c for c in nb.cells if c.cell_type == "code"
                 and "parameters" in c.metadata.get("tags", [])), None)


def _rel(path):
    """A path relative to the repository when it is inside it."""
    try:
        return Path(path).resolve().relative_to(ROOT)
    except ValueError:
        return Path(path)


def execute_in_place(path):
    """Run a committed notebook top to bottom, keep its outputs, and stamp its code hash."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    path = Path(path).resolve()
    nb = nbformat.read(path, as_version=4)
    print(f"executing {_rel(path)} ...", flush=True)
    start = time.perf_counter()
    try:
        NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name=KERNEL,
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    except CellExecutionError as exc:
        raise WorkbookError(f"{path.name} failed:\n{str(exc)[-2000:]}",
                            "Fix the cell; the committed copy was left as it was.") from None
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = merged_streams(cell.outputs)
    nb.metadata["workbook"] = {"code_sha256": code_hash(nb)}
    nbformat.write(nb, path)
    print(f"  done in {time.perf_counter() - start:.0f} s", flush=True)


def merged_streams(outputs):
    """Outputs with each run of stdout (or stderr) pieces joined into one, as Jupyter shows
    them: a build prints a step's line in parts (nbval compares them joined too)."""
    merged = []
    for out in outputs:
        if (out.get("output_type") == "stream" and merged
                and merged[-1].get("output_type") == "stream" and merged[-1]["name"] == out["name"]):
            merged[-1]["text"] += out["text"]
        else:
            merged.append(out)
    return merged


def figures_of(nb):
    """The figures a notebook's summary cell recorded (see show.summary)."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            wb = out.get("metadata", {}).get("workbook")
            if wb and "figures" in wb:
                return dict(wb["figures"])  # stored as pairs: JSON objects lose their order
    return {}


RUN_DEFAULTS = {"repeats": 5}  # `make run` favours a quick pass; lessons default to more


def injected_parameters(path, extra=None):
    """What `make run` injects into a notebook: defaults, WORKBOOK_REPEATS, then `extra`,
    limited to the names its parameters cell declares."""
    import papermill as pm
    params = dict(RUN_DEFAULTS)
    if os.environ.get("WORKBOOK_REPEATS"):
        params["repeats"] = int(os.environ["WORKBOOK_REPEATS"])
    params.update(extra or {})
    declared = pm.inspect_notebook(str(path))
    return {k: v for k, v in params.items() if k in declared}


def run_all(paths=None, parameters=None, report_to=None):
    """Execute notebooks headless with papermill into build/executed/, write build/report.md."""
    EXECUTED.mkdir(parents=True, exist_ok=True)
    paths = [Path(p).resolve() for p in paths] if paths else committed()
    report_to = report_to or REPORT
    guesses = estimates(paths, past_durations(report_to.with_suffix(".json")))
    print(f"{len(paths)} notebooks into {_rel(EXECUTED)}/ ({eta_text(left(guesses, 0))})", flush=True)
    live = interactive()
    rows = []
    # Ctrl-C: papermill's own clean-up can hang or be cut short by a second Ctrl-C, and the
    # kernel runs in a session of its own; so the handler ends the kernels itself and exits.
    previous = signal.signal(signal.SIGINT, lambda *_: _interrupted(paths, len(rows)))
    try:
        for i in range(1, len(paths) + 1):
            rows.append(_run_one(i, paths, parameters, guesses, live))
    finally:
        signal.signal(signal.SIGINT, previous)
    write_reports(rows, report_to)
    print(f"report: {report_to}")
    return 1 if any(r[1] != "ok" for r in rows) else 0


def _interrupted(paths, done):
    """On Ctrl-C: end the kernel and what it ran, say where the run stopped, exit 130."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut this short
    stopped = stop_children()
    print(f"\ninterrupted: {_rel(paths[done])} (notebook {done + 1} of {len(paths)}) stopped "
          f"with its kernel ({stopped} process group{'s' if stopped != 1 else ''} ended). What it "
          f"had started carries the label workbook=...: `make clean` removes it. The {done} "
          "notebook(s) before it finished.", file=sys.stderr, flush=True)
    os._exit(130)  # at once: papermill's threads and its half-written output are left as they are


def children(pid):
    """The pids of `pid`'s child processes (read from /proc; none where there is no /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def stop_children(grace=3.0):
    """End this process's children with their process groups (a kernel and what it ran):
    SIGTERM, then SIGKILL after `grace` seconds; return how many groups there were."""
    groups = set()
    for pid in children(os.getpid()):
        try:
            groups.add(os.getpgid(pid))
        except ProcessLookupError:
            pass
    groups.discard(os.getpgrp())  # our own group: only the kernels' own sessions
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 0)):
        for g in groups:
            try:
                os.killpg(g, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(_alive(g) for g in groups):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(-1, os.WNOHANG)  # reap an ended kernel: a zombie still counts as alive
            time.sleep(0.1)
    return len(groups)


def _alive(group):
    """Whether any process of a process group is still there."""
    try:
        os.killpg(group, 0)
        return True
    except ProcessLookupError:
        return False


def _run_one(i, paths, parameters, guesses, live):
    """Execute the i-th (from 1) of `paths`, print its progress, return its report row."""
    path = paths[i - 1]
    params = injected_parameters(path, parameters)
    head = position(i, len(paths), path) + "".join(f" {k}={v}" for k, v in params.items())
    if live:  # papermill's per-cell bar follows this line
        print(f"{head} ({eta_text(left(guesses, i - 1))})", flush=True)
    status, seconds, note = execute(path, params, live)
    out = EXECUTED / path.name
    figures = figures_of(nbformat.read(out, as_version=4)) if out.exists() else {}
    rest = f"; {eta_text(left(guesses, i))}" if i < len(paths) else ""
    took = f"{status} in {seconds:.0f} s"
    line = f"  {took} {note}" if live else f"{head}: {took}{rest} {note}"
    print(line.rstrip(), flush=True)
    return _rel(path), status, seconds, figures, note


def execute(path, params, progress_bar=False):
    """papermill `path` into build/executed/; return (status, seconds, error note)."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError
    start = time.perf_counter()
    try:
        pm.execute_notebook(str(path), str(EXECUTED / path.name), parameters=params,
                            kernel_name=KERNEL, cwd=str(path.parent), log_output=False,
                            progress_bar={"desc": "cells"} if progress_bar else False)
    except PapermillExecutionError as exc:
        return "FAILED", time.perf_counter() - start, f"cell {exc.exec_count}: {exc.ename}: {exc.evalue}"
    return "ok", time.perf_counter() - start, ""


def interactive():
    """Whether both stdout and stderr are terminals (then papermill draws its progress bar)."""
    return sys.stdout.isatty() and sys.stderr.isatty()


def position(i, n, path):
    """'[5/18] notebooks/04_dockerfile_best_practices.ipynb': which notebook of how many."""
    return f"[{i}/{n}] {_rel(path)}"


def past_durations(report_json):
    """{notebook: seconds} from the last run's report.json; {} when there is none to read."""
    try:
        return {r["notebook"]: float(r["seconds"]) for r in json.loads(Path(report_json).read_text())}
    except (OSError, ValueError, TypeError, KeyError):
        return {}


def estimates(paths, durations):
    """Each notebook's expected seconds (unknown ones: the mean of the known); None without any."""
    if not durations:
        return None
    mean = sum(durations.values()) / len(durations)
    return [durations.get(str(_rel(p)), mean) for p in paths]


def left(guesses, done):
    """Expected seconds for the notebooks after the first `done`; None without estimates."""
    return None if guesses is None else sum(guesses[done:])


def eta_text(seconds):
    """'about 14 min left', or 'estimate unavailable' (no earlier report)."""
    if seconds is None:
        return "estimate unavailable"
    return f"about {seconds:.0f} s left" if seconds < 90 else f"about {seconds / 60:.0f} min left"


def write_reports(rows, report_to):
    """build/report.md, and the same as data in build/report.json."""
    report_to.parent.mkdir(parents=True, exist_ok=True)
    report_to.write_text(report(rows))
    # The same as data, for the benchmark's table of notebook durations (lesson 08) and the ETA.
    report_to.with_suffix(".json").write_text(json.dumps(
        [{"notebook": str(p), "status": s, "seconds": round(sec, 1)} for p, s, sec, _, _ in rows],
        indent=2) + "\n")


def report(rows):
    """build/report.md: one line per notebook with status, duration and key figures."""
    lines = ["# Workbook run report", "",
             f"Executed {time.strftime('%Y-%m-%d %H:%M %Z')} on {_machine()}.", ""]
    table = [(f"`{p}`", s, f"{sec:.0f} s",
              "; ".join(f"{k}: {v}" for k, v in figs.items()) or "-", note or "")
             for p, s, sec, figs, note in rows]
    lines.append(markdown_table(["notebook", "status", "duration", "key figures", "error"], table))
    total = sum(r[2] for r in rows)
    lines += ["", f"Total: {total / 60:.1f} min for {len(rows)} notebooks."]
    return "\n".join(lines) + "\n"


def _machine():
    import platform
    return f"{platform.node() or 'host'} ({os.cpu_count()} cores, {platform.system()} {platform.machine()})"
