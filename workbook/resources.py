"""Labels, unique names, published ports and cleanup of the workbook's Docker resources."""

import errno
import re
import secrets
import socket

from docker.errors import APIError, NotFound

from . import LABEL

STAGE_REPO = "workbook-stage"  # builder-stage results, tagged by images.build
IMAGE_REPO = "workbook/"  # the workbook names every image it builds workbook/NAME:TAG


# Containers inherit their image's labels, so `workbook=...` on a container may come from
# its image (a learner's own container run from a workbook image). Only containers that
# also carry CREATED_BY, which images never get, were made by the workbook.
CREATED_BY = "workbook.created-by"


def labels(owner, **extra):
    """Labels for containers, networks and volumes made by `owner` (a notebook, lab or test)."""
    return {LABEL: owner, CREATED_BY: owner, **extra}


def cli_labels(owner):
    """The same labels as `docker run`/`docker volume create` flags, for commands a learner types."""
    return " ".join(f"--label {k}={v}" for k, v in labels(owner).items())


def image_labels(owner, **extra):
    """Labels for images built by `owner` (never CREATED_BY: containers would inherit it)."""
    return {LABEL: owner, **extra}


def unique_name(owner, kind="c"):
    """A container/network name that cannot collide with a rerun or an interrupted run."""
    return f"wb-{owner.split('_')[0]}-{kind}-{secrets.token_hex(3)}"


def slug(text, keep=""):
    """`text` lower-cased, each run of other characters than a-z, 0-9 (and `keep`) one "-",
    none at either end: what Compose project names and image tags accept.

    slug("lab05_compose_stack") == "lab05-compose-stack"; slug(tag, keep="_.-") for a tag.
    """
    return re.sub(f"[^a-z0-9{re.escape(keep)}]+", "-", str(text).lower()).strip("-.")


def port_free(port, host="127.0.0.1"):
    """True when nothing listens on host:port (we can bind it ourselves)."""
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def free_port(preferred=None, host="127.0.0.1"):
    """A TCP port nothing listens on: `preferred` when it is free, else one the OS picks.

    host "0.0.0.0": free on every interface, 127.0.0.1 too (what a port published on all of
    them needs, e.g. Swarm's host mode).
    """
    hosts = (host,) if host == "127.0.0.1" else (host, "127.0.0.1")
    if preferred and all(port_free(preferred, h) for h in hosts):
        return preferred
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def host_port(container, port):
    """The 127.0.0.1 port Docker picked for a container port such as '5000/tcp'."""
    container.reload()
    bindings = container.attrs["NetworkSettings"]["Ports"].get(port) or []
    for b in bindings:
        if b["HostIp"] in ("127.0.0.1", ""):
            return int(b["HostPort"])
    raise LookupError(f"{port} of {container.name} is not published on 127.0.0.1")


def _filters(owner, key=LABEL):
    return {"label": f"{key}={owner}" if owner else key}


def find(client, owner=None):
    """Every resource the workbook made, by kind: {'containers': [...], 'networks': [...], ...}."""
    f = _filters(owner)
    found = {
        "containers": client.containers.list(all=True, filters=_filters(owner, CREATED_BY)),
        "networks": client.networks.list(filters=f),
        "volumes": client.volumes.list(filters=f),
        "images": [i for i in client.images.list(filters=f) if _ours(i)],
        "stage images": client.images.list(
            filters={"reference": f"{STAGE_REPO}/{owner.lower() if owner else '*'}"}),
    }
    if client.info().get("Swarm", {}).get("ControlAvailable"):
        found["services"] = client.services.list(filters=f)
        found["secrets"] = client.secrets.list(filters=f)
    return found


def _ours(image):
    """Images inherit labels too: a labelled image is the workbook's only if it bears a
    workbook/ name or none at all (a learner's `myapp` built FROM a workbook base is theirs)."""
    return not image.tags or any(t.startswith(IMAGE_REPO) for t in image.tags)


def cleanup(client, owner=None):
    """Remove what `owner` made (every 'workbook' resource if None); return what went."""
    removed = {}
    found = find(client, owner)
    # Services before their secrets and networks; containers before images.
    for kind in ("services", "containers", "secrets", "networks", "volumes", "images",
                 "stage images"):
        removed.setdefault(kind, [])
        items = found.get(kind, [])
        if kind == "images":  # children (more layers) before the bases they build on
            items = sorted(items, key=lambda i: -_depth(i))
        for item in items:
            try:
                if kind == "containers":
                    item.remove(force=True, v=True)
                elif kind == "images":  # no force: an image a learner's container uses stays
                    for ref in item.tags or [item.id]:
                        client.images.remove(ref)
                elif kind == "stage images":  # only our tags: the image may be a base, or another's stage
                    mine = f"{STAGE_REPO}/{owner.lower()}:" if owner else f"{STAGE_REPO}/"
                    for ref in item.tags:
                        if ref.startswith(mine):
                            client.images.remove(ref)
                else:
                    item.remove()
                removed[kind].append(_name(item))
            except NotFound:
                pass
            except APIError as exc:
                if exc.status_code == 409:  # in use by a container that is not the workbook's
                    removed.setdefault("kept (in use)", []).append(_name(item))
                elif exc.status_code != 404:
                    raise
    return removed


def _depth(image):
    """How many layers an image has (0 if it was removed meanwhile, e.g. by a parallel prune)."""
    try:
        return len(image.history())
    except NotFound:
        return 0


def _name(item):
    if getattr(item, "tags", None):
        return item.tags[0]
    return getattr(item, "name", None) or item.short_id


def describe_removed(removed):
    """One line: how many of each kind were removed."""
    parts = [f"{len(v)} {k}" for k, v in removed.items() if v]
    return "removed " + ", ".join(parts) if parts else "nothing labelled 'workbook' to remove"
