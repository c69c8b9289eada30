"""Build images through docker-py with a live log and readable failures."""

import re
from collections import deque

from docker.errors import APIError, BuildError, ImageNotFound

from . import WorkbookError
from .resources import image_labels

STEP = re.compile(r"^Step \d+/\d+ : ")


class BuildFailed(WorkbookError):
    """A build that failed: the failing step and the last lines of its output."""


def build(client, path, tag, owner, dockerfile=None, buildargs=None, labels=None,
          nocache=False, log="steps"):
    """docker build -t TAG PATH, labelled for `owner`; log is 'steps', 'all' or 'none'."""
    tail, step = deque(maxlen=15), None
    stream = client.api.build(
        path=str(path), tag=tag, dockerfile=dockerfile, buildargs=buildargs or {},
        labels=image_labels(owner, **(labels or {})), nocache=nocache, rm=True,
        forcerm=True, decode=True)
    image_id = None
    try:
        for chunk in stream:
            if "error" in chunk:
                raise BuildFailed(
                    f"Build of {tag} failed at: {step or '(before the first step)'}\n"
                    + "".join(tail) + chunk["error"].strip(),
                    "Fix that step in the Dockerfile and build again.")
            text = chunk.get("stream", "")
            if STEP.match(text):
                step = text.strip()
            if text.strip():
                tail.append(text if text.endswith("\n") else text + "\n")
            if log == "all" or (log == "steps" and STEP.match(text)):
                print(text, end="" if text.endswith("\n") else "\n", flush=True)
            if "aux" in chunk and "ID" in chunk["aux"]:
                image_id = chunk["aux"]["ID"]
    except (APIError, BuildError) as exc:
        raise BuildFailed(f"Build of {tag} failed: {exc}", "Read the message above.") from None
    try:
        return client.images.get(image_id or tag)
    except ImageNotFound:
        raise BuildFailed(f"Build of {tag} produced no image.", "Read the build log above.") from None


def exists(client, ref):
    """True when the engine has an image called ref."""
    try:
        client.images.get(ref)
        return True
    except ImageNotFound:
        return False
