"""The check of lab 07: a rolling update and a rollback with Swarm, under load."""

import contextlib
import io
import shutil
import time

from .. import compose, engine, images, resources, service, swarm
from ..traffic import Traffic
from .report import NotDone, Stop, check
from .stackfile import _config, _healthcheck
from .workspace import _unfinished, prepare_folder, stack_name


ROLL_WAIT = 120  # seconds for a deploy, an update or a rollback to settle


def rolling_images(lab):
    """(v1, v2, proxy): the production image, the lab's v2 (lab.tag) and its nginx."""
    proxy = f"workbook/lab-{lab.number}-nginx:{lab.tag.split(':')[-1]}"
    return service.tag("production"), lab.tag, proxy


def prepare_rolling(client, number, owner, tag=None):
    """Reset the rolling-update lab and build its images: v1, v2 (model_version 2), nginx."""
    lab = prepare_folder(client, number, owner, tag or f"workbook/lab-{number}:v2")
    v1, v2, proxy = rolling_images(lab)
    service.build(client, "production", log="none")
    # v2 is v1 with one more layer: a model trained as model_version 2 (a 35 kB context).
    context = lab.path / "v2"
    context.mkdir()
    service.train(context / "model.skops", model_version="2")
    (context / "Dockerfile").write_text(
        f"FROM {v1}\nCOPY model.skops model.skops.sha256 /app/models/\n")
    images.build(client, context, v2, owner, log="none")
    swarm.build_nginx(client, owner, proxy)
    shutil.rmtree(context)
    return lab


def _spec_of(svc):
    """(update_config, rollback_config) of a compose-config service, with Swarm's defaults."""
    deploy = svc.get("deploy") or {}
    defaults = {"order": "stop-first", "parallelism": 1, "failure_action": "pause"}
    return ({**defaults, **(deploy.get("update_config") or {})},
            {**defaults, **(deploy.get("rollback_config") or {})})


def _versions_now(url, n=10):
    """The model versions n requests through nginx get (a failed request counts as None)."""
    seen = []
    for _ in range(n):
        try:
            status, body = service.call(url, "", service.SAMPLES[0][0], timeout=5)
        except OSError:
            status, body = None, None
        seen.append(body["model_version"] if status == 200 else None)
    return sorted(set(seen), key=str)


def _roll(r, client, api, replicas, url, step, name, want, hint):
    """Run step() under load; criteria: no failed request, every task ends on `want`."""
    with Traffic(url) as traffic:
        time.sleep(0.5)
        traffic.mark(f"{name} starts")
        step()
        state, message, seconds = swarm.wait_update(client, api, timeout=ROLL_WAIT)
        traffic.mark(f"{name} {state}")
        swarm.wait_converged(client, api, replicas, ROLL_WAIT)
        time.sleep(1.5)  # nginx re-resolves the api's name every second
    r.figures[f"{name}: failed requests"] = f"{traffic.failed} of {traffic.sent} requests"
    r.seen[name] = (traffic.timeline, traffic.marks)  # for pictures.rollout
    r.add(f"{name} under load: no failed request", traffic.failed == 0,
          f"{traffic.failed} of {traffic.sent} requests failed"
          + (f" (first: {traffic.errors[0][1][:80]})" if traffic.errors else ""),
          hint, note=f"{traffic.sent} requests, {seconds:.1f} s")
    versions = _versions_now(url)
    r.add(f"{name}: every request now gets model_version {want}", versions == [want],
          f"update {state} ({message}); versions answering: {versions}",
          "the update must complete: `docker service ps` shows why a task failed (lesson 06 §8)")


def _quiet(*args):
    """docker ARGS without echoing the command (the check prints only its report)."""
    return engine.docker_cli(*args, echo=False)


@check("Lab 07 · rolling update with Swarm")
def rolling_update(r, client, lab):
    """Deploy v1 behind nginx, update to v2 under load with no failed request, roll back."""
    path = lab.path / "stack.yaml"
    _unfinished(path)
    if swarm.state(client) != "active":
        raise NotDone("this engine is not in a swarm",
                      "run the cell with swarm.ensure_swarm(client)")
    v1, v2, proxy = rolling_images(lab)
    missing = [t for t in (v1, v2, proxy) if not images.exists(client, t)]
    if missing:
        raise NotDone(f"{', '.join(missing)} not built",
                      "run the lab's first cell (it builds them)")
    name = stack_name(lab.owner)
    api = f"{name}_api"
    port = resources.free_port(8070, host="0.0.0.0")  # host mode: free on every interface
    env = {"WORKBOOK_OWNER": lab.owner, "API_IMAGE": v1, "NGINX_IMAGE": proxy, "NGINX_PORT": port}
    config, error = _config(compose.Project(name, lab.owner, [path], env, echo=False))
    if not r.add("stack.yaml is valid (docker compose config)", config, error,
                 "lesson 06 §5 and docker/swarm/stack.yaml show a complete stack file"):
        raise Stop()
    svc = (config.get("services") or {}).get("api")
    if not r.add("a service `api` running ${API_IMAGE}", svc and svc.get("image") == v1,
                 f"services: {', '.join(config.get('services') or {})}",
                 "keep the api service of the given file and its `image: ${API_IMAGE}`"):
        raise Stop()
    update, rollback = _spec_of(svc)
    where = _healthcheck(svc, client)
    r.add("api tasks have a health check", where, "the health check is disabled", note=where,
          hint="an update waits for a new task to be *healthy* only if it has a health check: "
          "keep the image's or write one (lesson 06 §8)")
    r.add("a failed update rolls itself back (update_config.failure_action: rollback)",
          update["failure_action"] == "rollback", f"failure_action: {update['failure_action']}",
          "the default, pause, leaves a broken release half-deployed; rollback restores the "
          "previous spec (lesson 06 §10)")
    if r.failed:
        raise Stop()
    try:
        engine.docker_cli("stack", "deploy", "--compose-file", str(path), "--resolve-image",
                          "never", name, env=env, echo=False)
        replicas = ((svc.get("deploy") or {}).get("replicas")) or 1
        swarm.wait_converged(client, api, replicas, ROLL_WAIT)
        if replicas != 1:  # with more, nginx's retry on another replica could hide a stop-first gap
            _quiet("service", "scale", "--detach", f"{api}=1")
            swarm.wait_converged(client, api, 1, ROLL_WAIT)
        swarm.wait_converged(client, f"{name}_nginx", 1, ROLL_WAIT)
        url = f"http://127.0.0.1:{port}/api/predict"
        deadline = time.monotonic() + 30  # nginx learns the api's address within a second or so
        while _versions_now(url, 1) != ["1"] and time.monotonic() < deadline:
            time.sleep(0.5)
        r.add("v1 deployed behind nginx", _versions_now(url, 5) == ["1"],
              "nginx does not answer with model_version 1",
              "keep the given nginx service and network (lesson 06 §5)",
              note=f"deployed with {replicas} api replica(s), checked with 1")
        orders = {"update_config": update["order"], "rollback_config": rollback["order"]}
        r.add("updates and rollbacks start the new task first (order: start-first)",
              set(orders.values()) == {"start-first"},
              ", ".join(f"{k}.order: {v}" for k, v in orders.items()),
              "with stop-first the old task stops before the new one answers: with one replica "
              "nothing answers in between; set order: start-first in both (lesson 06 §8)")
        update_hint = rollback_hint = ("a new task must be healthy before an old one stops "
                                       "(lesson 06 §8)")
        if update["order"] != "start-first":
            update_hint = ("update_config.order is stop-first: the old task stops before the "
                           "new one answers; start-first starts the new one first (lesson 06 §8)")
        if rollback["order"] != "start-first":
            rollback_hint = ("rollback_config.order is stop-first: a rollback replaces the task "
                             "too, with its own settings (lesson 06 §9)")
        update_step = ("service", "update", "--detach", "--no-resolve-image", "--image", v2, api)
        _roll(r, client, api, 1, url, lambda: _quiet(*update_step), "update to v2", "2",
              update_hint)
        _roll(r, client, api, 1, url, lambda: _quiet("service", "rollback", "--detach", api),
              "rollback to v1", "1", rollback_hint)
    finally:
        with contextlib.redirect_stdout(io.StringIO()):  # no `$ docker stack rm` in the report
            swarm.remove_stack(client, name)
