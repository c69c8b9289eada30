"""The serving stacks: one model behind FastAPI, LitServe, BentoML and MLServer (docker/stacks/).

Each stack has its own pinned wheel set (docker/stacks/NAME/requirements.txt), downloaded
on the host into one pool (build/wheelhouse-stacks-ARCH/, where two versions of a package
may sit side by side) and staged into the stack's build context, so that every image installs
offline. Every stack serves train.py's model through docker/stacks/iris.py; `ask` puts the
same flowers to each in its own protocol and reads the labels back.
"""

import json
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


def _bundle():
    """train.py's model file, loaded on the host: {"pipeline": ..., "metadata": ...}."""
    import skops.io as sio
    return sio.load(service.ensure_model())  # skops's default trusted types only, as app.py


def classes():
    """The model's class names, in class-index order (its metadata, read on the host)."""
    return _bundle()["metadata"]["classes"]


def labels(records):
    """The labels train.py's model gives `records` on the host: what every image must answer."""
    bundle = _bundle()
    rows = [[r[f] for f in FEATURES] for r in records]
    return [bundle["metadata"]["classes"][int(i)] for i in bundle["pipeline"].predict(rows)]


def _post(base_url, path, payload):
    """The parsed answer of a JSON POST (service.call), or WorkbookError if it is not a 200."""
    status, body = service.call(base_url, path, payload)
    if status != 200:
        raise WorkbookError(f"POST {path} answered {status}: {body}", "Read the container's logs.")
    return body


def flowers():
    """Every 5th flower of the iris data: 30 flowers, 10 of each species, as records."""
    from sklearn.datasets import load_iris
    return [dict(zip(FEATURES, map(float, row))) for row in load_iris().data[::5]]


def _tensor(records, width=len(FEATURES)):
    """A V2 inference request of one FP64 tensor: the records' values, row after row."""
    data = [v for r in records for v in r.values()]
    return {"inputs": [{"name": "flowers", "shape": [len(records), width], "datatype": "FP64", "data": data}]}


def payload(protocol, records):
    """(path, JSON body) that asks a stack of `protocol` about `records` (dicts keyed by feature)."""
    if protocol == "v2":  # POST /v2/models/NAME/infer: a tensor in, class indices out
        return "/v2/models/iris/infer", _tensor([{f: r[f] for f in FEATURES} for r in records])
    return "/predict", {"records": records} if protocol == "wrapped" else records


def bad_payload(protocol, raw):
    """(path, bytes) of app.py's bad body `raw` said in `protocol`; None if it cannot be said.

    Bytes that are not JSON go as they are. A V2 tensor has positions, not names: a record
    with an unknown feature cannot be written as one, a missing feature is a row too short."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than Python parses
        return payload(protocol, [])[0], raw
    if protocol == "records":
        return "/predict", raw
    records = value if isinstance(value, list) else [value]
    if protocol == "wrapped":
        return "/predict", json.dumps({"records": records if isinstance(value, (list, dict)) else value}).encode()
    if not records or not all(isinstance(r, dict) for r in records):
        return payload(protocol, [])[0], raw  # not records at all: not a V2 request either
    if any(set(r) - set(FEATURES) for r in records):
        return None
    rows = [{f: r[f] for f in FEATURES if f in r} for r in records]
    return payload(protocol, [])[0], json.dumps(_tensor(rows, max(map(len, rows)))).encode()


def ask(stack, base_url, records):
    """The labels a running stack gives `records` (dicts keyed by feature), in its own protocol."""
    body = _post(base_url, *payload(stack.protocol, records))
    if stack.protocol == "v2":
        names = classes()
        return [names[int(i)] for i in body["outputs"][0]["data"]]
    return [p["label"] for p in body["predictions"]]
