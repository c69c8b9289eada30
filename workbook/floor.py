"""The traced image: only the files a probe suite saw the service read, FROM scratch."""

import random
import shutil

from . import BUILD, footprint, images, one_at_a_time, service
from .badinput import CASES
from .resources import slug

DOCKERFILE = "Dockerfile.traced"
SCRIPT = "copy-traced.py"
LISTING = "traced-files.txt"
OCI = "org.opencontainers.image."
WRONG_PATHS = [("GET", "/predictions"), ("GET", "/predict"), ("POST", "/health")]  # 404, 405s


def records(n, seed=0):
    """n random valid flowers (seeded): every length between 0 and 10 cm, as app.py accepts."""
    rng = random.Random(seed)
    names = list(service.SAMPLES[0][0])
    return [{name: round(rng.uniform(0.0, 10.0), 3) for name in names} for _ in range(n)]


def bad_answers(target):
    """(status, body) for every badinput.CASES body POSTed raw to /predict, and WRONG_PATHS."""
    out = {f"POST /predict {case}": service.call(target, "/predict", raw=body)
           for case, body in CASES.items()}
    for method, path in WRONG_PATHS:
        out[f"{method} {path}"] = service.call(target, path, {} if method == "POST" else None)
    return out


# What the tracer watches the service do, in order ("health" first: it waits for the start).
PROBES = {
    "health": service.wait_ready,
    "metadata": lambda c: service.call(c, "/metadata"),
    "one record": lambda c: service.call(c, "/predict", service.SAMPLES[0][0]),
    "a batch": lambda c: service.call(c, "/predict", records(100)),
    "bad input": bad_answers,
    # Docker's HEALTHCHECK runs `python -c "import urllib.request ..."` in the container: it
    # inherits the tracer's PYTHONPATH, so waiting until healthy traces it too. (Docker runs
    # it every 2 s anyway: a trace longer than that sees it even without this probe.)
    "health check": service.wait_healthy,
}
# PROBES without the bad bodies: the traced image then lacks encodings/utf_32_be.py, which
# json.loads imports for a body of NUL bytes (badinput garbage_8): a 500 instead of a 400.
NARROW = {name: probe for name, probe in PROBES.items() if name != "bad input"}


def trace(client, image, owner, probes=PROBES):
    """The files to keep: each path as opened (symlink names too) -> bytes, after `probes`."""
    rows = footprint.traced(client, image, owner, lambda c: [p(c) for p in probes.values()])
    return {path: size for path, _, _, _, size in rows}


def traced_tag(source):
    """workbook/app:traced for the production image, else SOURCE-traced."""
    return "workbook/app:traced" if source == service.tag("production") else f"{source}-traced"


def build(client, source, owner, probes=PROBES, tag=None, log="summary"):
    """Trace `source` under `probes`, then build Dockerfile.traced from it as `tag`."""
    tag = tag or traced_tag(source)
    files = trace(client, source, owner, probes)
    config = client.images.get(source).attrs["Config"]
    env = dict(e.split("=", 1) for e in config.get("Env") or [])
    oci = {k.removeprefix(OCI): v for k, v in (config.get("Labels") or {}).items()
           if k.startswith(OCI)}
    # The source's model and version: the traced image says what it serves and was made from.
    args = {"SOURCE_IMAGE": source, "MODEL_PATH": env["MODEL_PATH"],
            **{arg.upper(): oci[arg] for arg in ("version", "revision") if arg in oci}}
    context = BUILD / "floor" / slug(tag.removeprefix("workbook/"), keep="_.-")
    with one_at_a_time(f"floor-{context.name}"):
        context.mkdir(parents=True, exist_ok=True)
        for name in (DOCKERFILE, SCRIPT):
            shutil.copy2(service.APP / name, context / name)
        (context / LISTING).write_text("".join(f"{p}\n" for p in sorted(files)))
        return images.build(client, context, tag, owner, dockerfile=DOCKERFILE, buildargs=args,
                            log=log)


def answers(target, n=200, seed=0, batch=100):
    """(status, body) per request: bad input, /health, /metadata, SAMPLES, n random flowers
    one per request and `batch` (app.py's default MAX_BATCH) per request."""
    out = {**bad_answers(target), "GET /health": service.call(target, "/health"),
           "GET /metadata": service.call(target, "/metadata")}
    flowers = [r for r, _ in service.SAMPLES] + records(n, seed)
    for i, record in enumerate(flowers):
        out[f"flower {i}"] = service.call(target, "/predict", record)
    for i in range(0, len(flowers), batch):
        out[f"flowers {i}.."] = service.call(target, "/predict", flowers[i:i + batch])
    # served_by is the container's hostname: it differs between any two containers.
    return {k: (status, {f: v for f, v in body.items() if f != "served_by"}
                if isinstance(body, dict) else body) for k, (status, body) in out.items()}


def same_answers(client, image, reference, owner, n=200, seed=0):
    """What `image` answers differently from `reference` (status, body); [] when nothing.

    /metadata is compared whole: the same venv and model give the same versions and digest.
    """
    got = []
    for ref in (image, reference):
        c = service.run(client, ref, owner, kind="compare")
        try:
            service.wait_ready(c)
            got.append(answers(c, n, seed))
        finally:
            c.remove(force=True)
    mine, theirs = got
    return [f"{key}: {mine.get(key)} != {theirs[key]}"
            for key in theirs if mine.get(key) != theirs[key]]
