"""Lesson 01's exercises: the learner's own containers, read back through the engine."""

from docker.errors import ContainerError, DockerException, NotFound

from .. import resources
from .learner_image import inside as _inside
from .learner_image import labelled, learner_container, running
from .report import NotDone, check

RUN_HINT = "start it with -d and a command that lasts, e.g. `sleep 3600` (lesson 01 §3)"


def _running(r, container):
    running(r, container, RUN_HINT)


def _labelled(r, resource, owner):
    labelled(r, resource, owner, "lesson 01")


@check("Exercise 01.1 · break the PID isolation, then observe")
def host_processes(r, client, owner):
    """--pid=host: the container sees every process of the host, not only its own."""
    c = learner_container(client, f"{owner}-pid")
    _running(r, c)
    _labelled(r, c, owner)
    _, seen = _inside(c, "echo /proc/[0-9]*")  # shell built-ins only: no process started to look
    visible = len(seen.split())
    own = len(c.top()["Processes"])  # docker top: the container's own processes
    r.add("it sees processes that are not its own", visible > own + 2,
          f"it sees {visible} processes, about as many as it runs itself ({own}): "
          "it has a PID namespace of its own",
          "share the host's PID namespace with --pid=host (lesson 01 §3)",
          note=f"{visible} processes visible, {own} of them its own")


LIMITS = ("cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes; "
          "cat /sys/fs/cgroup/cpu.max 2>/dev/null || "
          "echo $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)")
MEMORY, CPUS = 32 * 2**20, 0.25


@check("Exercise 01.3 · change the numbers, read them back")
def limits(r, client, owner):
    """The limits the container's own cgroup files show (v1 or v2)."""
    c = learner_container(client, f"{owner}-limits")
    _running(r, c)
    _labelled(r, c, owner)
    _, out = _inside(c, LIMITS)
    memory, cpu = (out.splitlines() + ["", ""])[:2]
    quota, _, period = cpu.partition(" ")
    mem_ok = memory.isdigit() and int(memory) == MEMORY
    r.add("the memory limit its cgroup shows is 32 MiB", mem_ok,
          f"memory.max says {memory or 'nothing'}"
          + (f" = {int(memory) / 2**20:g} MiB" if memory.isdigit() and int(memory) < 2**40 else " (no limit)"),
          "--memory 32m writes the limit into the container's cgroup (lesson 01 §5)")
    cpus = int(quota) / int(period) if quota.lstrip("-").isdigit() and period.isdigit() and int(quota) > 0 else None
    r.add("the CPU quota its cgroup shows is 0.25 CPU", cpus is not None and abs(cpus - CPUS) < 1e-9,
          f"cpu.max says {cpu or 'nothing'}" + (f" = {cpus:g} CPU" if cpus else " (no quota)"),
          "--cpus 0.25 becomes a quota of 25 ms per 100 ms period (lesson 01 §5)")


@check("Exercise 01.2 · a note that outlives its container")
def shared_note(r, client, owner, image):
    """A labelled volume holding note.txt = hello, written by a container that is gone."""
    name = f"{owner}-notes"
    try:
        volume = client.volumes.get(name)
    except NotFound:
        raise NotDone(f"no volume called {name}", "run the cell with your commands first") from None
    _labelled(r, volume, owner)
    users = client.containers.list(all=True, filters={"volume": name})
    r.add("the container that wrote it is gone", not users,
          f"still there: {', '.join(c.name for c in users)}",
          "run the writer with --rm (docker rm NAME removes the one left): the note must outlive "
          "its container (lesson 01 §4)")
    try:
        # (the trailing newline: a last line without one may not be in the logs yet when read)
        text = client.containers.run(image, ["sh", "-c", "cat /data/note.txt && echo"], remove=True,
                                     volumes={name: {"bind": "/data", "mode": "ro"}},
                                     labels=resources.labels(owner)).decode().strip()
    except ContainerError:
        text = None
    except DockerException as exc:
        raise NotDone(f"could not read the volume: {exc}", "run the lesson's setup cell") from None
    r.add("note.txt in the volume says hello", text == "hello",
          "there is no note.txt in the volume" if text is None else f"note.txt says {text!r}",
          "a file in a container's own writable layer is gone with it; mount the volume where the "
          "writer writes: -v NAME:/data (lesson 01 §4)")
