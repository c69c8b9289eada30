"""The model service (docker/app): train it, build its image ladder, run it and call it."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from . import BUILD, ROOT, WorkbookError, bases, containers, images, one_at_a_time, wheelhouse
from .resources import host_port, labels, unique_name

APP = ROOT / "docker" / "app"
UI = ROOT / "docker" / "ui"
MODEL = APP / "models" / "model.skops"
PORT = "5000/tcp"

# The image ladder: one model, six ways to package it (variant -> Dockerfile, what changes).
LADDER = {
    "naive": ("Dockerfile.naive", "the tutorial's bad examples: full base, COPY . . first, "
              "a RUN per package, compilers, root"),
    "slim": ("Dockerfile.slim", "slim base, every other mistake kept"),
    "cache-friendly": ("Dockerfile.cache", "requirements installed before the code is copied"),
    "multi-stage": ("Dockerfile.multistage", "a builder stage makes the venv; only it is copied"),
    "production": ("Dockerfile", "non-root, HEALTHCHECK, OCI labels, gunicorn workers from env"),
    "minimal": ("Dockerfile.minimal", "production minus files no service needs (tests, pip, "
                "headers, package managers, libraries nothing links to), FROM scratch; "
                "all of scikit-learn and scipy stays"),
}

# Variants beside the ladder, built only by the lessons and tests that use them (lesson 04
# and tests/test_ladder.py go through LADDER, so they never build these).
VARIANTS = {
    **LADDER,
    "onnx": ("Dockerfile.onnx", "production with the model converted to ONNX at build time and "
             "served by onnxruntime: no scikit-learn, scipy, skops or joblib in the image"),
}
# The requirements files whose wheels a variant's context needs (default: requirements.txt).
# Dockerfile.onnx installs two sets: the converter stage's and the final image's.
CONTEXT_REQUIREMENTS = {"onnx": ("requirements-convert.txt", "requirements-onnx.txt")}

# Known iris flowers and their species: every image must answer these identically.
SAMPLES = [
    ({"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}, "setosa"),
    ({"sepal_length": 5.9, "sepal_width": 3.0, "petal_length": 4.2, "petal_width": 1.5},
     "versicolor"),
    ({"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3},
     "virginica"),
]


def train(out=MODEL, model_version="1", fmt="skops"):
    """python docker/app/train.py: fit the pipeline, print its metrics, save the model."""
    cmd = [sys.executable, "train.py", "--out", os.path.relpath(out, APP),
           "--model-version", str(model_version), "--format", fmt]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=APP)
    if done.returncode:
        raise WorkbookError(f"train.py failed:\n{done.stderr[-1500:]}",
                            "Run `make install` so the host has the pinned scikit-learn.")
    print(done.stdout, end="")
    return out


def ensure_model():
    """Train the model once (the images copy docker/app/models/)."""
    with one_at_a_time("train"):  # another process may be training it right now
        if not MODEL.exists() or MODEL.stat().st_mtime < (APP / "train.py").stat().st_mtime:
            train()
    return MODEL


def prepare(context=APP, variant=None):
    """Make a build context complete: the trained model and the wheels its requirements need."""
    ensure_model()
    files = CONTEXT_REQUIREMENTS.get(variant)
    if not files:  # every ladder rung: requirements.txt's wheels, exactly as always
        wheelhouse.stage(context, context / "requirements.txt")
        return context
    # wheelhouse.stage takes one requirements file: give it the union of the variant's.
    with tempfile.TemporaryDirectory(prefix="requirements-") as tmp:
        union = os.path.join(tmp, "requirements.txt")
        with open(union, "w") as out:
            out.writelines((context / name).read_text() + "\n" for name in files)
        wheelhouse.stage(context, union)
    return context


def copy_context(dest, variant=None):
    """A scratch copy of docker/app to edit freely (lessons change code and time rebuilds)."""
    ensure_model()
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(APP, dest, ignore=shutil.ignore_patterns(
        "wheels", "__pycache__", "*.pyc", ".pytest_cache"))
    return prepare(dest, variant)  # its own hard-linked wheels


def tag(variant):
    """The image name of a ladder variant."""
    return f"workbook/app:{variant}"


LADDER_OWNER = "ladder"  # ladder images are shared by lessons, labs and tests; make clean removes them


def build(client, variant, owner=LADDER_OWNER, context=APP, **kw):
    """Build one rung of the ladder (or a VARIANTS entry) as workbook/app:VARIANT.

    A variant that needs other wheels than requirements.txt's (onnx) is built from a scratch
    copy of docker/app when no context is given: docker/app/wheels/ stays exactly what the
    ladder's builds stage and COPY, even while they run at the same time.
    """
    if variant not in VARIANTS:
        raise WorkbookError(f"No ladder variant {variant!r}.",
                            f"Pick one of {', '.join(VARIANTS)}.")
    kw.setdefault("buildargs", bases.build_args(client))
    image_tag, dockerfile = kw.pop("tag", tag(variant)), VARIANTS[variant][0]
    # One build of the ladder at a time, across processes (make test's workers, make run):
    # a second build of a rung then finds every step in the cache and gives the same image.
    with one_at_a_time("ladder"):
        if variant in CONTEXT_REQUIREMENTS and context == APP:
            BUILD.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(prefix=f"context-{variant}-", dir=BUILD) as scratch:
                scratch = copy_context(Path(scratch) / "app", variant)
                return images.build(client, scratch, image_tag, owner, dockerfile=dockerfile, **kw)
        prepare(context, variant)
        return images.build(client, context, image_tag, owner, dockerfile=dockerfile, **kw)


def build_v2(client, owner, scratch, tag, log="summary"):
    """The production image with a model trained as model_version 2 (the layer cache helps)."""
    context = copy_context(Path(scratch))
    train(context / "models" / "model.skops", model_version="2")
    return images.build(client, context, tag, owner, buildargs=bases.build_args(client), log=log)


def build_ui(client, owner=LADDER_OWNER, **kw):
    """Build the Streamlit dashboard (docker/ui) as workbook/ui:latest."""
    wheelhouse.stage(UI, UI / "requirements.txt")
    kw.setdefault("buildargs", bases.build_args(client))
    return images.build(client, UI, kw.pop("tag", "workbook/ui:latest"), owner, **kw)


def run(client, image, owner, env=None, kind="api", **kw):
    """docker run -d -p 127.0.0.1::5000 IMAGE, labelled for `owner`."""
    return client.containers.run(
        image, detach=True, name=unique_name(owner, kind), labels=labels(owner),
        ports={PORT: ("127.0.0.1", None)}, environment=env or {}, **kw)


def url(container, path=""):
    """http://127.0.0.1:PORT/path for a container's published service port."""
    return f"http://127.0.0.1:{host_port(container, PORT)}{path}"


def call(target, path, payload=None, timeout=10, raw=None, headers=None):
    """GET (or POST JSON) to a container or base URL; return (status, parsed JSON body)."""
    status, body, _ = request(target, path, payload, timeout, raw, headers)
    return status, body


def request(target, path, payload=None, timeout=10, raw=None, headers=None):
    """Like call(), plus the response headers: (status, parsed body, headers)."""
    base = target if isinstance(target, str) else url(target)
    data = raw if raw is not None else (None if payload is None else json.dumps(payload).encode())
    req = urllib.request.Request(base + path, data=data,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, _parse(resp.read()), resp.headers
    except urllib.error.HTTPError as err:
        return err.code, _parse(err.read()), err.headers


def _parse(body):
    """JSON when it is JSON, else the text (Streamlit's health check answers 'ok')."""
    try:
        return json.loads(body or b"null")
    except ValueError:
        return body.decode(errors="replace")


def _stopped(waited, why):
    tail = "\n".join(waited.logs)
    return WorkbookError(f"{waited.name} {why} (status {waited.state}, exit code "
                         f"{waited.exit_code}). Last log lines:\n{tail}",
                         "Read the log lines above; `container.logs()` has the rest.")


def wait_ready(container, timeout=60, path="/health"):
    """Poll GET /health until it answers 200; return the seconds it took."""
    w = containers.wait(container, "answers", timeout, every=0.05,
                        probe=lambda c: call(c, path, timeout=2)[0] == 200)
    if w.reached:
        return w.elapsed
    raise _stopped(w, "stopped before it answered" if w.why == "stopped"
                   else f"did not answer {path} within {timeout} s")


def health(container):
    """Docker's health status of a container ('starting', 'healthy', 'unhealthy' or None)."""
    container.reload()
    return (container.attrs["State"].get("Health") or {}).get("Status")


def wait_healthy(container, timeout=90):
    """Wait until Docker reports the container healthy; return the seconds it took."""
    w = containers.wait(container, "healthy", timeout)
    if w.reached:
        return w.elapsed
    if w.why == "no health check":
        raise WorkbookError(f"{container.name} has no HEALTHCHECK.",
                            "Add a HEALTHCHECK to the Dockerfile (see lesson 04).")
    raise _stopped(w, f"was not healthy within {timeout} s" if w.why == "timeout"
                   else f"became {w.health or w.state}")


def predictions(target):
    """The labels a running service gives SAMPLES (one batch request)."""
    status, body = call(target, "/predict", [r for r, _ in SAMPLES])
    if status != 200:
        raise WorkbookError(f"/predict answered {status}: {body}", "Check the container's logs.")
    return [p["label"] for p in body["predictions"]], body
