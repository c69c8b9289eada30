"""The audit's short run of an image: the uid it runs as, its health, its output, what it writes."""

import time

from docker.errors import APIError, DockerException, NotFound

from .checklist import shorten
from .containers import first_uid
from .diagnose import diagnose
from .resources import labels, unique_name


def short_run(client, image, owner, run_config, window):
    """Run the image for a few seconds: uid, health status, output, files written."""
    config = image.attrs["Config"]
    kw = dict(run_config or {})
    hc = config.get("Healthcheck") or {}
    has_hc = bool(hc.get("Test")) and hc["Test"][0] != "NONE"
    if has_hc:
        # The image's own probe, run by Docker every second instead of every 30 s.
        kw.setdefault("healthcheck", {
            "test": hc["Test"], "interval": 1_000_000_000,
            "timeout": min(hc.get("Timeout") or 30_000_000_000, 5_000_000_000),
            "retries": hc.get("Retries") or 3,
            "start_period": min(hc.get("StartPeriod") or 0, 10_000_000_000)})
    run = {"started": False, "error": None}
    container = client.containers.create(image.id, name=unique_name(owner, "audit"),
                                         labels=labels(owner), detach=True, **kw)
    start = time.monotonic()
    try:
        try:
            container.start()
            run["started"] = True
        except APIError as exc:
            run["error"] = shorten(str(exc.explanation or exc), 300)
        settled_silent = None  # when the health settled before any output
        while run["started"] and time.monotonic() - start < window:
            container.reload()
            health = (container.attrs["State"].get("Health") or {}).get("Status")
            if container.status in ("exited", "dead"):
                break
            if health in ("healthy", "unhealthy"):
                # A busy machine can settle a failing probe before the service has said a word:
                # then wait up to 10 s for its first output (the logging item reads it), a second more.
                if _said_something(container):
                    if settled_silent is not None:
                        time.sleep(1)
                    break
                settled_silent = settled_silent or time.monotonic()
                if time.monotonic() - settled_silent >= 10:
                    break
            # No probe to wait for: stop a second after its first output, or after 15 s.
            if not has_hc and (time.monotonic() - start >= min(15, window) or (
                    time.monotonic() - start >= 1 and _said_something(container))):
                time.sleep(1)
                break
            time.sleep(0.2)
        run["seconds"] = round(time.monotonic() - start, 1)
        container.reload()
        state = container.attrs["State"]
        run.update(status=container.status, exit_code=state.get("ExitCode"),
                   health=(state.get("Health") or {}).get("Status"),
                   probe=_last_probe(state), uid=first_uid(container))
        run["stdout"] = container.logs(stdout=True, stderr=False).decode(errors="replace").splitlines()
        run["stderr"] = container.logs(stdout=False, stderr=True).decode(errors="replace").splitlines()
        try:
            run["written"] = [d["Path"] for d in container.diff() or [] if d["Kind"] in (0, 1)]
        except APIError:
            run["written"] = []
        if run["error"] or run["status"] == "exited" or run["health"] in ("unhealthy", "starting"):
            run["diagnosis"] = _diagnose(container)
    finally:
        try:
            container.remove(force=True, v=True)
        except NotFound:
            pass
    return run


def _said_something(container):
    return bool(container.logs(tail=1))


def _last_probe(state):
    probes = (state.get("Health") or {}).get("Log") or []
    if not probes:
        return None
    last = probes[-1]
    lines = (last.get("Output") or "").strip().splitlines()
    return {"exit_code": last["ExitCode"], "output": lines[-1][:300] if lines else ""}


def _diagnose(container):
    """diagnose()'s account of a container that did not run well, as text."""
    try:
        return str(diagnose(container))
    except (DockerException, LookupError, ValueError, TypeError) as exc:  # extra evidence only
        return f"(diagnose failed: {exc})"

