"""Ctrl-C during `python -m workbook run` (what `make run` calls) stops the run and its kernel."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat

from workbook import ROOT, notebooks


def _interrupted(tmp_path, command):
    """Run `command` (+ a notebook whose cell runs `sleep 300`), press Ctrl-C twice once the
    cell runs; return (exit code, stderr, the processes it had started that are still there)."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import subprocess\nsubprocess.run(['sleep', '300'])")])
    nb.metadata["kernelspec"] = {"name": notebooks.KERNEL, "display_name": "Python 3", "language": "python"}
    path = tmp_path / "sleeps.ipynb"
    nbformat.write(nb, path)
    run = subprocess.Popen(command(path), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, start_new_session=True)  # its own group, as in a terminal
    try:
        deadline = time.monotonic() + 120
        while not (started := [p for p in _descendants(run.pid) if _is_sleep(p)]) \
                and time.monotonic() < deadline:
            time.sleep(0.2)  # until the cell runs its `sleep`
        assert started, "the notebook's cell never started"
        started = _descendants(run.pid)
        start = time.monotonic()
        os.killpg(run.pid, signal.SIGINT)  # Ctrl-C: SIGINT to the terminal's foreground group
        time.sleep(0.5)
        os.killpg(run.pid, signal.SIGINT)  # and again, impatiently, while the run cleans up
        _, err = run.communicate(timeout=30)
        assert time.monotonic() - start < 15
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    time.sleep(0.5)  # the ended runner's orphans are reaped by init
    return run.returncode, err, [p for p in started if _running(p)]


def _descendants(pid):
    kids = notebooks.children(pid)
    return kids + [d for k in kids for d in _descendants(k)]


def _is_sleep(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:2] == [b"sleep", b"300"]
    except OSError:
        return False


def _running(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_ctrl_c_stops_the_run_and_its_kernel(tmp_path):
    code, err, left = _interrupted(tmp_path, lambda p: [sys.executable, "-m", "workbook", "run", str(p)])
    assert code == 130, err
    assert "interrupted: " in err and "sleeps.ipynb (notebook 1 of 1)" in err and "make clean" in err
    assert not left, f"the kernel or what it ran is still running: {left}"


def test_ctrl_c_stops_make_run(client, tmp_path):
    """The same through `make run` (which sets up first: it needs the engine)."""
    code, err, left = _interrupted(tmp_path, lambda p: ["make", "--no-print-directory", "run", f"NB={p}"])
    assert code != 0 and "interrupted: " in err, err
    assert not left, f"the kernel or what it ran is still running: {left}"
