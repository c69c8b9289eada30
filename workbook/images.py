"""Build images through docker-py with a live log and readable failures."""

import re
from collections import deque

from docker.errors import APIError, BuildError, ImageNotFound

from . import WorkbookError
from .resources import IMAGE_REPO, STAGE_REPO, image_labels

STEP = re.compile(r"^Step \d+/\d+ : ")
FROM_STEP = re.compile(r"^Step \d+/\d+ : FROM ", re.I)
LAYER = re.compile(r"^ ---> ([0-9a-f]{12})\s*$")
# The classic builder keeps the result of every stage but the last as an untagged image
# (it is the build cache). It inherits its base's labels, not ours, so we tag it here to
# keep it findable: resources.cleanup(owner) removes these tags with the owner's images.


class BuildFailed(WorkbookError):
    """A build that failed: the failing step and the last lines of its output."""


def build(client, path, tag, owner, dockerfile=None, buildargs=None, labels=None,
          nocache=False, log="steps"):
    """docker build -t TAG PATH, labelled for `owner`; log is 'steps', 'all' or 'none'."""
    if not tag.startswith(IMAGE_REPO):
        raise ValueError(f"name the workbook's images {IMAGE_REPO}NAME:TAG, not {tag!r}")
    tail, step = deque(maxlen=15), None
    stream = client.api.build(
        path=str(path), tag=tag, dockerfile=dockerfile, buildargs=buildargs or {},
        labels=image_labels(owner, **(labels or {})), nocache=nocache, rm=True,
        forcerm=True, decode=True)
    image_id, layer, heads = None, None, []
    try:
        for chunk in stream:
            if "error" in chunk:
                _tag_heads(client, owner, tag, heads + [layer] if layer else heads)
                raise BuildFailed(
                    f"Build of {tag} failed at: {step or '(before the first step)'}\n"
                    + "".join(tail) + chunk["error"].strip(),
                    "Fix that step in the Dockerfile and build again.")
            text = chunk.get("stream", "")
            if STEP.match(text):
                step = text.strip()
                if FROM_STEP.match(text) and layer:  # a stage ended: remember its result
                    heads.append(layer)
            if LAYER.match(text):
                layer = LAYER.match(text).group(1)
            if text.strip():
                tail.append(text if text.endswith("\n") else text + "\n")
            if log == "all" or (log == "steps" and STEP.match(text)):
                print(text, end="" if text.endswith("\n") else "\n", flush=True)
            if "aux" in chunk and "ID" in chunk["aux"]:
                image_id = chunk["aux"]["ID"]
    except (APIError, BuildError) as exc:
        raise BuildFailed(f"Build of {tag} failed: {exc}", "Read the message above.") from None
    except KeyboardInterrupt:  # keep what was built findable, then stop as asked
        _tag_heads(client, owner, tag, heads + [layer] if layer else heads)
        raise
    _tag_heads(client, owner, tag, heads)
    try:
        return client.images.get(image_id or tag)
    except ImageNotFound:
        raise BuildFailed(f"Build of {tag} produced no image.", "Read the build log above.") from None


def _tag_heads(client, owner, tag, heads):
    """Tag earlier stages' results (and a failed build's last layer) as workbook-stage/OWNER."""
    slug = re.sub(r"[^a-z0-9_.-]+", "-", tag.lower()).strip("-.")
    for i, image_id in enumerate(heads):
        client.api.tag(image_id, f"{STAGE_REPO}/{owner.lower()}", f"{slug}-{i}")


def exists(client, ref):
    """True when the engine has an image called ref."""
    try:
        client.images.get(ref)
        return True
    except ImageNotFound:
        return False
