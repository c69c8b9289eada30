"""Lesson 07b's exercises: the service locked down, a container limited, a back end on an internal network."""

from docker.errors import NotFound

from .. import containers, resources
from .learner_image import answers, labelled, learner_container, published, running
from .report import NotDone, Stop, check


@check("Exercise 07b.1 · the model service, locked down")
def locked_down(r, client, owner):
    """`{owner}-locked`: read-only root, no capabilities, no-new-privileges, and it answers."""
    box = learner_container(client, f"{owner}-locked")
    labelled(r, box, owner, "lesson 07b")
    containers.wait(box, "ready", timeout=60, lines=0)  # a read-only root without a tmpfs exits
    running(r, box, "with --read-only, gunicorn needs a writable /tmp: add --tmpfs /tmp "
                    "(lesson 07b §1)")
    host = box.attrs["HostConfig"]
    r.add("its root filesystem is read-only", host.get("ReadonlyRootfs") is True,
          "it can write anywhere in the image", "add --read-only, and --tmpfs /tmp for what gunicorn writes (lesson 07b §1)")
    dropped, added = host.get("CapDrop") or [], host.get("CapAdd") or []
    r.add("it has no Linux capabilities", "ALL" in [c.upper() for c in dropped] and not added,
          f"dropped {dropped or 'none'}, added {added or 'none'}",
          "--cap-drop ALL drops all of them, none added back (lesson 07b §1)")
    opts = host.get("SecurityOpt") or []
    r.add("no-new-privileges is set", any(o.startswith("no-new-privileges") and not o.endswith("false")
                                          for o in opts),
          f"security options: {opts or 'none'}",
          "--security-opt no-new-privileges: a setuid program cannot raise privileges (lesson 07b §1)")
    port = published(r, box)
    answers(r, port, timeout=30)


@check("Exercise 07b.2 · a container with limits")
def limited(r, client, owner):
    """`{owner}-limited`: at most 100 processes, at most 128 MiB, no swap on top, under 1 CPU."""
    box = learner_container(client, f"{owner}-limited")
    labelled(r, box, owner, "lesson 07b")
    running(r, box, "keep it running: end the command with sleep 3600")
    host = box.attrs["HostConfig"]
    pids = host.get("PidsLimit") or 0
    r.add("its process limit is at most 100", 0 < pids <= 100,
          f"PidsLimit {pids or 'none'}", "--pids-limit 64 caps how many processes it may have: a "
          "fork bomb stops there (lesson 07b §2)")
    memory, swap = host.get("Memory") or 0, host.get("MemorySwap") or 0
    r.add("its memory limit is at most 128 MiB", 0 < memory <= 128 * 2**20,
          f"Memory {memory // 2**20 if memory else 'unlimited'} MiB",
          "--memory 64m (lesson 07b §2)")
    r.add("no swap beyond its memory limit", memory and swap == memory,
          f"MemorySwap {swap // 2**20 if swap > 0 else 'unlimited'} MiB (memory + swap)",
          "--memory-swap is memory plus swap: give it the same value as --memory (lesson 07b §2)")
    cpus = (host.get("NanoCpus") or 0) / 1e9 or (
        (host.get("CpuQuota") or 0) / (host.get("CpuPeriod") or 100000))
    r.add("it may use at most one CPU", 0 < cpus <= 1, f"{cpus or 'no'} CPU limit",
          "--cpus 0.5 (lesson 07b §2)")


# Run on the learner's network: GET /health by the container's name, once.
ASK = """import sys, urllib.request
try:
    print(urllib.request.urlopen(f"http://{sys.argv[1]}:5000/health", timeout=5).status)
except OSError as error:
    print(type(error).__name__, error)
"""


@check("Exercise 07b.3 · the model service on an internal network")
def internal_backend(r, client, owner):
    """`{owner}-back` is internal; `{owner}-model` runs on it alone, publishes nothing, answers by name."""
    try:
        net = client.networks.get(f"{owner}-back")
    except NotFound:
        raise NotDone(f"no network called {owner}-back", "create it first: docker network create ...") from None
    labelled(r, net, owner, "lesson 07b", "the network", "add {LABELS} to docker network create")
    r.add("the network is internal", net.attrs.get("Internal") is True, "it has a way out",
          "docker network create --internal: no route out, as the tutorial's internal: true (lesson 07b §3)")
    box = learner_container(client, f"{owner}-model")
    labelled(r, box, owner, "lesson 07b", "the container")
    running(r, box, "docker run -d ... workbook/app:production keeps the service running")
    joined = sorted(box.attrs["NetworkSettings"]["Networks"])
    on_it = r.add(f"it is on {net.name} and no other network", joined == [net.name], f"it is on {', '.join(joined)}",
          "--network NAME attaches it there instead of the default bridge (lesson 07b §3)")
    # On an internal network Docker publishes nothing, whatever -p says: read what was asked.
    asked = [f"{b.get('HostIp') or '0.0.0.0'}:{b.get('HostPort') or '(any)'}->{port}"
             for port, binds in (box.attrs["HostConfig"].get("PortBindings") or {}).items() for b in binds or []]
    r.add("it asks for no published port", not asked, f"it asks for {', '.join(asked)}",
          "leave out -p: the containers on its network reach it, the host does not need to; an internal "
          "network ignores -p, the same command on another network would not (lesson 07b §3)")
    if not on_it:
        raise Stop()
    containers.wait(box, "ready", timeout=60, lines=0)  # the image's health check says when it serves
    said = client.containers.run(box.image.id, ["python", "-c", ASK, box.name], entrypoint=[], remove=True,
                                 network=net.name, labels=resources.labels(owner),
                                 name=resources.unique_name(owner, "ask")).decode().strip()
    r.add(f"a container on {net.name} gets an answer from {box.name}:5000 by name", said == "200",
          f"GET /health said: {said[-160:]}", "on a user-defined network the name resolves; the "
          "service listens on 0.0.0.0:5000 in its container (lesson 07b §3)")
