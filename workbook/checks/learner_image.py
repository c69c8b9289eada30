"""Helpers for checks: build the learner's image, run and probe its service, run code in it."""

import os
import re
import time

from docker.errors import DockerException, ImageNotFound, NotFound

from .. import LABEL, WorkbookError, bases, images, resources, service
from ..containers import when
from .report import NotDone, Stop


def instructions(text):
    """A Dockerfile's instruction lines (no comments, no blank lines, continuations joined)."""
    joined = re.sub(r"\\\s*\n", " ", "\n".join(
        ln for ln in text.splitlines() if not ln.lstrip().startswith("#")))
    return [ln.strip() for ln in joined.splitlines() if ln.strip()]


BUILD_HINT = "fix the step shown above; the Dockerfile reference and lesson 03 §2 explain each instruction"


def build(r, client, lab, dockerfile="Dockerfile", tag=None, name="builds"):
    """Build the lab's Dockerfile (a failed build: a ✗ line with the failing step, then Stop)."""
    path = lab.path / dockerfile
    if not path.exists() or not instructions(path.read_text()):
        raise NotDone(f"{os.path.relpath(path)} has no instructions yet",
                      "write the Dockerfile in the %%writefile cell above, run it, then this check")
    start = time.perf_counter()
    for attempt in (1, 2):
        try:
            image = images.build(client, lab.path, tag or lab.tag, lab.owner,
                                 dockerfile=dockerfile, buildargs=bases.build_args(client),
                                 log="none")
            break
        except images.BuildFailed as exc:
            r.add(name, False, exc.problem, BUILD_HINT)
            raise Stop() from None
        except NotFound:  # a cached layer removed meanwhile (another cleanup): build again
            if attempt == 2:
                raise
    seconds = time.perf_counter() - start
    r.add(name, True, note=f"{tag or lab.tag}, {seconds:.1f} s")
    return image, seconds


BUILT_HINT = ("run the build cell again after every change to the Dockerfile: a build that fails "
              "keeps the old image, and its output shows the failing step (lesson 03 §2)")


def learner_build(r, client, lab):
    """The image the learner built as lab.tag, from the Dockerfile as it is now (Stop if older)."""
    path = lab.path / "Dockerfile"
    if not path.exists() or not instructions(path.read_text()):
        raise NotDone(f"{os.path.relpath(path)} has no instructions yet",
                      "write the Dockerfile in the %%writefile cell above, run it, then the build cell")
    image = learner_image(client, lab.tag, "build it first: run the cell with `!docker build` below the Dockerfile")
    built_since(r, image, path, "the Dockerfile", BUILT_HINT, note=f"{lab.tag}, {image.attrs['Size'] / 1e6:.1f} MB")
    return image


def built_since(r, image, path, what, hint, note=""):
    """Criterion: the image was built (or tagged) after `path` last changed (Stop if not)."""
    # `docker build -t` tags the image again even when every step came from the cache.
    built = max(when(image.attrs["Created"]), when((image.attrs.get("Metadata") or {}).get("LastTagTime"))).timestamp()
    changed = path.stat().st_mtime
    if not r.add(f"your image is built from {what} as it is now", built >= changed - 1,
                 f"{image.tags[0] if image.tags else image.short_id} was built {changed - built:.0f} s "
                 f"before {what} last changed", hint, note=note):
        raise Stop()


def learner_service(r, client, lab, image, health_name="/health answers 200"):
    """The learner's container of `image` (docker run -d --name lab.container ...), answering /health."""
    c = learner_container(client, lab.container, "run it: the `!docker run` line of the build cell")
    if not r.add("your container runs that image", c.image.id == image.id,
                 f"{lab.container} runs {c.image.short_id}, {lab.tag} is now {image.short_id}",
                 "a container keeps the image it started from: run the build cell (docker rm -f, "
                 "docker run) again after each build (lesson 02 §4)"):
        raise Stop()
    c.reload()
    if c.status != "running":  # it never started (its command is not there), or it has ended
        state = c.attrs["State"]
        text = (f"the container is {c.status} (exit code {state['ExitCode']}"
                + (f": {state['Error']}" if state.get("Error") else "") + f"); last log lines:\n{_tail(c)}")
        r.add(health_name, False, text, why_no_answer(c, text))
        raise Stop()
    published(r, c)
    status, text = probe(c)
    if not r.add(health_name, status == 200, text if status != 200 else "", why_no_answer(c, text)):
        raise Stop()
    return c


def run_service(client, lab, image, **kw):
    """docker run -d -p 127.0.0.1::5000 IMAGE, labelled for the lab; NotStarted if it cannot."""
    # cleanup_containers removes it. A container that cannot start (its command is not in the
    # image) is a learner's mistake: NotStarted carries Docker's reason.
    try:
        return service.run(client, image.id, lab.owner, kind="check", **kw)
    except DockerException as exc:
        reason = getattr(exc, "explanation", None) or str(exc)
        raise NotStarted(f"the container did not start: {reason}") from None


class NotStarted(Exception):
    """docker run failed for a reason in the image (e.g. its CMD is not found)."""


def cleanup_containers(client, lab):
    """Remove the containers a check started (the lab's label, not the learner's lab.container)."""
    for c in client.containers.list(all=True, filters={"label": f"{resources.CREATED_BY}={lab.owner}"}):
        if c.name == lab.container:
            continue
        try:
            c.remove(force=True, v=True)
        except DockerException:
            pass


def _tail(container, n=6):
    return container.logs(tail=n).decode(errors="replace").strip()


def probe(container, path="/health", timeout=45):
    """Poll a container's published service port; return (status or None, why-not text)."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        container.reload()
        if container.status in ("exited", "dead"):
            code = container.attrs["State"]["ExitCode"]
            return None, f"the container stopped (exit code {code}); last log lines:\n{_tail(container)}"
        try:
            status, _ = service.call(container, path, timeout=2)
            return status, f"{path} answered {status}"
        except (OSError, LookupError):
            time.sleep(0.2)
        # Listening, but not where a published port can reach: waiting will not help.
        if LOOPBACK.search(container.logs(tail=20).decode(errors="replace")):
            return None, f"no answer on {path}; the log says:\n{_tail(container)}"
    return None, f"no answer on {path} within {timeout} s; last log lines:\n{_tail(container)}"


LOOPBACK = re.compile(r"Listening at: http://(127\.0\.0\.1|localhost)[:/]")
# dash: Syntax error: "(" unexpected; bash: syntax error near unexpected token `('
SHELL_PARENS = re.compile(r"[Ss]yntax error(: \"\(\" unexpected| near unexpected token `\()")


def why_no_answer(container, text):
    """A hint for a service that does not answer: the concept behind the usual causes."""
    logs = container.logs().decode(errors="replace") if container else ""
    if "model" in logs and ("not found" in logs or "No such file" in logs or "model_refused" in logs):
        return "the model file is not where MODEL_PATH says: COPY models/ into the image (lesson 03 §2)"
    if LOOPBACK.search(logs):
        return ("the server listens on 127.0.0.1 inside the container, which a published port "
                "cannot reach: bind 0.0.0.0 (gunicorn.conf.py does; lesson 03 §3)")
    if SHELL_PARENS.search(logs):  # CMD gunicorn ... app:create_app() in shell form
        return ("a shell-form CMD runs through /bin/sh, which reads the parentheses of "
                "app:create_app() as its own syntax: write it in exec form, "
                'CMD ["gunicorn", "--config", "gunicorn.conf.py", "app:create_app()"] (lesson 03 §2)')
    if "executable file not found" in text:
        return ("the command is not on the PATH: install requirements.txt, and if they went into a "
                "virtual environment, put its bin/ on the PATH (ENV PATH=/opt/venv/bin:$PATH) "
                "(lesson 03 §2, lesson 04 §4)")
    if "No module named" in logs or "not found" in logs:
        return "the command or a package is missing: install requirements.txt, CMD gunicorn (lesson 03 §2)"
    return ("the service must start gunicorn with gunicorn.conf.py (it binds 0.0.0.0:5000) and "
            "EXPOSE 5000; compare with lesson 03 §2-3")


def predictions_ok(r, container, name="/predict returns the right classes"):
    """Criterion: the service labels the known flowers (service.SAMPLES) correctly."""
    want = [label for _, label in service.SAMPLES]
    try:
        got, _ = service.predictions(container)
    except (WorkbookError, OSError, KeyError, TypeError) as exc:
        return r.add(name, False, str(exc).splitlines()[0],
                     "the image must serve docker/app/app.py with its model (lesson 03 §3)")
    return r.add(name, got == want, f"got {got}, want {want}", note=f"{len(want)} known flowers",
                 hint="the model in the image is not the trained one: COPY models/ from the lab folder "
                 "(lesson 03 §1)")


def in_image(client, lab, image, code, **kw):
    """Run a Python snippet in a throwaway container of the image; return its stdout."""
    out = client.containers.run(image.id, ["python", "-c", code], entrypoint=[], remove=True,
                                labels=resources.labels(lab.owner),
                                name=resources.unique_name(lab.owner, "probe"), **kw)
    return out.decode(errors="replace").strip()


def learner_image(client, tag, todo="write the Dockerfile, then run your docker build"):
    """The image the learner built as `tag` (NotDone while there is none)."""
    try:
        return client.images.get(tag)
    except ImageNotFound:
        raise NotDone(f"no image {tag}", todo) from None


def built_on(image, base):
    """True when `image` is built on `base`: its layers begin with all of the base's."""
    ours, theirs = image.attrs["RootFS"]["Layers"], base.attrs["RootFS"]["Layers"]
    return ours[:len(theirs)] == theirs


def learner_container(client, name, todo="run the cell with your `!docker run` first"):
    """The container the learner named `name` (NotDone while there is none)."""
    try:
        return client.containers.get(name)
    except NotFound:
        raise NotDone(f"no container called {name}", todo) from None


def running(r, container, hint):
    """Criterion: the container is running (Stop if not: nothing else can be read from it)."""
    container.reload()
    if not r.add("it is running", container.status == "running",
                 f"its status is {container.status!r}", hint):
        raise Stop()


def labelled(r, resource, owner, lesson, subject="it", how=None):
    """Criterion: a container, volume or image carries workbook=OWNER (the cleanup finds it)."""
    # A container's or image's labels are in Config, a service's in Spec, a volume's at the top.
    found = (resource.attrs.get("Config") or resource.attrs.get("Spec") or resource.attrs).get("Labels") or {}
    how = how or (f"add --label {LABEL}={owner} to your docker build" if "RootFS" in resource.attrs
                  else "add {LABELS} to the command")
    # A container inherits its image's labels; only {LABELS} on `docker run` adds CREATED_BY.
    keys = (LABEL, resources.CREATED_BY) if "State" in resource.attrs else (LABEL,)
    missing = [f"{k}={owner}" for k in keys if found.get(k) != owner]
    r.add(f"{subject} carries the label {LABEL}={owner}", not missing,
          f"it lacks {' and '.join(missing)}" + (f" (it has {LABEL}={found[LABEL]})" if found.get(LABEL) else ""),
          f"{how}: the cleanup cell finds what carries the label ({lesson}, Cleanup)")


def inside(container, command):
    """(exit code, what `docker exec CONTAINER sh -c COMMAND` prints)."""
    code, out = container.exec_run(["sh", "-c", command])
    return code, out.decode(errors="replace").strip()


def published(r, container):
    """Criterion: port 5000 is published on 127.0.0.1 only; returns the host port or None."""
    bindings = (container.attrs["NetworkSettings"]["Ports"] or {}).get(service.PORT) or []
    local = [b for b in bindings if b["HostIp"] == "127.0.0.1"]
    r.add("port 5000 is published on 127.0.0.1 only", local and len(local) == len(bindings),
          f"port 5000 is published on {[b['HostIp'] or '0.0.0.0' for b in bindings]}" if bindings
          else "port 5000 is not published",
          "-p 127.0.0.1::5000 publishes the container's port 5000 on a free port of 127.0.0.1 "
          "(lesson 02 §4)")
    return int(local[0]["HostPort"]) if local else None


def healthy(port, timeout=30):
    """True when GET /health on 127.0.0.1:port answers 200 within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while port and time.monotonic() < deadline:
        try:
            if service.call(f"http://127.0.0.1:{port}", "/health", timeout=2)[0] == 200:
                return True
        except OSError:  # still starting: the connection is refused or dropped
            pass
        time.sleep(0.3)
    return False


def answers(r, port, timeout=30):
    """Criterion: GET /health on 127.0.0.1:port answers 200 within `timeout` seconds."""
    status = 200 if healthy(port, timeout) else None
    r.add("it answers GET /health", status == 200,
          f"no answer on 127.0.0.1:{port}" if port else "nothing to ask: no port on 127.0.0.1",
          "the service listens on port 5000 inside the container: publish that one (lesson 02 §4)")


def started_again(client, container):
    """(starts the engine recorded, whether the container was started again after its first start)."""
    created = when(container.attrs["Created"]).timestamp()
    starts = sum(1 for _ in client.events(since=created - 1, until=int(time.time()) + 1, decode=True,
                                          filters={"container": container.id, "event": "start"}))  # docker events
    # The engine keeps its last 256 events only (health probes fill them): a container that
    # finished once and started after that was started again too (stop/start, restart).
    state = container.attrs["State"]
    finished = not state["FinishedAt"].startswith("0001-") and state["StartedAt"] > state["FinishedAt"]
    return starts, starts >= 2 or finished

