"""The wheelhouse: pinned wheels for the images, downloaded on the host, installed offline."""

import hashlib
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

from . import BUILD, ROOT, WorkbookError

REQUIREMENTS = ROOT / "docker" / "wheelhouse.txt"
WHEELHOUSE = BUILD / "wheelhouse"
STAMP = WHEELHOUSE / ".requirements.sha256"
PYTHON_VERSION = "3.11"  # the Python of every base image (official and stand-in)
ARCHES = {"amd64": "x86_64", "x86_64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64"}


def arch(client=None):
    """The containers' CPU architecture in wheel-tag spelling (the engine's, else the host's)."""
    if client is None:
        from . import engine
        try:
            client = engine.client()
        except WorkbookError:
            client = None
    name = client.version()["Arch"] if client else platform.machine()
    try:
        return ARCHES[name.lower()]
    except KeyError:
        raise WorkbookError(f"No manylinux wheels for architecture {name!r}.",
                            "The workbook supports x86_64 (amd64) and aarch64 (arm64).") from None


def platforms(cpu):
    """pip --platform values a Debian bookworm (glibc 2.36) container accepts, newest first."""
    return [f"manylinux_2_{v}_{cpu}" for v in range(36, 16, -1)] + [f"manylinux2014_{cpu}"]


def pinned():
    """The pinned requirement lines of docker/wheelhouse.txt."""
    lines = [ln.split("#")[0].strip() for ln in REQUIREMENTS.read_text().splitlines()]
    return [ln for ln in lines if ln]


def _digest(cpu):
    return hashlib.sha256((REQUIREMENTS.read_text() + cpu).encode()).hexdigest()


def status(cpu=None):
    """(ready, message) for the doctor: is the wheelhouse complete for the pinned list?"""
    cpu = cpu or arch()
    if not WHEELHOUSE.is_dir():
        return False, "missing: run `make wheelhouse`"
    wheels = sorted(WHEELHOUSE.glob("*.whl"))
    if not STAMP.exists() or STAMP.read_text() != _digest(cpu):
        return False, f"out of date with {REQUIREMENTS.relative_to(ROOT)}: run `make wheelhouse`"
    total = sum(w.stat().st_size for w in wheels)
    return True, f"{len(wheels)} wheels, {total / 1e6:.0f} MB, CPython {PYTHON_VERSION} {cpu}"


def download(force=False, client=None):
    """pip download the pinned wheels for the containers' platform (skipped when current)."""
    cpu = arch(client)
    ready, msg = status(cpu)
    if ready and not force:
        return f"wheelhouse ready: {msg} in {WHEELHOUSE}"
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
           "--no-deps", "--only-binary=:all:", "--implementation", "cp",
           "--python-version", PYTHON_VERSION, "--dest", str(WHEELHOUSE),
           "-r", str(REQUIREMENTS)]
    for p in platforms(cpu):
        cmd += ["--platform", p]
    print(f"Downloading pinned wheels into {WHEELHOUSE} ...", flush=True)
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        err = "\n".join(ln for ln in done.stderr.splitlines() if not ln.startswith("WARNING"))
        raise WorkbookError(f"pip download failed:\n{err[-1500:]}",
                            "Check the network to the package index, or copy a wheelhouse "
                            f"from a classmate into {WHEELHOUSE} (see README, offline mode).")
    STAMP.write_text(_digest(cpu))
    return f"wheelhouse ready: {status(cpu)[1]} in {WHEELHOUSE}"


def stage(context):
    """Hard-link the wheelhouse into <context>/wheels/ so a build can COPY it (gitignored)."""
    ready, msg = status()
    if not ready:
        raise WorkbookError(f"The wheelhouse is not ready ({msg}).", "Run `make wheelhouse`.")
    dest = Path(context) / "wheels"
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for whl in WHEELHOUSE.glob("*.whl"):
        try:
            os.link(whl, dest / whl.name)
        except OSError:  # another filesystem: copy instead
            shutil.copy2(whl, dest / whl.name)
    return dest
