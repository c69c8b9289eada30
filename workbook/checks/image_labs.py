"""The checks of the image labs: 01 first container, 02 cache, 03 smaller image, 04 hardened."""

import secrets
import time
from datetime import datetime, timezone

from docker.errors import DockerException

from .. import scan
from ..containers import first_uid, when
from .learner_image import (NotStarted, build, cleanup_containers, in_image, learner_build,
                            learner_service, predictions_ok, probe, run_service)
from .report import NotDone, Stop, check


# ---------------------------------------------------------------- lab 01


@check("Lab 01 · first container for the model")
def first_container(r, client, lab):
    """The learner's image is current; their container answers /health and labels known flowers."""
    image = learner_build(r, client, lab)
    r.figures["image size"] = f"{image.attrs['Size'] / 1e6:.1f} MB"
    predictions_ok(r, learner_service(r, client, lab, image))


# ---------------------------------------------------------------- lab 02


# Seconds a code-change rebuild may take beyond a rebuild with no change at all (which
# costs the same context upload and engine load): reinstalling the packages takes 20 s+.
FAST_REBUILD = 10.0


def dependency_layer(image):
    """The history row of the layer holding the dependencies (the biggest pip install or COPY)."""
    # The biggest `pip install` step, else (multi-stage) the biggest COPY of installed packages
    # from another stage.
    rows = image.history()
    pip = [h for h in rows if "pip" in h["CreatedBy"] and "install" in h["CreatedBy"]]
    copied = [h for h in rows if "COPY" in h["CreatedBy"] and h["Size"] > 20_000_000]
    return max(pip or copied, key=lambda h: h["Size"], default=None)


@check("Lab 02 · cache-friendly build")
def cache_friendly(r, client, lab):
    """The learner's service works; rebuilt after a code-only change, the dependency layer is reused and the rebuild fast."""
    image = learner_build(r, client, lab)
    predictions_ok(r, learner_service(r, client, lab, image))
    app, rebuilt = lab.path / "app.py", f"{lab.tag}-rebuilt"  # the check's own builds, beside yours
    original, built = app.read_text(), []
    try:
        before, unchanged = build(r, client, lab, tag=rebuilt, name="rebuilds with no change")
        built.append(before)
        layer = dependency_layer(before)
        if not r.add("installs the requirements in their own step", layer,
                     "no RUN pip install step (or COPY of installed packages) found",
                     "install requirements.txt with one RUN pip install (lesson 04 §3)"):
            raise Stop()
        # A change no earlier build has seen, so the cache cannot hold it already.
        app.write_text(original + f"\n# lab 02: a code-only change ({secrets.token_hex(4)})\n")
        after, seconds = build(r, client, lab, tag=rebuilt, name="rebuilds after a change to app.py")
        built.append(after)
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
    finally:
        app.write_text(original)
        _remove_own(client, built, keep=image)


def _remove_own(client, built, keep):
    """Remove the check's own builds (not the learner's image): the lab keeps only what they built.

    A rebuild with no change may not be the learner's image even so: the classic builder can
    take an equal layer another build made meanwhile from the cache, and go on from there.
    """
    for image in {i.id: i for i in built if i.id != keep.id}.values():
        try:
            client.images.remove(image.id)
        except DockerException:  # gone already, or a container of the learner's uses it
            pass


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
        image = learner_build(r, client, lab)
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
        predictions_ok(r, learner_service(r, client, lab, image), "same predictions as the production image")
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
        recent = [e for e in log if when(e.get("Start")) >= since]
        if settled or (len(recent) >= 3 and all(e.get("ExitCode") for e in recent[-3:])):
            return health["Status"] if container.status == "running" else container.status, last
        if time.perf_counter() - start > timeout:
            return health["Status"], last or "no probe ran yet: is --interval short (2s)?"
        time.sleep(0.25)


# Every path under the working directory that a user may write, listed inside the container
# as that user (os.access: owner, group and mode, as the kernel will judge them).
WRITABLE = ("import os, sys; top = sys.argv[1]; print('\\n'.join(p for d, _, fs in os.walk(top) "
            "for p in [d] + [os.path.join(d, f) for f in fs] "
            "if '__pycache__' not in p and os.access(p, os.W_OK)))")


def writable_code(container, image, uid):
    """What the service's own user may rewrite in its working directory (None: cannot tell)."""
    top = image.attrs["Config"].get("WorkingDir") or "/"
    if top == "/":
        return None  # no WORKDIR: the code's folder cannot be told from the rest of the system
    code, out = container.exec_run(["python", "-c", WRITABLE, top], user=str(uid))
    return out.decode(errors="replace").split() if code == 0 else None


@check("Lab 04 · hardened image")
def hardened_image(r, client, lab):
    """Non-root, a working HEALTHCHECK, no secret anywhere, runs read-only with no capabilities."""
    try:
        image = learner_build(r, client, lab)
        container = learner_service(r, client, lab, image, "the container starts and answers /health")
        uid = first_uid(container)
        r.add("runs as a non-root user (uid of the container's first process)", uid not in (None, 0),
              f"docker top says uid {uid}", note=f"uid {uid}", hint=
              "create a user (useradd --uid 1000 ...) and switch to it with USER 1000 after the "
              "steps that need root (lesson 04 §6)")
        writable = writable_code(container, image, uid) if uid is not None else None
        r.add("the service cannot rewrite its own code or model", writable == [],
              f"uid {uid} may write {', '.join(writable[:4])}" if writable
              else "no WORKDIR, or the check could not run inside the image" if writable is None
              else "", hint="leave the code and model owned by root (COPY without --chown) and "
              "switch USER after copying them: the service reads them, it never writes them "
              "(lesson 04 §6)")
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
