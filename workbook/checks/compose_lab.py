"""The check of lab 05: a Compose stack of the model api and a Redis cache."""

import secrets
import time
from urllib.parse import urlsplit

from .. import bases, compose, engine, resources, service
from .report import Stop, check
from .stackfile import _config, _find, _names, _probe, _waits_for
from .workspace import _unfinished, project_name


COMPOSE_HINT = "lesson 05 §2 shows a complete compose file; `docker compose config` names the line"
STACK_WAIT = 90  # seconds for every container of the lab's stack to be healthy


def compose_project(client, lab, echo=False):
    """The lab's Compose project: its compose.yaml with this machine's base images."""
    env = {**bases.image_vars(client), "WORKBOOK_OWNER": lab.owner}
    return compose.Project(project_name(lab.owner), lab.owner, [lab.path / "compose.yaml"], env,
                           echo=echo)


def _cache_hint(container):
    """Why the api's cache answered `error`, from the warning it logged."""
    logs = container.logs().decode(errors="replace") if container else ""
    if "ResponseError" in logs or "DENIED" in logs:
        return ("Redis answered but refused the api: the stand-in redis-server runs in protected "
                "mode; give it `command: [\"redis-server\", \"--protected-mode\", \"no\"]`")
    return ("the api could not reach Redis at REDIS_URL: the host must be Redis's service name on "
            "a network both share, port 6379 (lesson 05 §6)")


@check("Lab 05 · Compose stack: api + Redis cache")
def compose_stack(r, client, lab):
    """compose.yaml: health checks, depends_on conditions, REDIS_URL by name, a cache hit."""
    _unfinished(lab.path / "compose.yaml")
    project = compose_project(client, lab)
    config, error = _config(project)
    if not r.add("compose.yaml is valid (docker compose config)", config, error, COMPOSE_HINT):
        raise Stop()
    services = config.get("services") or {}
    api, redis = _find(services, "api", "workbook/app"), _find(services, "redis", "redis")
    if not r.add("services: the model api and redis", api and redis,
                 f"found {', '.join(services) or 'no services'}",
                 "one service `api` running workbook/app:production and one `redis` running "
                 "${REDIS_IMAGE} (lesson 05 §2)"):
        raise Stop()
    a = services[api]
    url = (a.get("environment") or {}).get("REDIS_URL") or ""
    host = urlsplit(url).hostname if url.startswith("redis://") else None
    r.add("the api reaches Redis by its service name (REDIS_URL)", host in _names(services[redis], redis),
          f"REDIS_URL is {url!r}" if url else "the api has no REDIS_URL",
          f"set REDIS_URL: redis://{redis}:6379/0 in the api's environment: Compose's DNS "
          "resolves service names, and localhost is the api container itself (lesson 05 §6)")
    for name in (redis, api):
        where, test = _probe(services[name], client)
        if r.add(f"{name} has a health check", where, "no health check (or it is disabled)",
                 note=where, hint="healthcheck: test: [\"CMD\", ...] with a short interval (2s): "
                 "redis-cli ping for Redis, a urllib call to /health for the api (lesson 05 §3)"):
            code, said = _probe_alone(client, lab, services[name]["image"], test)
            r.add(f"{name}'s health check fails while {name} is not running", code != 0,
                  f"the probe exits 0 with nothing to ask ({' '.join(test[1:])[:60]})",
                  "a probe that always succeeds says nothing: it must ask the service itself "
                  "(redis-cli ping, or urllib on /health) (lesson 05 §3)",
                  note=f"exit {code}: {said}" if said else f"exit {code}")
    r.add(f"{api} starts once {redis} is healthy (depends_on)",
          _waits_for(a, redis) == "service_healthy",
          f"depends_on {redis}: condition {_waits_for(a, redis)}",
          f"depends_on: {{{redis}: {{condition: service_healthy}}}}: a bare depends_on only waits "
          "for the container to start, not for Redis to answer (lesson 05 §3)")
    dashboards = [n for n, s in services.items() if "workbook/ui" in (s.get("image") or "")]
    for name in dashboards:
        r.add(f"{name} (optional) starts once {api} is healthy",
              _waits_for(services[name], api) == "service_healthy",
              f"depends_on {api}: condition {_waits_for(services[name], api)}",
              f"depends_on: {{{api}: {{condition: service_healthy}}}} (lesson 05 §3)", optional=True)
    ports = [p for p in a.get("ports") or [] if int(p.get("target", 0)) == 5000]
    r.add("the api's port 5000 is published on 127.0.0.1 only",
          ports and all(p.get("host_ip") == "127.0.0.1" for p in ports),
          "not published" if not ports else "published on every interface (0.0.0.0)",
          "ports: [\"127.0.0.1::5000\"] (or 127.0.0.1:HOST:5000): the host reaches the api only "
          "through a published port, and only this machine should (lesson 05 §2)")
    if r.failed:
        raise Stop()  # the stack runs only once its file is right: a run takes seconds
    try:
        _run_stack(r, client, lab, project, api, redis, dashboards)
    finally:
        project("down", "--volumes", "--remove-orphans", "--timeout", "2", check=False)


def _probe_alone(client, lab, image, test):
    """Run a health check's test in a container of `image` whose service never starts:
    (exit code, its last line of output)."""
    argv = test[1:] if test[0] == "CMD" else ["/bin/sh", "-c", test[1]]
    box = client.containers.run(image, argv[1:], entrypoint=argv[:1], detach=True,
                                labels=resources.labels(lab.owner))
    try:
        code = box.wait(timeout=20)["StatusCode"]
        lines = box.logs().decode(errors="replace").strip().splitlines()
        return code, (lines[-1][-100:] if lines else "")
    finally:
        box.remove(force=True, v=True)


def _settle(container, timeout):
    """(Docker's health status once healthy, unhealthy or stopped, last probe's last line)."""
    deadline = time.monotonic() + timeout
    while True:
        container.reload()
        health = container.attrs["State"].get("Health")
        log = (health or {}).get("Log") or [{}]
        last = ((log[-1].get("Output") or "").strip().splitlines() or [""])[-1][-160:]
        if container.status != "running":
            return container.status, f"exit code {container.attrs['State']['ExitCode']}"
        if health is None or health["Status"] != "starting" or time.monotonic() > deadline:
            return (health or {}).get("Status"), last
        time.sleep(0.25)


def _event(events, name, what):
    """Where in `docker compose up`'s progress lines service `name`'s container reports `what`."""
    return next((i for i, (c, e) in enumerate(events) if c.endswith(f"-{name}-1") and e == what),
                None)


def _run_stack(r, client, lab, project, api, redis, dashboards):
    """Up, every container healthy, api started after a healthy Redis, a repeated request hit."""
    project("down", "--volumes", "--remove-orphans", "--timeout", "2", check=False)
    start = time.perf_counter()
    done = project("up", "--detach", check=False, timeout=180)
    found = project.containers(client=client)
    if not r.add("docker compose up starts every service", not done.returncode and found,
                 engine.short_error(done.stderr),
                 "no registry here: use the images this machine has (workbook/app:production, "
                 "${REDIS_IMAGE}); read the message (lesson 05 §3)"):
        raise Stop()
    states = {c.labels["com.docker.compose.service"]: _settle(c, STACK_WAIT) for c in found}
    r.figures["up to healthy"] = f"{time.perf_counter() - start:.1f} s"
    bad = {n: s for n, s in states.items() if s[0] != "healthy" and n not in dashboards}
    r.add(f"every container is healthy (Docker's health status: {len(states) - len(dashboards)} "
          "services)", not bad,
          "; ".join(f"{n} {s or 'no health check'}: {last}" for n, (s, last) in bad.items()),
          "run the probe by hand: `docker compose exec SERVICE <the test command>` (lesson 05 §3)",
          note=r.figures["up to healthy"])
    for name in dashboards:
        status, last = states.get(name, ("not started", ""))
        r.add(f"{name} (optional) is healthy", status == "healthy", f"{status}: {last}",
              "`docker compose logs` the dashboard: it needs API_URL: http://api:5000 (lesson 05 §2)",
              optional=True)
    events = [ln.split()[1:3] for ln in done.stderr.splitlines()
              if ln.strip().startswith("Container")]
    healthy = _event(events, redis, "Healthy")
    started = _event(events, api, "Starting")
    r.add(f"Compose started {api} after {redis} was healthy", None not in (healthy, started)
          and healthy < started, "docker compose up did not wait for Redis's health",
          f"depends_on with condition: service_healthy on {redis} (lesson 05 §3)")
    (box,) = project.containers(api, client)[:1] or [None]
    if box is None or bad.get(api):
        raise Stop()
    for _ in range(3):  # the api waits 0.25 s for Redis: on a busy machine, a late answer gets another try
        flower = dict(service.SAMPLES[1][0], sepal_length=round(5 + secrets.randbelow(1000) / 1000, 3))
        caches = []
        for _ in range(2):
            status, body, headers = service.request(box, "/predict", flower, timeout=10)
            caches.append(headers.get("X-Cache") if status == 200 else f"status {status}")
        if "error" not in caches:
            break
        time.sleep(1)
    r.figures["X-Cache, same request twice"] = " then ".join(map(str, caches))
    hint = {"off": "the api has no REDIS_URL: it serves without a cache (lesson 05 §6)",
            "error": _cache_hint(box)}.get(caches[0], "a repeated request must come from Redis "
                                                      "(lesson 05 §6)")
    r.add("a repeated request is served from the cache (X-Cache: miss, then hit)",
          caches == ["miss", "hit"], f"X-Cache: {' then '.join(map(str, caches))}", hint,
          note=f"X-Cache: {' then '.join(caches)}")
