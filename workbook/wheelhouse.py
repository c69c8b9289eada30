"""The wheelhouse: pinned wheels for the images, downloaded on the host, installed offline."""

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import zipfile
from email.parser import HeaderParser
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from . import BUILD, ROOT, WorkbookError, engine

REQUIREMENTS = ROOT / "docker" / "wheelhouse.txt"
WHEELHOUSE = BUILD / "wheelhouse"
STAMP = WHEELHOUSE / ".requirements.sha256"
PYTHON_VERSION = "3.11"  # the Python of every base image (official and stand-in)
ARCHES = {"amd64": "x86_64", "x86_64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64"}


def arch(client=None):
    """The containers' CPU architecture in wheel-tag spelling (the engine's, else the host's)."""
    if client is None:
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


def pinned(requirements=REQUIREMENTS):
    """The requirement lines of a requirements file (docker/wheelhouse.txt by default)."""
    lines = [ln.split("#")[0].strip() for ln in Path(requirements).read_text().splitlines()]
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
    print(f"Downloading pinned wheels into {WHEELHOUSE}, usually about 1 min ...", flush=True)
    pip_download(REQUIREMENTS, WHEELHOUSE, cpu)
    STAMP.write_text(_digest(cpu))
    return f"wheelhouse ready: {status(cpu)[1]} in {WHEELHOUSE}"


def pip_download(requirements, dest, cpu):
    """pip download exactly the pinned wheels of `requirements` (no dependencies) into dest."""
    Path(dest).mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
           "--no-deps", "--only-binary=:all:", "--implementation", "cp",
           "--python-version", PYTHON_VERSION, "--dest", str(dest), "-r", str(requirements)]
    for p in platforms(cpu):
        cmd += ["--platform", p]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        err = "\n".join(ln for ln in done.stderr.splitlines() if not ln.startswith("WARNING"))
        raise WorkbookError(f"pip download failed for {requirements}:\n{err[-1500:]}",
                            "Check the network to the package index, or copy a wheelhouse "
                            f"from a classmate into {dest} (see README, offline mode).")


def _requires(whl):
    """The distributions a wheel depends on in a CPython 3.11 Linux container (no extras)."""
    with zipfile.ZipFile(whl) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        headers = HeaderParser().parsestr(z.read(meta).decode())
    env = {"python_version": PYTHON_VERSION, "python_full_version": PYTHON_VERSION + ".0",
           "sys_platform": "linux", "platform_system": "Linux", "extra": ""}
    deps = []
    for line in headers.get_all("Requires-Dist") or []:
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate(env):
            deps.append(canonicalize_name(req.name))
    return deps


def closure(requirements):
    """The wheels a requirements file needs from the wheelhouse, dependencies included."""
    wheels = {canonicalize_name(w.name.split("-")[0]): w for w in WHEELHOUSE.glob("*.whl")}
    todo = [canonicalize_name(Requirement(ln).name) for ln in pinned(requirements)]
    found = {}
    while todo:
        name = todo.pop()
        if name in found:
            continue
        if name not in wheels:
            raise WorkbookError(f"{name} is needed by {requirements} but not in the wheelhouse.",
                                f"Pin it in {REQUIREMENTS.relative_to(ROOT)}, then `make wheelhouse`.")
        found[name] = wheels[name]
        todo += _requires(wheels[name])
    return sorted(found.values())


def link(src, dest):
    """Hard-link a wheel to dest, or copy it (another filesystem)."""
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def stage(context, requirements=None):
    """Hard-link the wheelhouse (or only what `requirements` needs) into <context>/wheels/."""
    ready, msg = status()
    if not ready:
        raise WorkbookError(f"The wheelhouse is not ready ({msg}).", "Run `make wheelhouse`.")
    Path(context).mkdir(parents=True, exist_ok=True)
    dest = Path(context) / "wheels"
    wanted = sorted(closure(requirements) if requirements else WHEELHOUSE.glob("*.whl"))
    if dest.is_dir() and sorted(f.name for f in dest.iterdir()) == [w.name for w in wanted]:
        return dest  # already staged: leave it, a build running at the same time may be reading it
    # Fill a new folder, then swap it in: a concurrent build never sees a half-filled wheels/.
    # (beside the context, not in it: the build must not send the half-filled copy)
    fresh = Path(tempfile.mkdtemp(prefix=".wheels-", dir=Path(context).resolve().parent))
    for whl in wanted:
        link(whl, fresh / whl.name)
    if dest.exists():
        old = Path(tempfile.mkdtemp(prefix=".wheels-old-", dir=fresh.parent))
        os.replace(dest, old / "wheels")
        shutil.rmtree(old, ignore_errors=True)
    try:
        os.replace(fresh, dest)
    except OSError:  # another process swapped its own (identical) copy in first
        shutil.rmtree(fresh, ignore_errors=True)
    return dest
