"""The serving stacks: one model behind FastAPI, LitServe, BentoML and MLServer (docker/stacks/).

Each stack has its own pinned wheel set (docker/stacks/NAME/requirements.txt), downloaded
on the host into one pool (build/wheelhouse-stacks-ARCH/, where two versions of a package
may sit side by side) and staged into the stack's build context, so that every image installs
offline. Every stack serves train.py's model through docker/stacks/iris.py; `ask` puts the
same flowers to each in its own protocol and reads the labels back.
"""

import shutil
from dataclasses import dataclass

from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

from . import BUILD, ROOT, WorkbookError, bases, images, one_at_a_time, service, wheelhouse

STACKS_DIR = ROOT / "docker" / "stacks"
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]  # as docker/stacks/iris.py


@dataclass(frozen=True)
class Stack:
    """A serving stack: its folder under docker/stacks/, health path and how to ask it."""

    name: str
    title: str
    health: str  # what the HEALTHCHECK requests
    # "records": app.py's JSON records on POST /predict; "wrapped": the same list as
    # {"records": [...]} (a BentoML API takes named arguments); "v2": the V2 inference protocol
    protocol: str

    @property
    def folder(self):
        return STACKS_DIR / self.name

    @property
    def tag(self):
        return f"workbook/stack-{self.name}:latest"


STACKS = {s.name: s for s in (
    Stack("fastapi", "FastAPI + uvicorn", "/health", "records"),
    Stack("litserve", "LitServe", "/health", "records"),
    Stack("bentoml", "BentoML", "/readyz", "wrapped"),
    Stack("mlserver", "MLServer (mlserver-sklearn)", "/v2/health/ready", "v2"),
)}


def pins(stack):
    """{(canonical name, version): the pinned line} of a stack's requirements.txt."""
    found = {}
    for line in wheelhouse.pinned(stack.folder / "requirements.txt"):
        name, _, version = line.partition("==")
        found[(canonicalize_name(name), Version(version))] = line
    return found


def pool(cpu):
    """build/wheelhouse-stacks-ARCH/: every stack's wheels, two versions of a package side by side."""
    return BUILD / f"wheelhouse-stacks-{cpu}"


def _pooled(cpu):
    """{(canonical name, version): wheel path} of the pool."""
    found = {}
    for whl in pool(cpu).glob("*.whl"):
        name, version, _, _ = parse_wheel_filename(whl.name)
        found[(name, version)] = whl
    return found


def download(stack, cpu):
    """The stack's pinned wheels in the pool: linked from the main wheelhouse, else downloaded."""
    with one_at_a_time("wheelhouse-stacks"):  # one pool for every stack, filled by one process at a time
        pool(cpu).mkdir(parents=True, exist_ok=True)
        missing = set(pins(stack)) - set(_pooled(cpu))
        for whl in wheelhouse.WHEELHOUSE.glob("*.whl"):  # the same wheel in the main wheelhouse
            name, version, _, _ = parse_wheel_filename(whl.name)
            if (name, version) in missing and not (pool(cpu) / whl.name).exists():
                wheelhouse.link(whl, pool(cpu) / whl.name)
        if set(pins(stack)) - set(_pooled(cpu)):  # offline, a complete pool needs no network
            print(f"Downloading the {stack.name} stack's wheels into {pool(cpu)}, usually under a minute ...",
                  flush=True)
            wheelhouse.pip_download(stack.folder / "requirements.txt", pool(cpu), cpu)


def context(stack, client=None):
    """build/stacks/NAME/: the stack's folder, iris.py, the trained model and its wheels."""
    cpu = wheelhouse.arch(client)
    download(stack, cpu)
    dest = BUILD / "stacks" / stack.name
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(stack.folder, dest)
    shutil.copy(STACKS_DIR / "iris.py", dest / "iris.py")
    (dest / "models").mkdir()
    shutil.copy(service.ensure_model(), dest / "models" / "model.skops")
    (dest / "wheels").mkdir()
    pooled = _pooled(cpu)
    for key, line in pins(stack).items():
        if key not in pooled:
            raise WorkbookError(f"{line} is not in {pool(cpu)}.", "Check the network to the package index.")
        wheelhouse.link(pooled[key], dest / "wheels" / pooled[key].name)
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


def _post(base_url, path, payload):
    """The parsed answer of a JSON POST (service.call), or WorkbookError if it is not a 200."""
    status, body = service.call(base_url, path, payload)
    if status != 200:
        raise WorkbookError(f"POST {path} answered {status}: {body}", "Read the container's logs.")
    return body


def ask(stack, base_url, records):
    """The labels a running stack gives `records` (dicts keyed by feature), in its own protocol."""
    if stack.protocol == "v2":  # POST /v2/models/NAME/infer: a tensor in, class indices out
        body = _post(base_url, "/v2/models/iris/infer", {"inputs": [{
            "name": "flowers", "shape": [len(records), len(FEATURES)], "datatype": "FP64",
            "data": [r[f] for r in records for f in FEATURES]}]})
        names = classes()
        return [names[int(i)] for i in body["outputs"][0]["data"]]
    body = _post(base_url, "/predict", {"records": records} if stack.protocol == "wrapped" else records)
    return [p["label"] for p in body["predictions"]]
