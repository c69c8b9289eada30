"""The serving stacks: one model behind FastAPI, LitServe, BentoML and MLServer (docker/stacks/).

Each stack has its own pinned wheel set (docker/stacks/NAME/requirements.txt), downloaded
on the host into one pool (build/wheelhouse-stacks/, where two versions of a package may sit
side by side) and staged into the stack's build context, so that every image installs
offline. Every stack serves train.py's model through docker/stacks/iris.py; `ask` puts the
same flowers to each in its own protocol and reads the labels back.
"""

import json
import os
import shutil
import urllib.request
from dataclasses import dataclass

from packaging.utils import canonicalize_name, parse_wheel_filename

from . import BUILD, ROOT, bases, images, one_at_a_time, service, wheelhouse

STACKS_DIR = ROOT / "docker" / "stacks"
POOL = BUILD / "wheelhouse-stacks"


@dataclass(frozen=True)
class Stack:
    """A serving stack: its folder under docker/stacks/, health path and how to ask it."""

    name: str
    title: str
    health: str  # what the HEALTHCHECK requests
    protocol: str  # "records": app.py's JSON records; "v2": the V2 inference protocol

    @property
    def folder(self):
        return STACKS_DIR / self.name

    @property
    def tag(self):
        return f"workbook/stack-{self.name}:latest"


STACKS = {s.name: s for s in (
    Stack("fastapi", "FastAPI + uvicorn", "/health", "records"),
    Stack("litserve", "LitServe", "/health", "records"),
    Stack("bentoml", "BentoML", "/readyz", "records"),
    Stack("mlserver", "MLServer (mlserver-sklearn)", "/v2/health/ready", "v2"),
)}


def pins(stack):
    """{canonical name: version} of a stack's requirements.txt."""
    found = {}
    for line in wheelhouse.pinned(stack.folder / "requirements.txt"):
        name, _, version = line.partition("==")
        found[canonicalize_name(name)] = version
    return found


def _pooled():
    """{(canonical name, version): wheel path} of the pool."""
    found = {}
    for whl in POOL.glob("*.whl"):
        name, version, _, _ = parse_wheel_filename(whl.name)
        found[(name, str(version))] = whl
    return found


def _link(src, dest):
    """A hard link, or a copy on another filesystem."""
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def download(stack, client=None):
    """pip download the stack's pinned wheels into the pool (what is there already is kept)."""
    POOL.mkdir(parents=True, exist_ok=True)
    missing = {k for k in pins(stack).items()} - set(_pooled())
    if not missing:
        return
    for whl in wheelhouse.WHEELHOUSE.glob("*.whl"):  # the same wheel in the main wheelhouse: link it
        name, version, _, _ = parse_wheel_filename(whl.name)
        if (name, str(version)) in missing and not (POOL / whl.name).exists():
            _link(whl, POOL / whl.name)
    print(f"Downloading the {stack.name} stack's wheels into {POOL}, usually under a minute ...", flush=True)
    wheelhouse.pip_download(stack.folder / "requirements.txt", POOL, wheelhouse.arch(client))


def context(stack, client=None):
    """build/stacks/NAME/: the stack's folder, iris.py, the trained model and its wheels."""
    download(stack, client)
    dest = BUILD / "stacks" / stack.name
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(stack.folder, dest)
    shutil.copy(STACKS_DIR / "iris.py", dest / "iris.py")
    (dest / "models").mkdir()
    shutil.copy(service.ensure_model(), dest / "models" / "model.skops")
    (dest / "wheels").mkdir()
    pooled = _pooled()
    for key in pins(stack).items():
        _link(pooled[key], dest / "wheels" / pooled[key].name)
    return dest


def build(client, stack, owner=service.LADDER_OWNER, log="none"):
    """docker build -t workbook/stack-NAME:latest from the stack's context (kept like the ladder)."""
    with one_at_a_time(f"stack-{stack.name}"):
        return images.build(client, context(stack, client), stack.tag, owner,
                            buildargs=bases.build_args(client), log=log)


def classes():
    """The model's class names, in class-index order (its metadata, read on the host)."""
    import skops.io as sio
    return sio.load(service.ensure_model())["metadata"]["classes"]


def _post(url, payload, timeout=10):
    req = urllib.request.Request(url, data=json.dumps(payload).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def ask(stack, base_url, records):
    """The labels a running stack gives `records` (dicts keyed by feature), in its own protocol."""
    if stack.protocol == "v2":  # POST /v2/models/NAME/infer: a tensor in, class indices out
        from_iris = [[r[f] for f in ("sepal_length", "sepal_width", "petal_length", "petal_width")]
                     for r in records]
        body = _post(f"{base_url}/v2/models/iris/infer", {"inputs": [{
            "name": "flowers", "shape": [len(records), 4], "datatype": "FP64",
            "data": [v for row in from_iris for v in row]}]})
        return [classes()[int(i)] for i in body["outputs"][0]["data"]]
    body = _post(f"{base_url}/predict", records if stack.name != "bentoml" else {"records": records})
    return [p["label"] for p in body["predictions"]]
