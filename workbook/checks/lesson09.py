"""Lesson 09's exercises: a command that never started, a port someone holds, a container the OOM killer ended."""

import secrets

from .. import LABEL, bases, resources, service
from ..containers import when
from .learner_image import answers, labelled, learner_container, published, running
from .report import NotDone, Stop, check, given

TAKEN = "workbook.exercise"  # the label on exercise 09.2's port holder (its name is random)


def _holders(client, owner):
    """The running container exercise 09.2 started to hold a port (none or one)."""
    return client.containers.list(filters={"label": [f"{LABEL}={owner}", f"{TAKEN}=09.2"]})


def _as_recorded(r, name, said, recorded, hint, criterion=None):
    """Criterion: the learner's `name` is what Docker recorded (as text, any case)."""
    r.add(criterion or f"`{name}` is what Docker recorded",
          str(said).strip().removeprefix(".").lower() == str(recorded).lower(), f"{name} is {said!r}", hint)


@check("Exercise 09.1 · a command that is not there")
def never_started(r, client, owner, exit_code, reason_in):
    """`{owner}-typo` never started; `exit_code` and `reason_in` are what Docker recorded."""
    box = learner_container(client, f"{owner}-typo")
    labelled(r, box, owner, "lesson 09")
    state = box.attrs["State"]
    tried = bool(state.get("Error")) or not state.get("StartedAt", "0001").startswith("0001")
    r.add("Docker tried to start it", tried, "it was never asked to start (State.Error is empty)",
          "docker create makes a container without starting it: use docker run (lesson 09 §1)")
    r.add("it never started", state["Status"] == "created",
          f"its status is {state['Status']!r}" + (" (a shell ran, then exited)" if state["Status"] == "exited" else ""),
          "give docker run the misspelt program itself as the command, not `sh -c`: a shell would start "
          "and report the typo in its log (lesson 09 §1)")
    given("read docker inspect, then set exit_code and reason_in", exit_code=exit_code, reason_in=reason_in)
    _as_recorded(r, "exit_code", exit_code, state["ExitCode"],
                 "in a terminal: docker inspect --format '{{.State.ExitCode}}' NAME (lesson 09 §1)")
    where = "State.Error" if state.get("Error") and not box.logs().strip() else "log"
    _as_recorded(r, "reason_in", reason_in, where,
                 "docker logs NAME is empty: the reason is in docker inspect's State.Error (lesson 09 §1)"
                 if where == "State.Error" else "the process started, so docker logs NAME says why it ended "
                 "(lesson 09 §1)", criterion="`reason_in` names where the reason is")


def taken_port(client, owner):
    """Start (or find) a container of `owner` that publishes a port of 127.0.0.1; return the port.

    Its name is random: exercise 09.2 asks which container holds the port."""
    found = _holders(client, owner)
    if not found:
        found = [client.containers.run(
            bases.build_args(client)["DEBIAN_IMAGE"], ["sleep", "3600"], detach=True, init=True,
            name=f"{owner}-{secrets.token_hex(3)}", ports={service.PORT: ("127.0.0.1", None)},
            labels={**resources.labels(owner), TAKEN: "09.2"})]
    return resources.host_port(found[0], service.PORT)


@check("Exercise 09.2 · who holds the port?")
def port_holder(r, client, owner, holder):
    """`holder` names the container on the taken port; `{owner}-api` answers on another port."""
    held = _holders(client, owner)
    if not held:
        raise NotDone("no container holds a port for this exercise",
                      "run the first line of the cell above (checks.lesson09.taken_port) again")
    if not holder and not client.containers.list(all=True, filters={"name": f"{owner}-api"}):
        raise NotDone(f"holder is empty and there is no container {owner}-api yet",
                      "find who holds the port, start yours, then run this check")
    port = resources.host_port(held[0], service.PORT)
    r.add(f"`holder` is the container that publishes 127.0.0.1:{port}",
          str(holder).strip().lstrip("/") == held[0].name, f"holder is {holder!r}",
          f"docker ps --filter publish={port} lists who publishes that port (lesson 09 §2 found it with lsof)")
    box = learner_container(client, f"{owner}-api")
    labelled(r, box, owner, "lesson 09")
    taken = "port is already allocated" in (box.attrs["State"].get("Error") or "")
    running(r, box, "a host port can be published once: this one was created but could not start. "
                    "Publish another host port, or let Docker pick a free one: -p 127.0.0.1::5000 (lesson 09 §2)"
            if taken else "docker logs NAME and docker inspect's State.Error say why it is not running (lesson 09 §1)")
    mine = published(r, box)
    if mine is None:
        raise Stop()
    answers(r, mine)


# SIGKILL with nobody's `docker kill`, and yet OOMKilled false: Engine 20.10 (cgroup v1) missed
# the kernel's OOM notice, or had it only after the exit (then `docker events` shows `oom` after
# `die`). On a busy engine, 5 of 60 such runs measured on the reference machine.
OOM_MISSED = ("it got SIGKILL (exit 137) from no `docker kill`, yet Docker recorded no OOM kill: a busy "
              "engine can miss the kernel's notice (Engine 20.10 does)")


def _killed_by_hand(client, box):
    """Whether `docker kill` or `docker stop` sent the container a signal (the engine's events)."""
    state = box.attrs["State"]  # both ends on the engine's clock; the end is past, so it returns at once
    events = client.events(since=int(when(box.attrs["Created"]).timestamp()) - 1,
                           until=int(when(state["FinishedAt"]).timestamp()) + 2, decode=True,
                           filters={"container": box.id, "event": ["kill", "stop"]})
    try:
        return any(True for _ in events)
    finally:
        events.close()


@check("Exercise 09.3 · killed for memory")
def oom_killed(r, client, owner, exit_code, oom_killed):
    """`{owner}-hungry` was ended by the OOM killer; `exit_code` and `oom_killed` say so."""
    box = learner_container(client, f"{owner}-hungry")
    labelled(r, box, owner, "lesson 09")
    box.reload()
    state, memory = box.attrs["State"], box.attrs["HostConfig"].get("Memory") or 0
    r.add("its memory limit is at most 32 MiB", 0 < memory <= 32 * 2**20,
          f"Memory {f'{memory // 2**20} MiB' if memory else 'unlimited'}", "--memory 16m (lesson 09 §6)")
    if not r.add("it has ended", state["Status"] == "exited", f"its status is {state['Status']!r}",
                 "run it without -d and wait: the command ends by itself, one way or another"):
        raise Stop()
    # No use waiting: the flag is set with the exit, and an OOM notice the engine gets after it
    # (an `oom` event after `die`) leaves it false (2 such runs read again 2 s later).
    if state["ExitCode"] == 137 and not state.get("OOMKilled") and not _killed_by_hand(client, box):
        raise NotDone(OOM_MISSED, "run the cell again: the next run is most likely recorded (if not, the "
                      "SIGKILL came from elsewhere, e.g. a command that kills itself: use the task's command)")
    r.add("the kernel's OOM killer ended it", state.get("OOMKilled") is True,
          f"it exited {state['ExitCode']}, OOMKilled {state.get('OOMKilled')}",
          "give it less memory than the command takes: `head -c 64m /dev/zero | tail` holds 64 MiB "
          "(lesson 09 §6)")
    given("read docker inspect, then set exit_code and oom_killed", exit_code=exit_code, oom_killed=oom_killed)
    _as_recorded(r, "exit_code", exit_code, state["ExitCode"],
                 "in a terminal: docker inspect --format '{{.State.ExitCode}}' NAME: 128 + the signal's "
                 "number (lesson 09 §6)")
    _as_recorded(r, "oom_killed", oom_killed, state.get("OOMKilled"),
                 "in a terminal: docker inspect --format '{{.State.OOMKilled}}' NAME, as True or False "
                 "(lesson 09 §6)")
