"""The labs' checks: inspect the learner's real Dockerfile, image, containers or stack.

Public API (every lab follows it; labs 5-7 add their checks at the end of this file)

    lab = checks.prepare(client, "01", OWNER, given=None)
        Reset the lab: remove what OWNER labelled, make a fresh folder build/labs/OWNER/ holding
        docker/app's code, model and staged wheels (no Dockerfile; `given` text becomes one).
        A Lab has .number, .owner, .path, .dockerfile (a path relative to the notebook, for
        `%%writefile {lab.dockerfile}`), .tag ("workbook/lab-NN:latest").
    report = checks.first_container(client, lab)    # one function per lab (see the bottom)
        Prints one line per criterion (passed or not, with a hint for each failure) and
        returns the Report; never raises for a learner's mistake.

Writing a check

    @check("Lab 01 · first container")
    def first_container(r, client, lab):        # r is the Report being filled
        image, seconds = build(r, client, lab)  # a build error: a failed line + its step, stop
        r.add("name", passed, detail="what was found", hint="concept (lesson NN §N)",
              note="shown when it passed")         # one criterion, shown in order
        r.figures["image size"] = "..."         # what the summary cell shows
        raise NotDone("no image yet", "run the build cell first")   # "not done yet: ..."
        raise Stop()                            # end after a failed criterion others need

`check` runs the function, turns NotDone, Stop and WorkbookError/Docker errors into report
lines (never a traceback), prints the report and returns it. Report.passed is True only
when every criterion passed; Report.not_done holds the "not done yet" message, if any.
Hints name the concept and the lesson section to revisit, e.g. "lesson 04 §3".
Helpers for checks: build(), run_service(), probe(), in_image(), cleanup_containers().

A lab notebook (solutions/NN_name.ipynb; labs/ is generated from it, see workbook/labs.py)
sets OWNER in its `parameters` cell (tests inject their own), calls prepare() first, and tags
its check cells `check`: tests/test_labs.py runs each generated lab to its first check and
wants "not done yet" printed there, with no error on the way.
"""

import functools
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from docker.errors import DockerException, NotFound

from . import BUILD, WorkbookError, bases, images, resources, service

LABS = BUILD / "labs"
PASS, FAIL = "✓", "✗"


class NotDone(Exception):
    """Raised by a check when what it needs does not exist yet (no Dockerfile, no image...)."""

    def __init__(self, what, todo):
        super().__init__(what)
        self.what, self.todo = what, todo


class Stop(Exception):
    """Raised by a check to end it early, after a failed criterion the others depend on."""


@dataclass
class Criterion:
    """One line of a report."""

    name: str
    passed: bool
    detail: str = ""  # shown when it failed: what was found
    hint: str = ""  # shown when it failed: the concept and the lesson section to revisit
    note: str = ""  # shown when it passed: what was measured

    def __str__(self):
        if self.passed:
            return f"{PASS} {self.name}" + (f" ({self.note})" if self.note else "")
        line = f"{FAIL} {self.name}" + (f": {self.detail}" if self.detail else "")
        return line + (f"\n    hint: {self.hint}" if self.hint else "")


@dataclass
class Report:
    """What one check found: its criteria in order, or why it could not start."""

    title: str
    criteria: list = field(default_factory=list)
    not_done: str = None
    figures: dict = field(default_factory=dict)

    def add(self, name, passed, detail="", hint="", note=""):
        """Record one criterion; return whether it passed."""
        self.criteria.append(Criterion(name, bool(passed), detail, hint, note))
        return bool(passed)

    @property
    def passed(self):
        """True when the check ran to the end and every criterion passed."""
        return self.not_done is None and bool(self.criteria) and all(
            c.passed for c in self.criteria)

    @property
    def failed(self):
        """The names of the criteria that failed."""
        return [c.name for c in self.criteria if not c.passed]

    def get(self, name):
        """The criterion called name (None if the check never reached it)."""
        return next((c for c in self.criteria if c.name == name), None)

    def verdict(self):
        """One line: done, not done yet, or how many criteria passed."""
        if self.not_done:
            return "not done yet"
        ok = sum(c.passed for c in self.criteria)
        return "done" if self.passed else f"{ok} of {len(self.criteria)} criteria passed"

    def __str__(self):
        lines = [self.title]
        lines += [str(c) for c in self.criteria]
        if self.not_done:
            lines.append(f"not done yet: {self.not_done}")
        elif self.passed:
            lines.append(f"done: all {len(self.criteria)} criteria passed")
        else:
            lines.append(f"{self.verdict()}: fix the ✗ lines and run this check again")
        return "\n".join(lines)


def check(title):
    """Decorator: run a check function with a fresh Report, print the report, return it."""
    def wrap(fn):
        @functools.wraps(fn)
        def run(*args, quiet=False, **kw):
            r = Report(title)
            try:
                fn(r, *args, **kw)
            except NotDone as exc:
                r.not_done = f"{exc.what} -> {exc.todo}"
            except Stop:
                pass
            except WorkbookError as exc:
                r.add("could not finish the check", False, exc.problem, exc.fix)
            except DockerException as exc:
                r.add("could not finish the check", False, f"Docker said: {exc}",
                      "read the message; fix what it names and run the check again")
            if not quiet:
                print(r)
            return r
        return run
    return wrap


@dataclass
class Lab:
    """A lab's own folder, owner and image name."""

    number: str
    owner: str
    path: Path
    tag: str

    @property
    def dockerfile(self):
        """The lab's Dockerfile, relative to the notebook (for `%%writefile {lab.dockerfile}`)."""
        return Path(os.path.relpath(self.path / "Dockerfile"))


def prepare(client, number, owner, given=None, tag=None):
    """Reset a lab: remove what `owner` labelled, then a fresh folder with the app's sources."""
    resources.cleanup(client, owner)
    path = LABS / owner
    path.parent.mkdir(parents=True, exist_ok=True)
    service.copy_context(path)
    for f in path.glob("Dockerfile*"):  # the learner writes the Dockerfile
        f.unlink()
    if given:
        (path / "Dockerfile").write_text(given)
    return Lab(number, owner, path, tag or f"workbook/lab-{number}:latest")


def reset(client, lab):
    """Remove the lab's containers and images (what its OWNER labelled), keep its folder."""
    return resources.cleanup(client, lab.owner)


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


def run_service(client, lab, image, **kw):
    """docker run -d -p 127.0.0.1::5000 IMAGE, labelled for the lab (removed by cleanup_containers).

    A container that cannot start (its command is not in the image) is a learner's mistake:
    NotStarted carries Docker's reason.
    """
    try:
        return service.run(client, image.id, lab.owner, kind="check", **kw)
    except DockerException as exc:
        reason = getattr(exc, "explanation", None) or str(exc)
        raise NotStarted(f"the container did not start: {reason}") from None


class NotStarted(Exception):
    """docker run failed for a reason in the image (e.g. its CMD is not found)."""


def cleanup_containers(client, lab):
    """Remove the containers a check started (they carry the lab's owner label)."""
    for c in client.containers.list(all=True, filters={"label": f"{resources.CREATED_BY}={lab.owner}"}):
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


def why_no_answer(container, text):
    """A hint for a service that does not answer: the concept behind the usual causes."""
    logs = container.logs().decode(errors="replace") if container else ""
    if "model" in logs and ("not found" in logs or "No such file" in logs or "model_refused" in logs):
        return "the model file is not where MODEL_PATH says: COPY models/ into the image (lesson 03 §2)"
    if LOOPBACK.search(logs):
        return ("the server listens on 127.0.0.1 inside the container, which a published port "
                "cannot reach: bind 0.0.0.0 (gunicorn.conf.py does; lesson 03 §3)")
    if "executable file not found" in text or "No module named" in logs or "not found" in logs:
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


def _serves(r, client, lab, image, health_name="/health answers 200", **run_kw):
    """Run the image, check /health; return the container (Stop if it never answers)."""
    try:
        container = run_service(client, lab, image, **run_kw)
    except NotStarted as exc:
        r.add(health_name, False, str(exc), why_no_answer(None, str(exc)))
        raise Stop() from None
    status, text = probe(container)
    if not r.add(health_name, status == 200, text if status != 200 else "",
                 why_no_answer(container, text)):
        raise Stop()
    return container


# ---------------------------------------------------------------- lab 01


@check("Lab 01 · first container for the model")
def first_container(r, client, lab):
    """The Dockerfile builds; the container answers /health and labels known flowers."""
    try:
        image, _ = build(r, client, lab)
        r.figures["image size"] = f"{image.attrs['Size'] / 1e6:.1f} MB"
        container = _serves(r, client, lab, image)
        predictions_ok(r, container)
    finally:
        cleanup_containers(client, lab)


# ---------------------------------------------------------------- lab 02


# Seconds a code-change rebuild may take beyond a rebuild with no change at all (which
# costs the same context upload and engine load): reinstalling the packages takes 20 s+.
FAST_REBUILD = 10.0


def dependency_layer(image):
    """The history row of the layer holding the dependencies: the biggest `pip install` step,
    else (multi-stage) the biggest COPY of installed packages from another stage."""
    rows = image.history()
    pip = [h for h in rows if "pip" in h["CreatedBy"] and "install" in h["CreatedBy"]]
    copied = [h for h in rows if "COPY" in h["CreatedBy"] and h["Size"] > 20_000_000]
    return max(pip or copied, key=lambda h: h["Size"], default=None)


@check("Lab 02 · cache-friendly build")
def cache_friendly(r, client, lab):
    """After a code-only change the dependency layer is reused and the rebuild is fast."""
    app = lab.path / "app.py"
    original = app.read_text()
    try:
        before, _ = build(r, client, lab)
        layer = dependency_layer(before)
        if not r.add("installs the requirements in their own step", layer,
                     "no RUN pip install step (or COPY of installed packages) found",
                     "install requirements.txt with one RUN pip install (lesson 04 §3)"):
            raise Stop()
        _, unchanged = build(r, client, lab, name="rebuilds with no change (all from the cache)")
        # A change no earlier build has seen, so the cache cannot hold it already.
        app.write_text(original + f"\n# lab 02: a code-only change ({secrets.token_hex(4)})\n")
        after, seconds = build(r, client, lab, name="rebuilds after a change to app.py")
        after_layer = dependency_layer(after)
        r.figures["rebuild with no change"] = f"{unchanged:.1f} s"
        r.figures["rebuild after a code change"] = f"{seconds:.1f} s"
        r.add("the dependency layer is reused", after_layer and after_layer["Id"] == layer["Id"],
              "the pip install layer was built again",
              "copy requirements.txt and the wheels, install, and only then copy the code: a COPY "
              "of a changed file invalidates every step below it (lesson 04 §3)")
        extra = max(0.0, seconds - unchanged)
        r.add(f"the rebuild is fast (under {FAST_REBUILD:.0f} s more than with no change)",
              extra < FAST_REBUILD, f"{extra:.1f} s more", note=f"{extra:.1f} s more", hint=
              "only the steps after the code COPY should run again (lesson 04 §3)")
        r.add("the code change reached the image", after.id != before.id,
              "the image did not change", "COPY app.py into the image (lesson 03 §2)")
        container = _serves(r, client, lab, after)
        predictions_ok(r, container)
    finally:
        app.write_text(original)
        cleanup_containers(client, lab)


# ---------------------------------------------------------------- lab 03


SIZE_BUDGET = 1.1  # × the production image measured on this machine
COMPILERS = ("gcc", "cc", "g++", "c++", "make")
LEFTOVERS = r"""
import glob, os, shutil
found = [c for c in {compilers} if shutil.which(c)]
print("compilers:", " ".join(found))
caches = [p for p in glob.glob("/root/.cache/pip") + glob.glob("/home/*/.cache/pip")
          + glob.glob("/tmp/pip-*") if glob.glob(p + "/**", recursive=True)[1:]]
print("caches:", " ".join(caches))
names, wheels = set({wheels}), []
for top, dirs, files in os.walk("/"):
    dirs[:] = [d for d in dirs if top != "/" or d not in ("proc", "sys", "dev")]
    wheels += [os.path.join(top, f) for f in files if f in names]
print("wheels:", len(wheels), " ".join(wheels[:2]))
"""


def _leftovers(client, lab, image):
    """Compilers on the PATH, pip caches, and the lab's wheelhouse files found in the image."""
    wheels = sorted(p.name for p in (lab.path / "wheels").glob("*.whl"))
    out = in_image(client, lab, image, LEFTOVERS.format(compilers=COMPILERS, wheels=wheels))
    found = dict(ln.split(":", 1) for ln in out.splitlines() if ":" in ln)
    return {k: v.strip() for k, v in found.items()}


@check("Lab 03 · smaller image")
def smaller_image(r, client, lab, production="workbook/app:production"):
    """Multi-stage: under the size budget, no compiler or pip cache inside, same predictions."""
    try:
        reference = client.images.get(production)
    except DockerException:
        raise NotDone(f"the reference image {production} is not built",
                      "run the lab's first cell (it builds it from cache)") from None
    try:
        image, _ = build(r, client, lab)
        size, budget = image.attrs["Size"], SIZE_BUDGET * reference.attrs["Size"]
        r.figures["image size"] = f"{size / 1e6:.1f} MB"
        r.figures["size budget"] = f"{budget / 1e6:.1f} MB"
        r.add(f"size within {SIZE_BUDGET}× the production image", size <= budget,
              f"{size / 1e6:.1f} MB, budget {budget / 1e6:.1f} MB",
              note=f"{size / 1e6:.1f} MB, budget {budget / 1e6:.1f} MB", hint=
              "install in a builder stage, copy only the installed packages into a slim final "
              "stage (lesson 04 §4)")
        found = _leftovers(client, lab, image)
        r.add("no compiler in the final image", not found.get("compilers"),
              f"found {found.get('compilers')}",
              "compilers belong in the builder stage only; the final stage starts from the slim "
              "base (lesson 04 §4)")
        r.add("no pip cache or wheel files in the final image",
              not found.get("caches") and found.get("wheels", "0").split()[0] == "0",
              f"caches: {found.get('caches') or '-'}; wheels: {found.get('wheels')}",
              "pip install --no-cache-dir in the builder, and copy the installed packages, not "
              "the wheels, into the final stage (lesson 04 §4)")
        container = _serves(r, client, lab, image)
        predictions_ok(r, container, "same predictions as the production image")
    finally:
        cleanup_containers(client, lab)


# ---------------------------------------------------------------- lab 04


HARDENED_RUN = {"read_only": True, "cap_drop": ["ALL"], "tmpfs": {"/tmp": "size=16m"}}
HEALTH_WAIT = 60  # seconds


def wait_health(container, timeout=HEALTH_WAIT):
    """Docker's health status once it settles: (status, last probe's output); fails fast."""
    start, since = time.perf_counter(), datetime.now(timezone.utc)
    while True:
        container.reload()
        health = container.attrs["State"].get("Health")
        if health is None:
            return None, ""
        log = health.get("Log") or []
        lines = (log[-1].get("Output") or "").strip().splitlines() if log else []
        last = lines[-1][-200:] if lines else ""
        settled = health["Status"] in ("healthy", "unhealthy") or container.status != "running"
        # Failures in the start period do not count, but three in a row after the service
        # answered (it had when this wait began) say enough.
        recent = [e for e in log if _started(e) >= since]
        if settled or (len(recent) >= 3 and all(e.get("ExitCode") for e in recent[-3:])):
            return health["Status"] if container.status == "running" else container.status, last
        if time.perf_counter() - start > timeout:
            return health["Status"], last or "no probe ran yet: is --interval short (2s)?"
        time.sleep(0.25)


def _started(entry):
    """When a health probe started (Docker's RFC 3339 time, nanoseconds cut to micro)."""
    stamp = re.sub(r"(\.\d{6})\d*", r"\1", entry.get("Start", "")).replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(stamp)
    except ValueError:
        return datetime.min.replace(tzinfo=timezone.utc)


def user_id(container):
    """The uid the container's main process runs as (asked inside it, like `id -u`)."""
    code, out = container.exec_run(["python", "-c", "import os; print(os.getuid())"])
    return out.decode(errors="replace").strip() if code == 0 else None


@check("Lab 04 · hardened image")
def hardened_image(r, client, lab):
    """Non-root, a working HEALTHCHECK, no secret anywhere, runs read-only with no capabilities."""
    from . import scan
    try:
        image, _ = build(r, client, lab)
        container = _serves(r, client, lab, image, "the container starts and answers /health")
        uid = user_id(container)
        r.add("runs as a non-root user (id -u in the running container)", uid not in (None, "0"),
              f"id -u says {uid}", note=f"uid {uid}", hint=
              "create a user (useradd --uid 1000 ...) and switch to it with USER 1000 after the "
              "steps that need root (lesson 04 §6)")
        health, last = wait_health(container)
        r.figures["health"] = health or "no HEALTHCHECK"
        r.add("HEALTHCHECK reports healthy", health == "healthy",
              "the image has no HEALTHCHECK" if health is None
              else f"status {health}; last probe said: {last or '(nothing)'}",
              "HEALTHCHECK --interval=2s CMD a probe the image can run: a slim image has no curl, "
              "python -c 'urllib.request.urlopen(...)' works (lesson 04 §6, production Dockerfile)")
        findings = scan.scan_image(client, image)
        r.figures["secrets found"] = len(findings)
        r.add("no secret in config, history or layers", not findings,
              "\n      " + scan.describe(findings[:4]).replace("\n", "\n      "),
              "never bake a secret into an image: not in ENV/ARG, not in a file a later step "
              "deletes (every layer keeps it); mount it at run time (lesson 06 §4, lesson 07)")
        try:
            locked = run_service(client, lab, image, **HARDENED_RUN)
            status, text = probe(locked)
        except NotStarted as exc:
            status, text = None, str(exc)
        if r.add("runs with a read-only root filesystem and cap_drop ALL", status == 200, text,
                 "the service may write only to /tmp (a tmpfs here) and needs no capability: "
                 "no chown or apt-get at start, no port below 1024 (lesson 07)",
                 note="docker run --read-only --cap-drop ALL --tmpfs /tmp"):
            predictions_ok(r, locked, "same predictions, locked down")
    finally:
        cleanup_containers(client, lab)


# ---------------------------------------------------------------- labs 05-07: stacks


def lab_file(lab, name):
    """A file of the lab's folder, relative to the notebook (for `%%writefile {path}`)."""
    return Path(os.path.relpath(lab.path / name))


def prepare_folder(client, number, owner, tag=None):
    """Reset a stack lab: its project down, what `owner` labelled removed, an empty folder."""
    reset_stack(client, owner)
    resources.cleanup(client, owner)
    path = LABS / owner
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return Lab(number, owner, path, tag or f"workbook/lab-{number}:latest")


def reset_stack(client, owner):
    """Take the lab's Compose project down and remove its swarm stack (found by their names:
    a learner's compose file may carry no label); resources.cleanup does the rest."""
    import contextlib
    import io
    import subprocess

    from . import engine, swarm
    subprocess.run([*engine.compose_cmd(), "-p", project_name(owner), "down", "--volumes",
                    "--remove-orphans", "--timeout", "2"], capture_output=True, timeout=120)
    with contextlib.redirect_stdout(io.StringIO()):  # no `$ docker stack rm` line
        swarm.remove_stack(client, stack_name(owner))


def project_name(owner):
    """The lab's Compose project name (lower case, as compose wants)."""
    return "workbook-" + re.sub(r"[^a-z0-9-]", "-", owner.lower())


def stack_name(owner):
    """The lab's swarm stack name (short: services are called STACK_api, STACK_nginx)."""
    return "wb" + re.sub(r"[^a-z0-9]", "", owner.lower())[:16]


def _unfinished(path):
    """NotDone when the learner's file is missing or still holds the lab's TODO lines."""
    shown = os.path.relpath(path)
    if not path.exists():
        raise NotDone(f"{shown} does not exist yet", "run the %%writefile cell above")
    todo = [ln.strip() for ln in path.read_text().splitlines()
            if ln.strip().startswith("# TODO") and "optional" not in ln]
    if todo:
        raise NotDone(f"{shown} still has {len(todo)} TODO line(s), e.g. {todo[0]!r}",
                      "write your answer in place of each # TODO line, run the cell, then the "
                      "check")


def _config(project):
    """`docker compose config --format json` of a project: (dict, None) or (None, error)."""
    import json

    from . import compose
    done = project("config", "--format", "json", check=False, echo=False, timeout=60)
    if done.returncode:
        return None, compose.short_error(done.stderr)
    return json.loads(done.stdout), None


def _healthcheck(svc, client):
    """'yours', 'the image's' or None: where a service's health check comes from."""
    hc = svc.get("healthcheck") or {}
    if hc.get("disable") or (hc.get("test") or [None])[0] == "NONE":
        return None
    if hc.get("test"):
        return "yours"
    try:
        image = client.images.get(svc.get("image", ""))
    except DockerException:
        return None
    test = (image.attrs["Config"].get("Healthcheck") or {}).get("Test") or ["NONE"]
    return "the image's" if test[0] != "NONE" else None


def _waits_for(svc, other):
    """The depends_on condition `svc` has on `other` (None without depends_on)."""
    return ((svc.get("depends_on") or {}).get(other) or {}).get("condition")


def _find(services, name, image_part):
    """The service called `name`, else the first whose image contains `image_part`."""
    if name in services:
        return name
    return next((n for n, s in services.items() if image_part in (s.get("image") or "")), None)


# ------------------------------------------ lab 05


COMPOSE_HINT = "lesson 05 §2 shows a complete compose file; `docker compose config` names the line"
STACK_WAIT = 90  # seconds for every container of the lab's stack to be healthy


def compose_project(client, lab, echo=False):
    """The lab's Compose project: its compose.yaml with this machine's base images."""
    from . import compose
    env = {**bases.image_vars(client), "WORKBOOK_OWNER": lab.owner}
    return compose.Project(project_name(lab.owner), lab.owner, [lab.path / "compose.yaml"], env,
                           echo=echo)


def _cache_hint(container):
    """Why the api's cache answered `error`, from the warning it logged."""
    logs = container.logs().decode(errors="replace") if container else ""
    if "ResponseError" in logs or "DENIED" in logs:
        return ("Redis answered but refused the api: the stand-in redis-server runs in protected "
                "mode; give it `command: [\"redis-server\", \"--protected-mode\", \"no\"]`")
    return ("the api could not reach Redis at REDIS_URL: the host must be Redis's service name on "
            "a network both share, port 6379 (lesson 05 §6)")


@check("Lab 05 · Compose stack: api + Redis cache")
def compose_stack(r, client, lab):
    """compose.yaml: health checks, depends_on conditions, REDIS_URL by name, a cache hit."""
    from urllib.parse import urlsplit
    _unfinished(lab.path / "compose.yaml")
    project = compose_project(client, lab)
    config, error = _config(project)
    if not r.add("compose.yaml is valid (docker compose config)", config, error, COMPOSE_HINT):
        raise Stop()
    services = config.get("services") or {}
    api, redis = _find(services, "api", "workbook/app"), _find(services, "redis", "redis")
    if not r.add("services: the model api and redis", api and redis,
                 f"found {', '.join(services) or 'no services'}",
                 "one service `api` running workbook/app:production and one `redis` running "
                 "${REDIS_IMAGE} (lesson 05 §2)"):
        raise Stop()
    a = services[api]
    url = (a.get("environment") or {}).get("REDIS_URL") or ""
    host = urlsplit(url).hostname if url.startswith("redis://") else None
    r.add("the api reaches Redis by its service name (REDIS_URL)", host == redis,
          f"REDIS_URL is {url!r}" if url else "the api has no REDIS_URL",
          f"set REDIS_URL: redis://{redis}:6379/0 in the api's environment: Compose's DNS "
          "resolves service names, and localhost is the api container itself (lesson 05 §6)")
    for name in (redis, api):
        where = _healthcheck(services[name], client)
        r.add(f"{name} has a health check", where, "no health check (or it is disabled)",
              note=where, hint="healthcheck: test: [\"CMD\", ...] with a short interval (2s): "
              "redis-cli ping for Redis, a urllib call to /health for the api (lesson 05 §3)")
    r.add(f"{api} starts once {redis} is healthy (depends_on)",
          _waits_for(a, redis) == "service_healthy",
          f"depends_on {redis}: condition {_waits_for(a, redis)}",
          f"depends_on: {{{redis}: {{condition: service_healthy}}}}: a bare depends_on only waits "
          "for the container to start, not for Redis to answer (lesson 05 §3)")
    dashboards = [n for n, s in services.items() if "workbook/ui" in (s.get("image") or "")]
    for name in dashboards:
        r.add(f"{name} (optional) starts once {api} is healthy",
              _waits_for(services[name], api) == "service_healthy",
              f"depends_on {api}: condition {_waits_for(services[name], api)}",
              f"depends_on: {{{api}: {{condition: service_healthy}}}} (lesson 05 §3)")
    ports = [p for p in a.get("ports") or [] if int(p.get("target", 0)) == 5000]
    r.add("the api's port 5000 is published on 127.0.0.1 only",
          ports and all(p.get("host_ip") == "127.0.0.1" for p in ports),
          "not published" if not ports else "published on every interface (0.0.0.0)",
          "ports: [\"127.0.0.1::5000\"] (or 127.0.0.1:HOST:5000): the host reaches the api only "
          "through a published port, and only this machine should (lesson 05 §2)")
    if r.failed:
        raise Stop()  # the stack runs only once its file is right: a run takes seconds
    try:
        _run_stack(r, client, lab, project, api, redis)
    finally:
        project("down", "--volumes", "--remove-orphans", "--timeout", "2", check=False)


def _settle(container, timeout):
    """(Docker's health status once healthy, unhealthy or stopped, last probe's last line)."""
    deadline = time.monotonic() + timeout
    while True:
        container.reload()
        health = container.attrs["State"].get("Health")
        log = (health or {}).get("Log") or [{}]
        last = ((log[-1].get("Output") or "").strip().splitlines() or [""])[-1][-160:]
        if container.status != "running":
            return container.status, f"exit code {container.attrs['State']['ExitCode']}"
        if health is None or health["Status"] != "starting" or time.monotonic() > deadline:
            return (health or {}).get("Status"), last
        time.sleep(0.25)


def _event(events, name, what):
    """Where in `docker compose up`'s progress lines service `name`'s container reports `what`."""
    return next((i for i, (c, e) in enumerate(events) if c.endswith(f"-{name}-1") and e == what),
                None)


def _run_stack(r, client, lab, project, api, redis):
    """Up, every container healthy, api started after a healthy Redis, a repeated request hit."""
    from . import compose
    project("down", "--volumes", "--remove-orphans", "--timeout", "2", check=False)
    start = time.perf_counter()
    done = project("up", "--detach", check=False, timeout=180)
    found = project.containers(client=client)
    if not r.add("docker compose up starts every service", not done.returncode and found,
                 compose.short_error(done.stderr),
                 "no registry here: use the images this machine has (workbook/app:production, "
                 "${REDIS_IMAGE}); read the message (lesson 05 §3)"):
        raise Stop()
    states = {c.labels["com.docker.compose.service"]: _settle(c, STACK_WAIT) for c in found}
    r.figures["up to healthy"] = f"{time.perf_counter() - start:.1f} s"
    bad = {n: s for n, s in states.items() if s[0] != "healthy"}
    r.add(f"every container is healthy (Docker's health status: {len(states)} services)", not bad,
          "; ".join(f"{n} {s or 'no health check'}: {last}" for n, (s, last) in bad.items()),
          "run the probe by hand: `docker compose exec SERVICE <the test command>` (lesson 05 §3)",
          note=r.figures["up to healthy"])
    events = [ln.split()[1:3] for ln in done.stderr.splitlines()
              if ln.strip().startswith("Container")]
    healthy = _event(events, redis, "Healthy")
    started = _event(events, api, "Starting")
    r.add(f"Compose started {api} after {redis} was healthy", None not in (healthy, started)
          and healthy < started, "docker compose up did not wait for Redis's health",
          f"depends_on with condition: service_healthy on {redis} (lesson 05 §3)")
    (box,) = project.containers(api, client)[:1] or [None]
    if box is None or bad.get(api):
        raise Stop()
    flower = dict(service.SAMPLES[1][0], sepal_length=round(5 + secrets.randbelow(1000) / 1000, 3))
    caches = []
    for _ in range(2):
        status, body, headers = service.request(box, "/predict", flower, timeout=10)
        caches.append(headers.get("X-Cache") if status == 200 else f"status {status}")
    r.figures["X-Cache, same request twice"] = " then ".join(map(str, caches))
    hint = {"off": "the api has no REDIS_URL: it serves without a cache (lesson 05 §6)",
            "error": _cache_hint(box)}.get(caches[0], "a repeated request must come from Redis "
                                                      "(lesson 05 §6)")
    r.add("a repeated request is served from the cache (X-Cache: miss, then hit)",
          caches == ["miss", "hit"], f"X-Cache: {' then '.join(map(str, caches))}", hint,
          note=f"X-Cache: {' then '.join(caches)}")


# ------------------------------------------ lab 07


ROLL_WAIT = 120  # seconds for a deploy, an update or a rollback to settle


def rolling_images(lab):
    """(v1, v2, proxy): the production image, the lab's v2 (lab.tag) and its nginx."""
    proxy = f"workbook/lab-{lab.number}-nginx:{lab.tag.split(':')[-1]}"
    return service.tag("production"), lab.tag, proxy


def prepare_rolling(client, number, owner, tag=None):
    """Reset the rolling-update lab and build its images: v1, v2 (model_version 2), nginx."""
    from . import swarm
    lab = prepare_folder(client, number, owner, tag or f"workbook/lab-{number}:v2")
    v1, v2, proxy = rolling_images(lab)
    service.build(client, "production", log="none")
    # v2 is v1 with one more layer: a model trained as model_version 2 (a 35 kB context).
    context = lab.path / "v2"
    context.mkdir()
    service.train(context / "model.skops", model_version="2")
    (context / "Dockerfile").write_text(
        f"FROM {v1}\nCOPY model.skops model.skops.sha256 /app/models/\n")
    images.build(client, context, v2, owner, log="none")
    swarm.build_nginx(client, owner, proxy)
    shutil.rmtree(context)
    return lab


def _spec_of(svc):
    """(update_config, rollback_config) of a compose-config service, with Swarm's defaults."""
    deploy = svc.get("deploy") or {}
    defaults = {"order": "stop-first", "parallelism": 1, "failure_action": "pause"}
    return ({**defaults, **(deploy.get("update_config") or {})},
            {**defaults, **(deploy.get("rollback_config") or {})})


def _versions_now(url, n=10):
    """The model versions n requests through nginx get (a failed request counts as None)."""
    seen = []
    for _ in range(n):
        try:
            status, body = service.call(url, "", service.SAMPLES[0][0], timeout=5)
        except OSError:
            status, body = None, None
        seen.append(body["model_version"] if status == 200 else None)
    return sorted(set(seen), key=str)


def _roll(r, client, api, replicas, url, step, name, want, hint):
    """Run step() under load; criteria: no failed request, every task ends on `want`."""
    from . import swarm
    from .load import Load
    with Load(url) as load:
        time.sleep(0.5)
        step()
        state, message, seconds = swarm.wait_update(client, api, timeout=ROLL_WAIT)
        swarm.wait_converged(client, api, replicas, ROLL_WAIT)
        time.sleep(1.5)  # nginx re-resolves the api's name every second
    r.figures[f"{name}: failed requests"] = f"{load.failed} of {load.sent} requests"
    r.add(f"{name} under load: no failed request", load.failed == 0,
          f"{load.failed} of {load.sent} requests failed"
          + (f" (first: {load.errors[0][1][:80]})" if load.errors else ""),
          hint, note=f"{load.sent} requests, {seconds:.1f} s")
    versions = _versions_now(url)
    r.add(f"{name}: every request now gets model_version {want}", versions == [want],
          f"update {state} ({message}); versions answering: {versions}",
          "the update must complete: `docker service ps` shows why a task failed (lesson 06 §8)")


def _quiet(*args):
    """docker ARGS without echoing the command (the check prints only its report)."""
    from . import swarm
    return swarm.docker_cli(*args, echo=False)


@check("Lab 07 · rolling update with Swarm")
def rolling_update(r, client, lab):
    """Deploy v1 behind nginx, update to v2 under load with no failed request, roll back."""
    import contextlib
    import io

    from . import compose, swarm
    path = lab.path / "stack.yaml"
    _unfinished(path)
    if swarm.state(client) != "active":
        raise NotDone("this engine is not in a swarm",
                      "run the cell with swarm.ensure_swarm(client)")
    v1, v2, proxy = rolling_images(lab)
    missing = [t for t in (v1, v2, proxy) if not images.exists(client, t)]
    if missing:
        raise NotDone(f"{', '.join(missing)} not built",
                      "run the lab's first cell (it builds them)")
    name = stack_name(lab.owner)
    api = f"{name}_api"
    port = swarm.free_port(8070)
    env = {"WORKBOOK_OWNER": lab.owner, "API_IMAGE": v1, "NGINX_IMAGE": proxy, "NGINX_PORT": port}
    config, error = _config(compose.Project(name, lab.owner, [path], env, echo=False))
    if not r.add("stack.yaml is valid (docker compose config)", config, error,
                 "lesson 06 §5 and docker/swarm/stack.yaml show a complete stack file"):
        raise Stop()
    svc = (config.get("services") or {}).get("api")
    if not r.add("a service `api` running ${API_IMAGE}", svc and svc.get("image") == v1,
                 f"services: {', '.join(config.get('services') or {})}",
                 "keep the api service of the given file and its `image: ${API_IMAGE}`"):
        raise Stop()
    update, rollback = _spec_of(svc)
    where = _healthcheck(svc, client)
    r.add("api tasks have a health check", where, "the health check is disabled", note=where,
          hint="an update waits for a new task to be *healthy* only if it has a health check: "
          "keep the image's or write one (lesson 06 §8)")
    r.add("a failed update rolls itself back (update_config.failure_action: rollback)",
          update["failure_action"] == "rollback", f"failure_action: {update['failure_action']}",
          "the default, pause, leaves a broken release half-deployed; rollback restores the "
          "previous spec (lesson 06 §10)")
    if r.failed:
        raise Stop()
    try:
        swarm.docker_cli("stack", "deploy", "--compose-file", str(path), "--resolve-image",
                         "never", name, env=env, echo=False)
        replicas = ((svc.get("deploy") or {}).get("replicas")) or 1
        swarm.wait_converged(client, api, replicas, ROLL_WAIT)
        swarm.wait_converged(client, f"{name}_nginx", 1, ROLL_WAIT)
        url = f"http://127.0.0.1:{port}/api/predict"
        deadline = time.monotonic() + 30  # nginx learns the api's address within a second or so
        while _versions_now(url, 1) != ["1"] and time.monotonic() < deadline:
            time.sleep(0.5)
        r.add("v1 deployed behind nginx", _versions_now(url, 5) == ["1"],
              "nginx does not answer with model_version 1",
              "keep the given nginx service and network (lesson 06 §5)",
              note=f"{replicas} api replica(s)")
        update_hint = rollback_hint = ("a new task must be healthy before an old one stops "
                                       "(lesson 06 §8)")
        if update["order"] != "start-first":
            update_hint = ("update_config.order is stop-first: the old task stops before the "
                           "new one answers; start-first starts the new one first (lesson 06 §8)")
        if rollback["order"] != "start-first":
            rollback_hint = ("rollback_config.order is stop-first: a rollback replaces the task "
                             "too, with its own settings (lesson 06 §9)")
        update_step = ("service", "update", "--detach", "--no-resolve-image", "--image", v2, api)
        _roll(r, client, api, replicas, url, lambda: _quiet(*update_step), "update to v2", "2",
              update_hint)
        _roll(r, client, api, replicas, url, lambda: _quiet("service", "rollback", "--detach", api),
              "rollback to v1", "1", rollback_hint)
    finally:
        with contextlib.redirect_stdout(io.StringIO()):  # no `$ docker stack rm` in the report
            swarm.remove_stack(client, name)


# ------------------------------------------ lab 06


# The lab's three cases, named so that neither the folder nor the container gives the cause
# away: case -> the docker/broken scenario it copies (broken.SCENARIOS).
CASES = {"case1": "unhealthy", "case2": "missing-module", "case3": "oom"}
FIXED = "fixed (the container does its job)"
CASE_FILES = {"unhealthy": "Dockerfile", "missing-module": "Dockerfile", "oom": "compose.yaml"}
# Words that name each cause in a diagnosis written in the learner's own words.
CAUSE_WORDS = {
    "bad-command": [r"\bcommand\b", r"executable", r"typo", r"\b127\b", r"\bcmd\b"],
    "missing-module": [r"module", r"\bimport", r"features\.py", r"\bcopy\b"],
    "port-in-use": [r"\bport\b", r"allocated", r"\bbind\b"],
    "permission-denied": [r"permission", r"denied", r"chmod", r"\bowner"],
    "disk-full": [r"\bdisk\b", r"no space", r"\bfull\b"],
    "network": [r"network", r"\bdns\b", r"host ?name", r"connection refused", r"resolv"],
    "oom": [r"\boom", r"out of memory", r"memory", r"mem_limit", r"\b137\b"],
    "unhealthy": [r"health", r"\bprobe", r"\brequests\b"],
    "missing-env": [r"environment", r"\benv\b", r"variable", r"keyerror"],
    "model-version": [r"version", r"scikit", r"sklearn"],
    "crashed": [r"crash", r"exit code 1\b"],
}
DIAGNOSIS_HINTS = {
    "unhealthy": "the service answers, yet Docker calls it unhealthy: read the health check's "
                 "own output (`docker inspect --format '{{json .State.Health}}'`): the probe, not "
                 "the app, fails (lesson 09)",
    "missing-module": "read the container's last log lines (`docker logs`): the traceback names "
                      "what Python could not import (lesson 09)",
    "oom": "no error in the log, exit code 137 = 128 + 9 (SIGKILL): `docker inspect` "
           "State.OOMKilled says who killed it (lesson 09)",
}
FIX_HINTS = {
    "unhealthy": "the probe may only use what the image has: the production Dockerfile's "
                 "HEALTHCHECK uses python's urllib (lesson 04 §6, lesson 09)",
    "missing-module": "COPY every module the entry point imports into /app (lesson 03 §2, "
                      "lesson 09)",
    "oom": "the limit must be above what the service uses: `docker stats` shows it (lesson 08 "
           "measures it); both mem_limit and memswap_limit (lesson 09)",
}


def classify(text):
    """The cause a diagnosis names: a cause key as is, else the one its words point to (or None)."""
    from .diagnose import CAUSES
    text = (text or "").strip().lower()
    if text in CAUSES:
        return text
    scores = {cause: sum(bool(re.search(w, text)) for w in words)
              for cause, words in CAUSE_WORDS.items()}
    best = max(scores.values())
    top = [c for c, s in scores.items() if s == best]
    return top[0] if best and len(top) == 1 else None


def _case_project(client, lab, case, folder="."):
    """The Compose project of one case of the lab (the given broken copy or the learner's)."""
    from . import compose, images
    if not images.exists(client, service.tag("production")):
        service.build(client, "production", log="none")
    slug = re.sub(r"[^a-z0-9]+", "-", lab.owner.lower()).strip("-")
    env = {"APP_IMAGE": service.tag("production"), "WORKBOOK_OWNER": lab.owner,
           "TAG": f"{slug}-{'given' if folder != '.' else 'yours'}",
           "PORT": compose.free_port(), "ALT_PORT": compose.free_port()}
    path = lab.path / folder / case / "compose.yaml"
    suffix = "-given" if folder != "." else ""
    return compose.Project(f"{project_name(lab.owner)}-{case}{suffix}", lab.owner, [path], env,
                           echo=False)


def _copy_case(src, dest, case):
    """A scenario's broken files without the comments that name the cause, images renamed."""
    dest.mkdir(parents=True)
    for f in src.iterdir():
        if f.is_dir() or ".fixed" in f.name:
            continue
        text = f.read_text()
        if f.name in ("Dockerfile", "compose.yaml"):
            text = "\n".join(re.sub(r"\s+#\s.*$", "", ln) for ln in text.splitlines()
                             if not ln.lstrip().startswith("#"))
            text = re.sub(r"workbook/broken-[a-z-]+:", f"workbook/lab-06-{case}:", text) + "\n"
        (dest / f.name).write_text(text)


def prepare_troubleshooting(client, number, owner):
    """Reset the troubleshooting lab: a given (broken) copy of each case and one to fix."""
    from . import broken
    lab = prepare_folder(client, number, owner)
    for case, name in CASES.items():
        for folder in ("given", "."):
            _copy_case(broken.folder(name), lab.path / folder / case, case)
    for case in CASES:  # the learner rewrites these files; they start without them
        (lab.path / case / CASE_FILES[CASES[case]]).unlink()
    return lab


def start_broken(client, lab):
    """Run the three given cases; return {case: its container}, once each shows its problem."""
    from . import broken, compose
    out = {}
    for case in CASES:
        project = _case_project(client, lab, case, "given")
        for _ in range(2):  # once more if a build or network step raced another project's
            done = project("up", "--detach", "--build", "--force-recreate", check=False,
                           timeout=300)
            found = project.containers("app", client)
            if found:
                break
        else:
            raise WorkbookError(f"{case} made no container: {compose.short_error(done.stderr)}",
                                "Run checks.prepare_troubleshooting again to start over.")
        out[case] = broken.settle(found[0], timeout=60)
    return out


def case_file(lab, case):
    """The file the learner writes for a case (relative, for `%%writefile {path}`)."""
    return lab_file(lab, f"{case}/{CASE_FILES[CASES[case]]}")


@check("Lab 06 · troubleshooting three broken containers")
def troubleshooting(r, client, lab, diagnoses):
    """Each case: the recorded diagnosis names its cause, and the learner's fix works."""
    from . import broken, compose, diagnose
    files = {case: lab.path / case / CASE_FILES[name] for case, name in CASES.items()}
    started = [c for c in CASES if (diagnoses or {}).get(c, "").strip()]
    written = [c for c, f in files.items() if f.exists() and "# TODO" not in f.read_text()]
    if not started and not written:
        raise NotDone("no diagnosis recorded and no fix written yet",
                      "fill in `diagnoses`, write each fix, run those cells, then this check")
    for case, name in CASES.items():
        said = (diagnoses or {}).get(case, "").strip()
        got = classify(said)
        r.add(f"{case}: diagnosis", got == name,
              "no diagnosis recorded" if not said else
              f"{said!r} reads as {got or 'no single cause'}", DIAGNOSIS_HINTS[name],
              note=f"{name}: {broken.SCENARIOS[name].title}")
    right = sum(r.get(f"{c}: diagnosis").passed for c in CASES)
    r.figures["diagnoses right"] = f"{right} of {len(CASES)}"
    for case, name in CASES.items():
        try:
            _unfinished(files[case])
        except NotDone as exc:
            r.add(f"{case}: {FIXED}", False, exc.what, exc.todo)
            continue
        project = _case_project(client, lab, case)
        try:
            done = project("up", "--detach", "--build", "--force-recreate", check=False,
                           timeout=300)
            found = project.containers("app", client)
            if not found:
                r.add(f"{case}: {FIXED}", False,
                      f"docker compose up: {compose.short_error(done.stderr)}", FIX_HINTS[name])
                continue
            box = found[0]
            ok = broken.works(box, timeout=60)
            r.add(f"{case}: {FIXED}", ok,
                  "still wrong: " + _state_line(box), FIX_HINTS[name],
                  note="healthy, answers /health and /predict")
        finally:
            project("down", "--volumes", "--remove-orphans", "--timeout", "2", check=False)
    fixed = sum(c.passed for c in r.criteria if c.name.endswith(FIXED))
    r.figures["cases fixed"] = f"{fixed} of {len(CASES)}"


def _state_line(container):
    """A short account of a container: status, exit code, OOM, health and its last probe."""
    from .diagnose import read
    st = read(container, lines=2)
    probe = st.probe or {}
    said = (probe.get("Output") or "").strip().splitlines()[-1:]
    bits = [st.status, f"exit code {st.exit_code}" if st.status == "exited" else "",
            "OOMKilled" if st.oom_killed else "", f"health {st.health}" if st.health else "",
            f"last probe: {said[0][:120]}" if said and probe.get("ExitCode") else "",
            (" | ".join(st.logs))[-160:] if st.status == "exited" else ""]
    return ", ".join(b for b in bits if b)
