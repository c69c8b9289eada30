"""Lesson 11's exercises: a framework run hardened, a trace widened until the floor image works, a stack chosen."""

import json

from .. import WorkbookError, floor, footprint, scoreboard, service, stacks
from .learner_image import labelled, learner_container, learner_image, published, running
from .report import NotDone, Stop, check, given

EX_FLOOR = "workbook/ex11-floor:{owner}"  # exercise 11.2's traced image


# Run as root inside the learner's container: can it write to / (EROFS when the root is
# read-only), and which capabilities may PID 1 ever have (its bounding set; 0 with --cap-drop ALL)?
INSIDE = """
import errno, json, os
try:
    open("/.wb-probe", "w").close()
    os.remove("/.wb-probe")
    read_only = False
except OSError as exc:
    read_only = exc.errno == errno.EROFS
status = dict(line.split(":", 1) for line in open("/proc/1/status") if ":" in line)
print(json.dumps({"read_only": read_only, "capabilities": int(status["CapBnd"], 16)}))
"""


@check("Exercise 11.1 · a framework, hardened")
def hardened(r, client, owner):
    """`{owner}-hardened` runs a stack of docker/stacks with a read-only root and no capabilities."""
    box = learner_container(client, f"{owner}-hardened")
    labelled(r, box, owner, "lesson 11")
    tags = client.images.get(box.attrs["Image"]).tags
    stack = next((s for s in stacks.STACKS.values() if s.tag in tags), None)
    if not r.add("it runs one of the serving stacks' images", stack,
                 f"its image is {tags or box.attrs['Image'][:19]}",
                 "run one of workbook/stack-fastapi, -litserve, -bentoml or -mlserver (lesson 11 §1)"):
        raise Stop
    try:
        service.wait_ready(box, timeout=60, path=stack.health)
    except WorkbookError:
        pass  # the criteria below say what went wrong
    running(r, box, "docker logs NAME says why it stopped: a framework that writes a file at start needs a "
                    "writable folder, --tmpfs /tmp (lesson 11 §4)")
    code, out = box.exec_run(["python", "-c", INSIDE], user="0")
    seen = json.loads(out.decode().strip().splitlines()[-1]) if code == 0 else {}
    r.add("its root filesystem is read-only", seen.get("read_only"), "a file could be written to / inside it",
          "docker run --read-only: the image's files cannot be changed; give a writable --tmpfs where the "
          "service must write (lesson 11 §4)")
    r.add("it has no Linux capabilities", seen.get("capabilities") == 0,
          f"PID 1's bounding set is {seen.get('capabilities', 0):#x}",
          "--cap-drop ALL takes every capability away (and --privileged gives them all back): a service on "
          "port 5000 needs none (lesson 11 §4)")
    if published(r, box) is None:
        raise Stop
    try:
        labels = stacks.ask(stack, service.url(box), stacks.flowers())
    except (WorkbookError, OSError) as exc:
        r.add("it answers the 30 flowers", False, str(exc).splitlines()[0], "read docker logs NAME (lesson 11 §4)")
        raise Stop
    r.add("it answers the 30 flowers", labels == stacks.labels(stacks.flowers()),
          "its labels differ from the model's", "lesson 11 §2")


@check("Exercise 11.2 · a trace that saw enough")
def traced(r, client, owner, probes):
    """`workbook/ex11-floor:{owner}`, traced with `probes`: at its floor, healthy, answering as production."""
    given("choose the probes, then build", probes=probes)
    image = learner_image(client, EX_FLOOR.format(owner=owner), "run the build cell above once `probes` is set")
    labelled(r, image, owner, "lesson 11")
    bound = _bound(client, owner)
    r.add("it is at its floor: at most 1.1× the traced bound", image.attrs["Size"] <= 1.1 * bound,
          f"{image.attrs['Size'] / bound:.2f}× the bound",
          "build it with floor.build from the production image: Dockerfile.traced copies only the traced files "
          "(lesson 11 §5)")
    box = service.run(client, image.id, owner, kind="floor")
    try:
        try:
            service.wait_healthy(box, timeout=60)
            healthy = True, ""
        except WorkbookError as exc:
            healthy = False, exc.problem.splitlines()[0]
        r.add("Docker reports it healthy", healthy[0], healthy[1],
              "the HEALTHCHECK is a python process of its own (urllib.request): keep the 'health check' probe, "
              "which waits until Docker has run it (lesson 11 §5)")
    finally:
        box.remove(force=True)
    diffs = floor.same_answers(client, image.id, service.tag("production"), owner, n=20)
    r.add("it answers every bad body and 20 random flowers as production does", not diffs,
          f"{len(diffs)} answers differ, e.g. {str(diffs[0])[:160]}" if diffs else "",
          "a path no probe exercised is not in the image: add the probe that sends the bad bodies (lesson 11 §5)")


_BOUNDS = {}  # production's image id -> its traced bound (a trace takes a while)


def _bound(client, owner):
    """The traced lower bound of the production image (bytes), traced once per image."""
    image = client.images.get(service.tag("production"))
    if image.id not in _BOUNDS:
        _BOUNDS[image.id] = footprint.trace(client, image.id, owner).bytes
    return _BOUNDS[image.id]


@check("Exercise 11.3 · the stack for the job")
def chosen(r, client, owner, board, choice):
    """`choice` is what the scoreboard picks for an OpenAPI schema with the quickest start."""
    given("read the scoreboard, then set choice", choice=choice)
    rows = {x["name"]: x for x in board["rows"]}
    said = str(choice).strip().lower()
    row = rows.get(said) or next((x for x in board["rows"] if x["title"].lower() == said), None)
    if not r.add("`choice` names an image of the scoreboard", row, f"choice is {choice!r}",
                 f"one of {', '.join(rows)} (lesson 11 §2)"):
        raise Stop
    r.add("it serves an OpenAPI schema", row["features"]["OpenAPI schema"],
          f"{row['name']} answered none of {', '.join(scoreboard.FEATURES['OpenAPI schema'])}",
          "the scoreboard's features column: a path that answered 200 (lesson 11 §2)")
    fit = [x for x in board["rows"] if scoreboard.ok(x) and x["features"]["OpenAPI schema"]]
    best = min(fit, key=lambda x: scoreboard.figure(x, "first_200")) if fit else None
    r.add("no other image that serves one starts sooner", best and best["name"] == row["name"],
          f"{best['name']} started in {scoreboard.figure(best, 'first_200'):.2f} s, {row['name']} in "
          f"{scoreboard.figure(row, 'first_200'):.2f} s" if best else "",
          "compare the 'first 200' column of the rows that serve a schema (lesson 11 §2)")
    if row["name"] not in {x["name"] for x in scoreboard.ranked(board)}:
        raise NotDone("that image gave other labels", "lesson 11 §2")
