"""Lesson 08's exercises: what an image adds to its base, a code change's rebuild, workers as processes."""

import time

from .. import BUILD, bases, resources, service
from .learner_image import answers, labelled, learner_container, learner_image, published, running
from .report import Stop, check, given

EX_IMAGE = "workbook/ex08:{owner}"  # exercise 08.2's rebuild
EX_BEFORE = "workbook/ex08-before:{owner}"  # and its build before the change
CHANGE = "# my change"


def _number(value):
    """A float from a number or its text ("212.4", "212.4 MB"); None if it is none."""
    try:
        return float(str(value).split()[0])
    except (ValueError, IndexError):
        return None


@check("Exercise 08.1 · what the service adds to its base")
def added(r, client, owner, added_mb, more_than_base):
    """`added_mb`: production's size minus its base's, in MB; `more_than_base`: is that more than the base?"""
    given("measure, then set both", added_mb=added_mb, more_than_base=more_than_base)
    image = client.images.get(service.tag("production"))
    base = client.images.get(bases.resolve("python-slim", client).ref)
    truth = (image.attrs["Size"] - base.attrs["Size"]) / 1e6
    said = _number(added_mb)
    r.add("`added_mb` is production's size minus its base's, in MB",
          said is not None and abs(said - truth) <= 1, f"added_mb is {added_mb!r}",
          "in a terminal, docker image inspect --format '{{.Size}}' IMAGE gives bytes: production's minus the base's, "
          "divided by 1,000,000 (lesson 08 §1)")
    bigger = truth * 1e6 > base.attrs["Size"]
    r.add("`more_than_base` is what the sizes say", str(more_than_base).strip().lower() == str(bigger).lower(),
          f"more_than_base is {more_than_base!r}",
          "compare what production adds with the base image's own size, True or False (lesson 08 §1)")


def scratch_context(owner):
    """A fresh copy of docker/app (code, model, wheels) to change and rebuild: build/08/ex-OWNER."""
    return service.copy_context(BUILD / "08" / f"ex-{owner.lower()}")


def build_args(client):
    """The --build-arg flags that point the model service's Dockerfile at this engine's bases."""
    return " ".join(f"--build-arg {k}={v}" for k, v in bases.build_args(client).items())


def _last_line(client, owner, image):
    """The last line of /app/app.py in the image."""
    out = client.containers.run(image.id, ["tail", "-n", "1", "/app/app.py"], remove=True,
                                labels=resources.labels(owner))
    return out.decode(errors="replace").strip()


@check("Exercise 08.2 · a code change, rebuilt")
def rebuilt(r, client, owner):
    """Two builds of the scratch context, before and after a code change; the second reuses the dependencies."""
    before = learner_image(client, EX_BEFORE.format(owner=owner.lower()),
                           "build the unchanged copy first, as the cell says")
    after = learner_image(client, EX_IMAGE.format(owner=owner.lower()),
                          "change app.py, then build it again as the cell says")
    labelled(r, before, owner, "lesson 08", subject="the first build")
    labelled(r, after, owner, "lesson 08", subject="the second build")
    r.add("the first build does not hold the change", CHANGE not in _last_line(client, owner, before),
          "its app.py already ends with the change", "build the copy before you change it (lesson 08 §2)")
    if not r.add("the second build holds the change", _last_line(client, owner, after) == CHANGE,
                 "its app.py does not end with the line " + CHANGE,
                 f"append the line '{CHANGE}' to app.py in the copy, then build again (lesson 08 §2)"):
        raise Stop()
    # The last two layers are the code's COPY and the model's; everything under them is the
    # base, the service user and the venv: a code change must not build those again.
    old, new = before.attrs["RootFS"]["Layers"], after.attrs["RootFS"]["Layers"]
    kept = len(old) == len(new) and old[:-2] == new[:-2]
    r.add("the rebuild reused every layer under the code", kept,
          f"{sum(a != b for a, b in zip(old[:-2], new[:-2])) or 'the number of'} layers under the code differ",
          "change only app.py, and build with the same build arguments and without --no-cache: "
          "every step before the code's COPY then comes from the cache (lesson 08 §2)")


def _gunicorn_processes(box, settle=5):
    """How many gunicorn processes docker top lists, once the count stays the same for 0.5 s."""
    def count():
        top = box.top()
        cmd = top["Titles"].index("CMD")
        return sum("gunicorn" in p[cmd] and "docker-init" not in p[cmd] for p in top["Processes"])

    deadline, last = time.monotonic() + settle, count()
    while time.monotonic() < deadline:  # gunicorn forks its workers one after another
        time.sleep(0.5)
        if (now := count()) == last:
            break
        last = now
    return last


@check("Exercise 08.3 · workers are processes")
def workers(r, client, owner, processes):
    """`{owner}-workers` runs 3 gunicorn workers and answers; `processes` is what docker top lists."""
    box = learner_container(client, f"{owner}-workers")
    labelled(r, box, owner, "lesson 08")
    running(r, box, "docker run -d ... keeps it running; docker logs NAME says why it stopped (lesson 08 §5)")
    env = dict(e.partition("=")[::2] for e in box.attrs["Config"]["Env"] or [])
    r.add("it is told to run 3 workers", env.get("WORKERS") == "3", f"WORKERS={env.get('WORKERS')}",
          "-e WORKERS=3: gunicorn.conf.py reads it (lesson 08 §5)")
    port = published(r, box)
    answers(r, port)
    given("run docker top NAME, count, then set processes", processes=processes)
    found = _gunicorn_processes(box)
    r.add("`processes` is how many gunicorn processes docker top lists", str(processes).strip() == str(found),
          f"processes is {processes!r}",
          "docker top NAME: one gunicorn master, which starts the workers and restarts any that die, "
          "plus the workers (lesson 08 §5)")
