"""Lab 00: the learner types the docker CLI; the checks read the engine and the lab's registry."""

import re

from docker.errors import NotFound

from .. import LABEL
from .learner_image import (answers, inside, labelled, learner_container, learner_image, published,
                            running, started_again)
from .report import NotDone, Stop, check, given

REPOSITORY = "lab-00"  # the repository the learner pushes to, in the lab's own registry
LISTENING = re.compile(r"Listening at: \w+://(\S+)")


def _mine(r, client, lab, todo):
    """The learner's image and running container, labelled, the one from the other (Stop if not)."""
    image = learner_image(client, lab.tag, "build it first: run the cell with your `!docker build`")
    labelled(r, image, lab.owner, "lab 00 §1", subject="the image")
    c = learner_container(client, lab.container, todo)
    running(r, c, "docker run -d ... keeps it running; docker start NAME starts it again "
                  "(docker logs NAME says why it stopped) (lab 00 §2, §5)")
    if not r.add(f"it runs {lab.tag}", c.image.id == image.id,
                 f"it runs {c.image.tags or c.image.short_id}",
                 f"docker rm -f NAME, then docker run ... {lab.tag} (lab 00 §2)"):
        raise Stop()
    labelled(r, c, lab.owner, "lab 00 §2", subject="the container")
    return image, c


@check("Lab 00 · build and run, by hand")
def built_and_running(r, client, lab, port):
    """Image built with the label, a container of it running on 127.0.0.1, `port` its host port."""
    _, c = _mine(r, client, lab, "run the cell with your `!docker run` first")
    now = published(r, c)
    answers(r, now)
    given("ask docker port NAME 5000, then set port", port=port)
    text = str(port).strip()
    port = int(text) if text.isdigit() else port  # "49153" copied from `docker port` is fine
    r.add("`port` is its port on the host", port == now and now is not None,
          f"port is {port!r}, the container is on {now}",
          "docker port NAME 5000 prints 127.0.0.1:PORT: the number after the colon (lab 00 §3)")


@check("Lab 00 · logs, exec, stop and start")
def looked_inside(r, client, lab, listening, uid):
    """`listening` read from the logs, `uid` from docker exec, the container stopped and started."""
    given("read the logs and run id inside, then set listening and uid", listening=listening, uid=uid)
    _, c = _mine(r, client, lab, "do §2 first: run the container")
    said = LISTENING.findall(c.logs().decode(errors="replace"))
    answer = str(listening).strip().removeprefix("http://")
    r.add("`listening` is the address gunicorn says it listens at", answer in said,
          f"listening is {listening!r}; the logs say {' and '.join(sorted(set(said))) or 'nothing about it'}",
          "docker logs NAME: find the line 'Listening at: http://ADDRESS:PORT' (lab 00 §4)")
    code, status = inside(c, "cat /proc/1/status")  # PID 1's user, whatever id the image has
    truth = next((ln.split()[1] for ln in status.splitlines() if ln.startswith("Uid:")), None)
    r.add("`uid` is the user id the service runs as", str(uid).strip() == truth,
          f"uid is {uid!r}, PID 1 runs as uid {truth}",
          "docker exec NAME id -u runs `id -u` inside the running container (lab 00 §4)")
    starts, again = started_again(client, c)
    r.add("it was stopped and started again", again, f"the engine saw {starts} start",
          "docker stop NAME, then docker start NAME (lab 00 §5)")
    answers(r, published(r, c))


@check("Lab 00 · push, then remove by hand")
def shared_and_removed(r, client, lab, registry):
    """The registry holds the learner's image; the container and the registry's local name are gone."""
    remote = registry.ref(REPOSITORY, "v1")
    image = _first_image(client, lab.tag, remote)
    pushed = registry.image_id(REPOSITORY, "v1")
    if pushed is None:
        if image is None:
            raise NotDone(f"no image {lab.tag}", "build it first: run the cell with your `!docker build`")
        raise NotDone(f"the registry has no {REPOSITORY}:v1",
                      f"docker tag {lab.tag} {remote}, then docker push {remote} (lab 00 §6)")
    digest = registry.digest(REPOSITORY, "v1")
    # The classic image store names an image by its config's digest, the containerd store by its manifest's.
    r.add(f"the registry's {REPOSITORY}:v1 is your image", image is not None and image.id in (pushed, digest),
          f"it holds {pushed[:19]}, your {lab.tag} is {image.id[:19]}" if image
          else f"{lab.tag} is gone: nothing to compare it with",
          "tag the image you built, then push that name (lab 00 §6)" if image
          else f"build it again with §1's command, then remove only {remote} (lab 00 §7)",
          note=f"digest {digest[:19]}…")
    try:
        c = client.containers.get(lab.container)
        r.add("the container is removed", False, f"{c.name} is still there ({c.status})",
              "docker rm -f NAME kills and removes it in one step (lab 00 §7)")
    except NotFound:
        r.add("the container is removed", True)
    tags = image.tags if image is not None else []
    r.add("the registry's name is untagged here", _first_image(client, remote) is None, f"{remote} is still a name here",
          f"docker rmi {remote} removes that one name; the image stays while another name "
          "has it (lab 00 §7)")
    r.add(f"{lab.tag} is still here", lab.tag in tags, f"{lab.tag} is gone",
          f"remove only the registry's name: the image stays under {lab.tag} "
          f"(labelled {LABEL}={lab.owner}, the cleanup cell removes it) (lab 00 §7)")


def _first_image(client, *refs):
    """The first of `refs` the engine has (None when it has none)."""
    for ref in refs:
        try:
            return client.images.get(ref)
        except NotFound:
            continue
    return None
