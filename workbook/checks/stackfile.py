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


def _healthcheck(svc, client):
    """'yours', 'the image's' or None: where a service's health check comes from."""
    hc = svc.get("healthcheck") or {}
    if hc.get("disable") or (hc.get("test") or [None])[0] == "NONE":
        return None
    if hc.get("test"):
        return "yours"
    try:
        image = client.images.get(svc.get("image", ""))
    except DockerException:
        return None
    test = (image.attrs["Config"].get("Healthcheck") or {}).get("Test") or ["NONE"]
    return "the image's" if test[0] != "NONE" else None


def _waits_for(svc, other):
    """The depends_on condition `svc` has on `other` (None without depends_on)."""
    return ((svc.get("depends_on") or {}).get(other) or {}).get("condition")


def _find(services, name, image_part):
    """The service called `name`, else the first whose image contains `image_part`."""
    if name in services:
        return name
    return next((n for n, s in services.items() if image_part in (s.get("image") or "")), None)
