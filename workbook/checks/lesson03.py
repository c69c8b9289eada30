"""Lesson 03's exercises: ENV overridden at run time, CMD replaced, two containers by name."""

import time

from docker.errors import ContainerError, NotFound

from .. import containers, resources
from .learner_image import answers, labelled, learner_container, published, running
from .report import NotDone, check

IMAGE = "workbook/app:production"


@check("Exercise 03.2 · one gunicorn worker instead of two")
def one_worker(r, client, owner):
    """-e WORKERS=1: docker top shows gunicorn's master and one worker, and it answers."""
    c = learner_container(client, f"{owner}-one")
    running(r, c, "docker run -d ... keeps the service running (lesson 02 §4)")
    labelled(r, c, owner, "lesson 03")
    port = published(r, c)
    answers(r, port)  # waits until gunicorn has started its workers
    # gunicorn forks its workers a moment apart; the first may answer before the last exists
    procs = []
    for _ in range(8):
        procs = max(procs, [p for p in c.top()["Processes"] if "gunicorn" in " ".join(p)], key=len)
        time.sleep(0.25)
    r.add("it runs one gunicorn worker", len(procs) == 2,
          f"docker top shows {len(procs)} gunicorn processes (the master + {len(procs) - 1} workers)",
          "the image sets ENV WORKERS=2; -e WORKERS=1 overrides it at run time (lesson 03 §5, ARG vs ENV)")


@check("Exercise 03.1 · make the service image run another command")
def version_printed(r, client, owner):
    """CMD replaced: the container printed the scikit-learn version inside the image and exited 0."""
    c = learner_container(client, f"{owner}-version")
    labelled(r, c, owner, "lesson 03")
    # python -c ... exits in a second or two; a server never does (it turns healthy instead)
    containers.wait(c, "settled", timeout=20)
    c.reload()
    code = c.attrs["State"]["ExitCode"]
    r.add("it ran its command and exited 0", c.status == "exited" and code == 0,
          "it is still running: the image's CMD (gunicorn) started, not your command"
          if c.status == "running" else
          f"status {c.status}, exit code {code}: {_last_line(c)}",
          "what follows the image name replaces CMD: give the whole command, e.g. python -c '...' "
          "(lesson 03 §5, CMD vs ENTRYPOINT)")
    expected = client.containers.run(IMAGE, ["python", "-c", "import sklearn; print(sklearn.__version__)"],
                                      remove=True, labels=resources.labels(owner)).decode().strip()
    said = _last_line(c)
    words = said.replace("=", " ").replace(":", " ").split()  # "1.5.2", "sklearn 1.5.2", "Version: 1.5.2"
    r.add(f"it printed the image's scikit-learn version ({expected})", expected in words,
          f"its output ends with {said[:120]!r}",
          "run python -c 'import sklearn; print(sklearn.__version__)' in workbook/app:production "
          "(lesson 03 §5, CMD vs ENTRYPOINT)")


def _last_line(container):
    """The last line the container printed ('' if none)."""
    lines = container.logs().decode(errors="replace").strip().splitlines()
    return lines[-1].strip() if lines else ""


PROBE = ("import sys, urllib.request as u\n"
         "for _ in range(10):\n"
         "    try:\n"
         "        sys.exit(0 if u.urlopen('http://model:5000/health', timeout=2).status == 200 else 1)\n"
         "    except OSError:\n"
         "        __import__('time').sleep(0.5)\n"
         "sys.exit(1)\n")


@check("Exercise 03.3 · find the model by its name")
def by_name(r, client, owner):
    """On a labelled user-defined network, http://model:5000/health answers from another container."""
    name = f"{owner}-net"
    try:
        net = client.networks.get(name)
    except NotFound:
        raise NotDone(f"no network called {name}", "run the cell with your commands first") from None
    labelled(r, net, owner, "lesson 03")
    c = learner_container(client, f"{owner}-model")
    running(r, c, "docker run -d ... workbook/app:production (lesson 02 §4)")
    on = (c.attrs["NetworkSettings"]["Networks"] or {}).get(name)
    r.add(f"it is on {name}", on is not None, f"it is on {', '.join(c.attrs['NetworkSettings']['Networks'])}",
          "--network NAME puts it on that network (lesson 03 §6)")
    containers.wait(c, "ready", timeout=60)  # its HEALTHCHECK: gunicorn answers inside
    start = time.perf_counter()
    try:
        client.containers.run(IMAGE, ["python", "-c", PROBE], remove=True, network=name,
                              labels=resources.labels(owner))
        reached = True
    except ContainerError:
        reached = False
    r.add("another container on the network reaches http://model:5000/health", reached,
          "the name model does not answer there",
          "Docker's DNS answers a container's name or a --network-alias on the network they share "
          "(lesson 03 §6)", note=f"{time.perf_counter() - start:.1f} s")
