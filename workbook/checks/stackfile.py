"""What a learner's compose or stack file says, read through `docker compose config`."""

import json

from docker.errors import DockerException

from .. import engine


def _config(project):
    """`docker compose config --format json` of a project: (dict, None) or (None, error)."""
    done = project("config", "--format", "json", check=False, echo=False, timeout=60)
    if done.returncode:
        return None, engine.short_error(done.stderr)
    return json.loads(done.stdout), None


def _probe(svc, client):
    """(where, test): where a service's health check comes from ('yours', 'the image's') and
    its test (["CMD", ...] or ["CMD-SHELL", "..."]); (None, None) without one."""
    hc = svc.get("healthcheck") or {}
    if hc.get("disable") or (hc.get("test") or [None])[0] == "NONE":
        return None, None
    if hc.get("test"):
        return "yours", hc["test"]
    try:
        image = client.images.get(svc.get("image", ""))
    except DockerException:
        return None, None
    test = (image.attrs["Config"].get("Healthcheck") or {}).get("Test") or ["NONE"]
    return ("the image's", test) if test[0] != "NONE" else (None, None)


def _healthcheck(svc, client):
    """'yours', 'the image's' or None: where a service's health check comes from."""
    return _probe(svc, client)[0]


def _names(svc, name):
    """Every DNS name other containers of the project reach a service by."""
    aliases = [a for net in (svc.get("networks") or {}).values() for a in (net or {}).get("aliases") or []]
    return {name, *aliases, *([svc["container_name"]] if svc.get("container_name") else [])}


def _waits_for(svc, other):
    """The depends_on condition `svc` has on `other` (None without depends_on)."""
    return ((svc.get("depends_on") or {}).get(other) or {}).get("condition")


def _find(services, name, image_part):
    """The service called `name`, else the first whose image contains `image_part`."""
    if name in services:
        return name
    return next((n for n, s in services.items() if image_part in (s.get("image") or "")), None)
