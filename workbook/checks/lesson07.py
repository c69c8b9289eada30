"""Lesson 07's exercises: a key found in a layer, secrets kept out of the context, a model file trusted."""

import functools
import os
import secrets
import tempfile
from pathlib import Path

import numpy as np
import skops.io as sio
from docker.errors import ImageNotFound
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from .. import bases, imagefs, images, resources, scan, service
from .learner_image import built_since, labelled, learner_image
from .report import NotDone, Stop, check

LEAKY = "workbook/leaky:{owner}"  # the exercise's image: a .env copied in, then deleted
ENV_FILE = "/app/.env"


def leaky_image(client, owner):
    """Build the exercise's image: a .env with a new random key, COPY'd in, then `rm`'d.

    The key exists only in the image's layers (its build folder is deleted at once). Built
    once: running the cell again keeps the image, and so the key you are looking for."""
    tag = LEAKY.format(owner=owner.lower())
    if images.exists(client, tag):
        return tag
    with tempfile.TemporaryDirectory(prefix="wb07-leaky-") as tmp:
        folder = Path(tmp)
        (folder / ".env").write_text(f"API_KEY=demo-{secrets.token_urlsafe(18)}\nLOG_LEVEL=info\n")
        (folder / "Dockerfile").write_text(
            "ARG DEBIAN_IMAGE=debian:bookworm-slim\nFROM ${DEBIAN_IMAGE}\nWORKDIR /app\n"
            "COPY . .\nRUN rm -f .env\nCMD [\"ls\", \"-A\", \"/app\"]\n")
        images.build(client, folder, tag, owner, buildargs=bases.build_args(client), log="none")
    return tag


def _layer_keys(client, image):
    """The API_KEY values any layer of the image holds in /app/.env."""
    found = []

    def visit(entry, data):
        if entry.path == ENV_FILE and entry.type == "file":
            found.extend(ln.split("=", 1)[1] for ln in data().decode().splitlines()
                         if ln.startswith("API_KEY="))

    imagefs.read(client, image, visit)
    return found


@check("Exercise 07.1 · find the key a deleted file left in a layer")
def found_key(r, client, owner, key):
    """`key` is the API_KEY value that the image's COPY layer still holds."""
    try:
        image = client.images.get(LEAKY.format(owner=owner.lower()))
    except ImageNotFound:
        raise NotDone("the exercise's image is not built yet",
                      "run the cell with checks.lesson07.leaky_image first") from None
    said = (key or "").strip().removeprefix("API_KEY=")
    if not said:
        raise NotDone("`key` is empty", "find the key, set key = \"...\", run that cell, then this one")
    keys = _layer_keys(client, image)
    r.add("the key you found is the one in the image's layers", said in keys,
          f"{said[:12]}… is not in any layer" if len(said) > 12 else f"{said!r} is not in any layer",
          "docker save the image, untar it, and read app/.env out of each layer.tar "
          "(`tar -xOf LAYER app/.env`): the COPY layer still holds it (lesson 07 §3)")




# Exercise 07.2's project folder: what the image needs, and two secrets beside it.
PROJECT = {
    "Dockerfile": "ARG DEBIAN_IMAGE=debian:bookworm-slim\nFROM ${DEBIAN_IMAGE}\nWORKDIR /app\nCOPY . .\n"
                  "CMD [\"sh\", \"serve.sh\"]\n",
    "serve.sh": "echo \"serving with $(cat settings.conf)\"\n",
    "settings.conf": "LOG_LEVEL=info\n",
    "notes/TODO.md": "- rotate the deploy key\n",
}
NEEDED = ("serve.sh", "settings.conf")


def project(folder):
    """Exercise 07.2's build context: the service's files, a .env and a private key (new each time)."""
    folder = Path(folder)
    for name, text in PROJECT.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    (folder / ".env").write_text(f"API_KEY=demo-{secrets.token_urlsafe(18)}\n")
    (folder / "keys").mkdir(exist_ok=True)
    (folder / "keys" / "deploy_key").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n"
                                                f"{secrets.token_urlsafe(48)}\n-----END OPENSSH PRIVATE KEY-----\n")
    return folder


@check("Exercise 07.2 · keep the secrets out of the build context")
def ignored(r, client, owner, folder, tag):
    """The image built from `folder` holds no secret anywhere, and still holds the service's files."""
    ignore = Path(folder) / ".dockerignore"
    patterns = [ln for ln in (ignore.read_text() if ignore.exists() else "").splitlines()
                if ln.strip() and not ln.lstrip().startswith("#")]
    if not patterns:
        raise NotDone(f"{ignore.name} has no patterns yet", "write them in the %%writefile cell, run it, then your docker build")
    image = learner_image(client, tag, "build it first: run your `!docker build` line")
    labelled(r, image, owner, "lesson 07")
    built_since(r, image, ignore, "the .dockerignore",
                "run your docker build again after every change to .dockerignore (lesson 07 §3)")
    found = scan.scan_image(client, image)
    r.add("no secret in any layer or in the image's configuration", not found,
          "; ".join(sorted({f"{f.kind} {f.path or f.where}" for f in found})),
          "list .env and the keys folder in .dockerignore: what is not sent to the builder cannot be "
          "copied (lesson 07 §3)")
    listed = client.containers.run(image.id, ["ls", "-A", "/app"], remove=True,
                                   labels=resources.labels(owner)).decode().split()
    missing = [n for n in NEEDED if n not in listed]
    r.add("the service's own files are still in /app", not missing, f"/app lacks {', '.join(missing)}",
          "ignore only what must stay out; a pattern like * or *.* leaves out the service too "
          "(lesson 07 §3)")


def sent_models(folder):
    """Exercise 07.3's two model files from a colleague: one clips its input, one runs a command."""
    folder = Path(folder) / "sent"
    folder.mkdir(parents=True, exist_ok=True)
    x, y = load_iris(return_X_y=True)
    clipped = make_pipeline(FunctionTransformer(functools.partial(np.clip, a_min=0, a_max=10)),
                            StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)
    sio.dump(clipped, folder / "model_a.skops")
    # Never fitted, never loaded: fitting it would run os.system on the data.
    sio.dump(make_pipeline(FunctionTransformer(functools.partial(os.system)), LogisticRegression()),
             folder / "model_b.skops")
    return folder


@check("Exercise 07.3 · load only what you reviewed")
def trusted_model(r, folder, safe, trusted):
    """`safe` names the file that runs no command; `trusted` is exactly what it needs, and it predicts."""
    if not safe:
        raise NotDone("`safe` is empty", "look at each file's untrusted types, then set safe and trusted")
    folder = Path(folder) / "sent"
    untrusted = {p.name: set(sio.get_untrusted_types(file=p)) for p in sorted(folder.glob("*.skops"))}
    dangerous = {name for name, kinds in untrusted.items() if "posix.system" in kinds or "nt.system" in kinds}
    name = Path(str(safe)).name
    if not r.add("you load the file that runs no command", name in untrusted and name not in dangerous,
                 f"{name} names {', '.join(sorted(untrusted.get(name, ()))) or 'no such file'}",
                 "sio.get_untrusted_types(file=PATH) lists what loading a file would call: posix.system "
                 "runs a shell command (lesson 07 §4)"):
        raise Stop()
    trusted = list(trusted or [])
    extra = sorted(set(trusted) - untrusted[name])
    r.add(f"you trust only the types {name} names", not extra, f"you also trust {', '.join(extra)}",
          "trust what you reviewed for this file, not every type any file lists (lesson 07 §4)")
    try:
        model = sio.load(folder / name, trusted=trusted)
        labels = list(model.predict([list(f.values()) for f, _ in service.SAMPLES]))
        said = ""
    except Exception as exc:  # skops refuses, or the object is no model
        labels, said = [], f"{type(exc).__name__}: {str(exc)[:120]}"
    iris = load_iris().target_names
    r.add("it loads with your list and labels the three known flowers", [iris[i] for i in labels] == [
          w for _, w in service.SAMPLES] if labels else False, said or f"it says {labels}",
          "trusted= must name every type get_untrusted_types lists for that file (lesson 07 §4)")
