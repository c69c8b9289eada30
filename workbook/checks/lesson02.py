"""Lesson 02's exercises: the learner runs, restarts and builds with the docker CLI."""

from docker.errors import ContainerError

from .. import resources
from .learner_image import (answers, built_on, labelled, learner_container, learner_image, published,
                            running, started_again)
from .report import NotDone, Stop, check

RUN_HINT = "docker run -d ... workbook/app:production: -d keeps it running in the background (lesson 02 §4)"


@check("Exercise 02.2 · run the model service yourself")
def run_service(r, client, owner):
    """The learner's container of workbook/app:production, published on 127.0.0.1, answering."""
    c = learner_container(client, f"{owner}-mine")
    running(r, c, RUN_HINT)
    labelled(r, c, owner, "lesson 02")
    if not r.add("it runs workbook/app:production", "workbook/app:production" in c.image.tags,
                 f"it runs {c.image.tags or c.image.short_id}", "name the image as lesson 02 §2 built it"):
        raise Stop()  # another image has no model service to answer
    answers(r, published(r, c))


@check("Exercise 02.3 · stop, start, and ask for the port again")
def restarted(r, client, owner, port):
    """Started at least twice (docker events), running, and `port` is its port now."""
    if port is ...:
        raise NotDone("port is still ...", "stop and start your container, then set port")
    c = learner_container(client, f"{owner}-mine", "do exercise 02.2 first")
    starts, again = started_again(client, c)
    r.add("it was stopped and started again", again, f"the engine saw {starts} start",
          "docker stop NAME, then docker start NAME (lesson 02 §6)")
    running(r, c, "docker start NAME runs a stopped container again (lesson 02 §6)")
    now = published(r, c)
    port = int(port) if str(port).isdigit() else port  # "32817" from a `!docker port` line is fine
    r.add("`port` is the port it has now", port == now and now is not None,
          f"port is {port!r}, the container is on {now}",
          "ask after every start: docker port NAME 5000 (the engine may pick another) (lesson 02 §6)")
    answers(r, now)


@check("Exercise 02.1 · one more layer on top of the model image")
def note_layer(r, client, owner, tag):
    """An image built FROM workbook/app:production that adds one layer holding /app/NOTE.txt."""
    image = learner_image(client, tag)
    labelled(r, image, owner, "lesson 02")
    base = client.images.get("workbook/app:production")
    if not r.add("it is built on workbook/app:production", built_on(image, base),
                 "its first layers are not the production image's",
                 "FROM workbook/app:production: the new image shares all its layers (lesson 02 §3)"):
        raise Stop()
    added = len(image.attrs["RootFS"]["Layers"]) - len(base.attrs["RootFS"]["Layers"])
    r.add("it adds exactly one layer", added == 1, f"it adds {added}",
          "each RUN, COPY or ADD adds a layer; LABEL, ENV, CMD only change metadata (lesson 02 §3)")
    try:
        out = client.containers.run(image.id, ["sh", "-c", "cat /app/NOTE.txt && echo"], remove=True,
                                    labels=resources.labels(owner)).decode().strip()
    except ContainerError:
        out = ""
    r.add("/app/NOTE.txt is in it", bool(out), "there is no /app/NOTE.txt (or it is empty)",
          "COPY NOTE.txt /app/ copies the file from the build context (lesson 02 §3)")

