"""Lesson 07's exercises: a key found in a layer, the service locked down, a container limited."""

import secrets
import tempfile
from pathlib import Path

from docker.errors import ImageNotFound

from .. import bases, containers, imagefs, images
from .learner_image import answers, labelled, learner_container, published, running
from .report import NotDone, check

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


@check("Exercise 07.2 · the model service, locked down")
def locked_down(r, client, owner):
    """`{owner}-locked`: read-only root, no capabilities, no-new-privileges, and it answers."""
    box = learner_container(client, f"{owner}-locked")
    labelled(r, box, owner, "lesson 07")
    containers.wait(box, "ready", timeout=60, lines=0)  # a read-only root without a tmpfs exits
    running(r, box, "with --read-only, gunicorn needs a writable /tmp: add --tmpfs /tmp "
                    "(lesson 07 §4)")
    host = box.attrs["HostConfig"]
    r.add("its root filesystem is read-only", host.get("ReadonlyRootfs") is True,
          "it can write anywhere in the image", "add --read-only, and --tmpfs /tmp for what gunicorn writes (lesson 07 §4)")
    dropped, added = host.get("CapDrop") or [], host.get("CapAdd") or []
    r.add("it has no Linux capabilities", "ALL" in [c.upper() for c in dropped] and not added,
          f"dropped {dropped or 'none'}, added {added or 'none'}",
          "--cap-drop ALL drops all of them, none added back (lesson 07 §4)")
    opts = host.get("SecurityOpt") or []
    r.add("no-new-privileges is set", any(o.startswith("no-new-privileges") and not o.endswith("false")
                                          for o in opts),
          f"security options: {opts or 'none'}",
          "--security-opt no-new-privileges: a setuid program cannot raise privileges (lesson 07 §4)")
    port = published(r, box)
    answers(r, port, timeout=30)


@check("Exercise 07.3 · a container with limits")
def limited(r, client, owner):
    """`{owner}-limited`: at most 100 processes, at most 128 MiB, no swap on top, under 1 CPU."""
    box = learner_container(client, f"{owner}-limited")
    labelled(r, box, owner, "lesson 07")
    running(r, box, "keep it running: end the command with sleep 3600")
    host = box.attrs["HostConfig"]
    pids = host.get("PidsLimit") or 0
    r.add("its process limit is at most 100", 0 < pids <= 100,
          f"PidsLimit {pids or 'none'}", "--pids-limit 64 caps how many processes it may have: a "
          "fork bomb stops there (lesson 07 §5)")
    memory, swap = host.get("Memory") or 0, host.get("MemorySwap") or 0
    r.add("its memory limit is at most 128 MiB", 0 < memory <= 128 * 2**20,
          f"Memory {memory // 2**20 if memory else 'unlimited'} MiB",
          "--memory 64m (lesson 07 §5)")
    r.add("no swap beyond its memory limit", memory and swap == memory,
          f"MemorySwap {swap // 2**20 if swap > 0 else 'unlimited'} MiB (memory + swap)",
          "--memory-swap is memory plus swap: give it the same value as --memory (lesson 07 §5)")
    cpus = (host.get("NanoCpus") or 0) / 1e9 or (
        (host.get("CpuQuota") or 0) / (host.get("CpuPeriod") or 100000))
    r.add("it may use at most one CPU", 0 < cpus <= 1, f"{cpus or 'no'} CPU limit",
          "--cpus 0.5 (lesson 07 §5)")
