"""Build images through docker-py with a live log and readable failures."""

import json
import re
import time
from collections import deque

from docker.errors import APIError, BuildError, ImageNotFound

from . import BUILD, WorkbookError
from .resources import IMAGE_REPO, STAGE_REPO, image_labels, slug

# Written by bundle.load(): the images a loaded bundle brought, the build cache on this machine.
MARKER = BUILD / "bundle-loaded.json"
STEP = re.compile(r"^Step (\d+)/\d+ : ")
FROM_STEP = re.compile(r"^Step \d+/\d+ : FROM ", re.I)
LAYER = re.compile(r"^ ---> ([0-9a-f]{12})\s*$")
CACHED = re.compile(r"^ ---> Using cache")
LOGS = ("steps", "summary", "all", "none")
CACHE_MARK = "  (from cache)"  # appended to a step's line when the builder reused its layer


class BuildFailed(WorkbookError):
    """A build that failed: the failing step and the last lines of its output."""


def build(client, path, tag, owner, dockerfile=None, buildargs=None, labels=None,
          nocache=False, log="steps"):
    """docker build -t TAG PATH, labelled for `owner`; log: 'steps', 'summary', 'all', 'none'.

    'steps' prints each "Step N/M" line, marked when it came from the cache, then the summary
    line "N steps, M from cache, X s"; 'summary' prints only that line; 'all' the whole log.
    """
    if not tag.startswith(IMAGE_REPO):
        raise ValueError(f"name the workbook's images {IMAGE_REPO}NAME:TAG, not {tag!r}")
    if log not in LOGS:
        raise ValueError(f"log={log!r}: pick one of {', '.join(LOGS)}")
    try:
        return _build(client, path, tag, owner, dockerfile, buildargs, labels, nocache, log)
    except BuildFailed as exc:
        if not cache_vanished(str(exc)):
            raise
        if log != "none":
            print("(a cached layer was removed during the build; building again)", flush=True)
        return _build(client, path, tag, owner, dockerfile, buildargs, labels, nocache, log)


# The classic builder picks a cached image, then reads it: when another owner removes the image
# that layer belongs to in between (the suite's parallel tests do), the engine says `unable to
# find image "sha256:..."`. Nothing is wrong with the Dockerfile; the same build again works.
def cache_vanished(output):
    """Whether a build failed because a layer it took from the cache was removed meanwhile."""
    return 'unable to find image "sha256:' in output


def _build(client, path, tag, owner, dockerfile, buildargs, labels, nocache, log):
    """One try of build()."""
    tail, step, started = deque(maxlen=15), None, time.perf_counter()
    stream = client.api.build(
        path=str(path), tag=tag, dockerfile=dockerfile, buildargs=buildargs or {},
        labels=image_labels(owner, **(labels or {})), nocache=nocache, rm=True,
        forcerm=True, decode=True,
        cache_from=cache_from(tag))  # docker load keeps no build cache: a loaded bundle's images are it
    image_id, layer, heads, finished = None, None, [], False
    steps = cached = 0
    try:
        for chunk in stream:
            if "error" in chunk:
                _end_line(log, steps)
                raise BuildFailed(
                    f"Build of {tag} failed at: {step or '(before the first step)'}\n"
                    + "".join(tail) + chunk["error"].strip(),
                    "Fix that step in the Dockerfile and build again.")
            text = chunk.get("stream", "")
            if STEP.match(text):
                step, steps = text.strip(), steps + 1
                if FROM_STEP.match(text) and layer:  # a stage ended: remember its result
                    heads.append(layer)
                if log == "steps":  # the line stays open until we know whether it was cached
                    _end_line(log, steps - 1)
                    print(step, end="", flush=True)
            elif CACHED.match(text):
                cached += 1
                if log == "steps":
                    print(CACHE_MARK, end="", flush=True)
            if m := LAYER.match(text):
                layer = m.group(1)
            if text.strip():
                tail.append(text if text.endswith("\n") else text + "\n")
            if log == "all":
                print(text, end="" if text.endswith("\n") else "\n", flush=True)
            if "aux" in chunk and "ID" in chunk["aux"]:
                image_id = chunk["aux"]["ID"]
        finished = True
    except (APIError, BuildError) as exc:
        raise BuildFailed(f"Build of {tag} failed: {exc}", "Read the message above.") from None
    finally:  # failed or interrupted (Ctrl-C): the last layer built is left behind too
        _tag_heads(client, owner, tag, heads if finished or not layer else heads + [layer])
    _end_line(log, steps)
    if log in ("steps", "summary"):
        print(f"{summary(steps, cached)}, {time.perf_counter() - started:.1f} s", flush=True)
    try:
        return client.images.get(image_id or tag)
    except ImageNotFound:
        raise BuildFailed(f"Build of {tag} produced no image.", "Read the build log above.") from None


def summary(steps, cached):
    """'N steps, M from cache': what a build did (the classic builder's count)."""
    return f"{steps} step{'s' * (steps != 1)}, {cached} from cache"


def _end_line(log, steps):
    """End the open "Step N/M" line of a 'steps' log (if a step was printed)."""
    if log == "steps" and steps:
        print(flush=True)


def _tag_heads(client, owner, tag, heads):
    """Tag earlier stages' results (and a failed build's last layer) as workbook-stage/OWNER.

    The classic builder keeps them as untagged images (the build cache) that carry their
    base's labels, not ours; the tag keeps them findable for resources.cleanup(owner).
    """
    for i, image_id in enumerate(heads):
        try:
            client.api.tag(image_id, f"{STAGE_REPO}/{owner.lower()}", f"{slug(tag, keep='_.-')}-{i}")
        except ImageNotFound:  # another owner's cleanup removed that shared stage meanwhile
            pass


def cache_from(tag):
    """--cache-from for a build of `tag` on a machine where a bundle was loaded, else None.

    `docker load` restores images but not the classic builder's cache (their parent chain);
    naming the loaded images as cache sources lets a build reuse their layers offline.
    """
    if not MARKER.exists():
        return None
    try:
        refs = [e["ref"] for e in json.loads(MARKER.read_text())["images"]]
    except (ValueError, KeyError):
        return None
    return refs if tag in refs else None


def platform_of(image):
    """An image's platform, e.g. linux/amd64 (linux/arm64/v8 with a variant)."""
    a = image.attrs
    return "/".join(p for p in (a.get("Os"), a.get("Architecture"), a.get("Variant")) if p)


def exists(client, ref):
    """True when the engine has an image called ref."""
    try:
        client.images.get(ref)
        return True
    except ImageNotFound:
        return False
