"""Read a container's state and say in one short paragraph what is wrong and what to try."""

import json
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from docker.errors import NotFound

# Stable cause keys (other helpers and labs compare against these).
CAUSES = ("ok", "bad-command", "missing-module", "port-in-use", "permission-denied",
          "disk-full", "network", "oom", "unhealthy", "missing-env", "model-version", "crashed")

SIGNALS = {1: "SIGHUP", 2: "SIGINT", 6: "SIGABRT", 9: "SIGKILL", 11: "SIGSEGV", 15: "SIGTERM"}
EXIT_MEANINGS = {
    0: "success",
    1: "a general error (an uncaught exception, a failed command)",
    2: "a usage error (wrong arguments)",
    3: "the model service refused to start (its one JSON log line says why)",
    4: "gunicorn could not load the app",
    125: "Docker itself could not run the container",
    126: "the command was found but could not be executed",
    127: "the command was not found",
}


@dataclass
class Diagnosis:
    """What diagnose() found: ok or not, a stable cause key, and one short paragraph."""

    ok: bool
    cause: str
    text: str

    def __str__(self):
        return self.text


@dataclass
class State:
    """What Docker knows about a container, read once: status, exit, health, last log lines."""

    name: str
    status: str
    exit_code: int
    error: str
    oom_killed: bool
    restarts: int
    health: str | None
    probe: dict | None  # the last health-check result: ExitCode, Output
    logs: list = field(default_factory=list)
    env: dict = field(default_factory=dict)
    user: str = ""  # Config.User ("" is root)


def read(container, lines=6):
    """Reload a container and read its State, last health probe, environment and log tail."""
    container.reload()
    attrs = container.attrs
    state = attrs["State"]
    health = state.get("Health") or {}
    probes = health.get("Log") or []
    env = dict(e.split("=", 1) if "=" in e else (e, "") for e in attrs["Config"].get("Env") or [])
    try:
        tail = container.logs(tail=lines).decode(errors="replace").strip().splitlines()
    except NotFound:
        tail = []
    return State(container.name, state["Status"], state["ExitCode"], state.get("Error") or "",
                 bool(state.get("OOMKilled")), attrs.get("RestartCount", 0),
                 health.get("Status"), probes[-1] if probes else None, tail, env,
                 attrs["Config"].get("User") or "")


def meaning(code):
    """What an exit code usually means."""
    if code > 128 and code - 128 in SIGNALS:
        return f"killed by {SIGNALS[code - 128]} (128 + {code - 128})"
    return EXIT_MEANINGS.get(code, "an error the program chose this code for")


def diagnose(container):
    """What is wrong with a container (Diagnosis.ok when nothing is) and what to try."""
    st = read(container, lines=LOG_LINES)
    return (_start_failure(container, st) or _oom(st) or _unhealthy(st) or _stopped(st)
            or _running(st))


LOG_LINES = 40  # how far back diagnose() looks for a telling line

# Log patterns, most specific first: cause -> (regex, what it means, what to try).
PATTERNS = {
    "disk-full": (
        r"No space left on device|Errno 28|Disk quota exceeded",
        "the disk (or volume, or tmpfs) it writes to is full",
        ("free space: `docker system df`, then remove what you own by label "
         "(`docker system prune --filter label=...`); or give it a larger volume")),
    "missing-module": (
        r"No module named '?([\w.]+)'?",
        "Python cannot import module '{0}'",
        ("COPY the file into the image, or add the package to requirements.txt and rebuild; "
         "check with `docker run --rm --entrypoint python IMAGE -c 'import {0}'`")),
    "missing-env": (
        (r"KeyError: '([A-Z][A-Z0-9_]*)'|([A-Z][A-Z0-9_]*): parameter (?:null or )?not set"
         r"|environment variable '?([A-Z][A-Z0-9_]*)'? (?:is )?not set"),
        "environment variable {0} is read but not set",
        "set it where the container is defined (`-e {0}=...`, Compose `environment:`)"),
    "permission-denied": (
        r"Permission denied(?:: '([^']+)')?|EACCES|Operation not permitted",
        "the process (user {user}) may not write or run {0}",
        ("make the path belong to that user in the image (`RUN mkdir -p DIR && chown "
         "1000:1000 DIR`; a new named volume copies it), not `--user root`")),
    "network": (
        (r"Name or service not known|Temporary failure in name resolution"
         r"|nodename nor servname|Connection refused|No route to host|Network is unreachable"),
        "a network call failed ({m})",
        ("a name resolves only on a user-defined network both containers share "
         "(`docker network inspect`); check the host name against the service name or "
         "alias; if the other side is still starting, wait for its health check or retry")),
}


def _start_failure(container, st):
    """Docker could not start the process at all: the reason is in State.Error, not the log."""
    if not st.error:
        return None
    err = st.error
    if m := re.search(r"(?:Bind for |listen tcp\d? )([\d.]*):(\d+)|address already in use", err):
        host_ip, port = (m.group(1) or "0.0.0.0", m.group(2)) if m.group(2) else ("?", "?")
        holder = _port_holder(container, port) if port != "?" else None
        who = (f"container {holder} already publishes it" if holder else
               f"a host process holds it (find it with `lsof -i :{port}` or `ss -ltnp`)")
        return _bad(st, "port-in-use", f"cannot start: host port {host_ip}:{port} is taken: {who}",
                    "publish another host port (`-p 127.0.0.1:OTHER:5000`) or stop what holds it")
    exe = re.search(r'exec: "([^"]+)"', err)
    exe = exe.group(1) if exe else "the command"
    if "executable file not found" in err or "no such file or directory" in err:
        return _bad(st, "bad-command", f"cannot start: {exe} does not exist in the image "
                    f"(exit code {st.exit_code}, {meaning(st.exit_code)})",
                    f"fix CMD/ENTRYPOINT; look inside with `docker run --rm --entrypoint sh "
                    f"IMAGE -c 'command -v {exe}'`")
    if "permission denied" in err.lower():
        return _bad(st, "permission-denied", f"cannot start: {exe} is not executable "
                    f"(exit code {st.exit_code}, {meaning(st.exit_code)})",
                    f"`chmod +x` it in the Dockerfile (RUN chmod 755 {exe}), or run it through "
                    "its interpreter (CMD [\"sh\", \"script.sh\"])")
    return _bad(st, "crashed", f"Docker could not start it: {err[-200:]}",
                "read the error: it names the setting or file at fault")


def _port_holder(container, port):
    """The name of a running container that publishes host port `port`, if any."""
    for other in container.client.containers.list():
        if other.id == container.id:
            continue
        for bindings in (other.attrs["NetworkSettings"]["Ports"] or {}).values():
            if any(b.get("HostPort") == str(port) for b in bindings or []):
                return other.name
    return None


def _oom(st):
    if not st.oom_killed:
        return None
    return _bad(st, "oom", f"was killed by the kernel's OOM killer: it needed more memory than "
                f"its limit (exit code {st.exit_code}, State.OOMKilled true)",
                "raise the limit (`--memory`, Compose `mem_limit`) above what `docker stats` "
                "shows, or make it use less (fewer workers, a smaller model)")


def _unhealthy(st):
    if st.status != "running" or st.health != "unhealthy":
        return None
    out = (st.probe or {}).get("Output", "").strip().splitlines() or ["(no output)"]
    return _bad(st, "unhealthy", f"runs, but its health check fails (exit "
                f"{(st.probe or {}).get('ExitCode')}): {out[-1][:200]}",
                "run the HEALTHCHECK command yourself (`docker exec NAME ...`); probe with "
                "what the image has, e.g. python's urllib")


def _stopped(st):
    """Exited (or restarting) with a non-zero code: read the log for why."""
    failing = st.status in ("exited", "dead", "restarting")
    if not failing or (st.status == "exited" and st.exit_code == 0):
        return None
    if refusal := _refusal(st.logs):
        if refusal.get("reason") == "version_mismatch":
            return _bad(st, "model-version", f"the model service refused its model (exit code "
                        f"{st.exit_code}): {refusal.get('message', '')}",
                        "retrain under the image's scikit-learn, or pin the version the model "
                        "was trained with")
        return _bad(st, "crashed", f"the model service refused to start (exit code "
                    f"{st.exit_code}, {refusal.get('reason')}): {refusal.get('message', '')}",
                    "do what the message says")
    found = _match(st)
    if found:
        return found
    if st.exit_code in (126, 127):
        return _bad(st, "bad-command", f"stopped: exit code {st.exit_code} "
                    f"({meaning(st.exit_code)}){_last(st)}", "fix CMD/ENTRYPOINT in the Dockerfile")
    return _bad(st, "crashed", f"stopped: exit code {st.exit_code} ({meaning(st.exit_code)})"
                f"{_last(st)}", "read the whole log (`docker logs NAME`)")


def _running(st):
    if st.status == "running" and (found := _match(st, only=("network",))):
        return found
    if st.status == "running":
        how = {"healthy": "healthy", "starting": "its health check is still starting"}
        again = f", restarted {st.restarts} times (see `docker logs`)" if st.restarts else ""
        return Diagnosis(True, "ok", f"{st.name} is running ({how.get(st.health, 'no health check')}"
                         f"{again}): nothing wrong found.")
    if st.status == "exited":
        return Diagnosis(True, "ok", f"{st.name} finished: exit code 0 (success).")
    return Diagnosis(True, "ok", f"{st.name} is {st.status}: nothing wrong found.")


def _match(st, only=None):
    """The first cause whose pattern appears in the log, newest line first."""
    for line in reversed(st.logs):
        for cause, (pattern, what, fix) in PATTERNS.items():
            if only and cause not in only:
                continue
            if not (m := re.search(pattern, line)):
                continue
            arg = next((g for g in m.groups() if g), "")
            if cause == "missing-env" and arg in st.env:
                continue  # it is set: the KeyError is about something else
            fill = {"user": st.user or "root", "m": m.group(0)}
            arg = arg or ("the path" if cause == "permission-denied" else "")
            return _bad(st, cause, what.format(arg, **fill) + _code(st) + f"; log: {line.strip()[:160]}",
                        fix.format(arg, **fill))
    return None


def _refusal(lines):
    """The model service's refusal line ({"event": "model_refused", ...}), if any."""
    for line in reversed(lines):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("event") == "model_refused":
            return record
    return None


def _code(st):
    return f" (exit code {st.exit_code})" if st.status != "running" else ""


def _last(st):
    return f"; last log line: {st.logs[-1].strip()[:160]}" if st.logs else "; no log output"


def _bad(st, cause, what, fix):
    return Diagnosis(False, cause, f"{st.name} {what}. Try: {fix}.")


@contextmanager
def watch_events(client, **filters):
    """Record the engine's events that match `filters` while the block runs (a list).

    Live, not `docker events --since`: the engine keeps only its last 256 events, and on a
    busy engine health-check probes (three events each) push older ones out in seconds.
    """
    stream = client.events(filters=filters, decode=True)  # subscribed from here on
    seen = []

    def pump():
        try:
            seen.extend(stream)  # items read before an error stay in the list
        except Exception:  # noqa: BLE001 - closing the stream ends the read with an error
            return

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        yield seen
    finally:
        time.sleep(0.5)  # events of the block's last actions are still on their way
        stream.close()
        reader.join(timeout=5)
