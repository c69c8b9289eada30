"""Wait for containers: poll until each reaches a condition, can no longer reach it, or time runs out;
who their first process runs as; and one-off shell scripts in a throwaway container."""

import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from docker.errors import APIError, NotFound

from . import resources

STOPPED = ("exited", "dead")
_STAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?")
UNTIL = ("running", "exited", "healthy", "unhealthy", "ready", "answers", "settled")


@dataclass
class Waited:
    """How a wait ended for one container."""

    name: str
    reached: bool  # the condition held
    why: str  # "reached", "timeout", "pending" (another container failed first), or why it never will
    state: str  # Docker's State.Status when the wait ended: running, exited, created, ...
    health: str | None  # starting, healthy, unhealthy, or None without a health check
    exit_code: int
    elapsed: float  # seconds from the start of the wait until it ended for this container
    # Its last log lines; left empty when it got running, healthy, ready or answering (no call
    # to the engine after the moment a caller times).
    logs: list = field(default_factory=list)


def wait(container, until="running", timeout=60, probe=None, every=0.1, lines=8):
    """Poll one container until `until` holds (see wait_all); return a Waited."""
    return wait_all([container], until, timeout, probe, every, lines)[0]


def wait_all(containers, until="running", timeout=60, probe=None, every=0.1, lines=8):
    """Poll containers until each reaches `until`, one can no longer reach it, or `timeout` s pass.

    until: running, exited, healthy, unhealthy, ready (running, and healthy when it has a
    health check), answers (probe(container) is true; OSError and LookupError mean not yet)
    or settled (stopped, never started, healthy or unhealthy). A container that can no longer
    reach it (stopped, unhealthy, no health check) ends the whole wait at once.
    Return a Waited for each container, in order.
    """
    if until not in UNTIL:
        raise ValueError(f"until={until!r}: pick one of {', '.join(UNTIL)}")
    if until == "answers" and probe is None:
        raise ValueError("until='answers' needs a probe(container)")
    start, done = time.perf_counter(), {}
    while True:
        pending = []
        for c in containers:
            if c.id in done:
                continue
            c.reload()
            why = _verdict(until, c.attrs["State"], probe and (lambda c=c: _answers(probe, c)))
            if why:
                done[c.id] = _ended(c, why, start, lines, until)
                if why != "reached":
                    return [done.get(x.id) or _ended(x, "pending", start, lines, until)
                            for x in containers]
            else:
                pending.append(c)
        if not pending:
            return [done[c.id] for c in containers]
        if time.perf_counter() - start >= timeout:
            return [done.get(c.id) or _ended(c, "timeout", start, lines, until) for c in containers]
        time.sleep(every)


def _verdict(until, state, answers):
    """'reached', why `until` can never be reached (e.g. 'stopped'), or None: not yet."""
    status, health = state["Status"], (state.get("Health") or {}).get("Status")
    stopped = status in STOPPED
    if until == "running":
        return "reached" if status == "running" else "stopped" if stopped else None
    if until == "exited":
        return "reached" if stopped else None
    if until in ("healthy", "unhealthy"):
        if health == until:
            return "reached"
        if health is None:
            return "no health check"
        return "unhealthy" if health == "unhealthy" else "stopped" if stopped else None
    if until == "ready":  # what `docker compose up --wait` waits for
        if status == "running" and health in (None, "healthy"):
            return "reached"
        return "stopped" if stopped else "unhealthy" if health == "unhealthy" else None
    if until == "answers":
        return "stopped" if stopped else "reached" if answers() else None
    # settled: it shows how it ends (stopped, never started, or the health check's verdict)
    if stopped or (status == "created" and state.get("Error")) or (
            status == "running" and health in ("healthy", "unhealthy")):
        return "reached"
    return None


def _answers(probe, container):
    try:
        return bool(probe(container))
    except (OSError, LookupError):  # not listening yet, or its port not published yet
        return False


def _ended(container, why, start, lines, until):
    elapsed = time.perf_counter() - start
    state, tail = container.attrs["State"], []
    if lines and (why != "reached" or until in ("exited", "settled")):
        try:
            tail = container.logs(tail=lines).decode(errors="replace").strip().splitlines()
        except NotFound:
            pass
    return Waited(container.name, why == "reached", why, state["Status"],
                  (state.get("Health") or {}).get("Status"), state.get("ExitCode", 0), elapsed, tail)


def when(stamp):
    """One of the engine's timestamps (RFC 3339, nanoseconds) as an aware datetime; the earliest if none."""
    m = _STAMP.match(stamp or "")
    if not m:
        return datetime.min.replace(tzinfo=timezone.utc)
    zone = "+00:00" if m[3] in (None, "Z") else m[3]
    return datetime.fromisoformat(m[1] + (m[2] or "")[:7] + zone)


def first_uid(container):
    """The uid of the container's first process (PID 1), from `docker top`; None when not running."""
    container.reload()
    if container.status != "running":
        return None
    try:
        top = container.top(ps_args="-o pid,uid")
    except APIError:
        return None
    col = top["Titles"].index("UID")
    procs = sorted(top.get("Processes") or [], key=lambda p: int(p[0]))
    return int(procs[0][col]) if procs else None


def sh(client, owner, image, script, flags="", **kw):
    """docker run --rm FLAGS IMAGE sh -c SCRIPT: print the command, return (exit code, output)."""
    print(" ".join(f"$ docker run --rm {flags} {image} sh -c '{script}'".split()))
    # stderr into stdout inside the container: docker logs keeps no order between the two
    box = client.containers.run(image, ["sh", "-c", f"exec 2>&1; {script}"], detach=True,
                                labels=resources.labels(owner), name=resources.unique_name(owner, "sh"), **kw)
    try:
        code = box.wait(timeout=120)["StatusCode"]
        return code, box.logs().decode().strip()
    finally:
        box.remove(force=True)
