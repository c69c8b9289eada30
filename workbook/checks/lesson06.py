"""Lesson 06's exercises: a swarm service the learner creates, scales, updates and rolls back."""

import time

from docker.errors import APIError, NotFound

from .learner_image import labelled
from .report import NotDone, Stop, check

SCALE_HINT = "docker service scale NAME=3 after docker service create (lesson 06 §7)"


def _service(client, owner, todo="run your `!docker service create` cell"):
    """The learner's service `{owner}-web` (NotDone while there is none, or no swarm)."""
    try:
        return client.services.get(f"{owner}-web")
    except NotFound:
        raise NotDone(f"no service called {owner}-web", todo) from None
    except APIError:  # not a swarm manager: lesson 06 §2 starts the swarm
        raise NotDone("this engine is not a swarm manager", "run lesson 06 §2's cell first") from None


def _converged(service, timeout=45):
    """The service's running tasks once as many as it asks for run its current spec (or at `timeout`)."""
    deadline = time.monotonic() + timeout
    while True:
        service.reload()
        spec = service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]
        tasks = [t for t in service.tasks(filters={"desired-state": "running"})
                 if t["Status"]["State"] == "running"]
        current = [t for t in tasks if t["Spec"]["ContainerSpec"].get("Env") == spec.get("Env")]
        state = (service.attrs.get("UpdateStatus") or {}).get("State", "")
        settled = state in ("", "completed", "paused", "rollback_completed", "rollback_paused")
        want = _replicas(service.attrs["Spec"])
        if len(current) == want == len(tasks) and settled or time.monotonic() > deadline:
            return tasks


def _replicas(spec):
    return ((spec or {}).get("Mode", {}).get("Replicated") or {}).get("Replicas")


def _env(service):
    return service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"].get("Env") or []


@check("Exercise 06.1 · a service of your own, scaled")
def scaled(r, client, owner):
    """`{owner}-web`: labelled, 3 running tasks, and scaled to 3 after it was created."""
    svc = _service(client, owner)
    labelled(r, svc, owner, "lesson 06", subject="the service",
             how="add {LABELS} to docker service create")
    tasks = _converged(svc)
    r.add("3 tasks are running", len(tasks) == 3, f"{len(tasks)} running",
          SCALE_HINT + "; the swarm starts the missing tasks within seconds")
    before = _replicas(svc.attrs.get("PreviousSpec"))
    r.add("it was scaled after it was created", before is not None and before != 3,
          "it was created with 3 replicas and never changed" if before == 3 or before is None
          else "", SCALE_HINT)


@check("Exercise 06.2 · an update that starts the new task first")
def start_first(r, client, owner):
    """`{owner}-web` updated start-first to GREETING=hello, its 3 tasks replaced."""
    svc = _service(client, owner, "do exercise 06.1 first")
    tasks = _converged(svc)
    order = (svc.attrs["Spec"].get("UpdateConfig") or {}).get("Order", "stop-first")
    if order == "stop-first" and not _env(svc) and not svc.attrs.get("UpdateStatus"):
        raise NotDone(f"{svc.name} is as exercise 06.1 left it", "run your docker service update line")
    r.add("its update order is start-first", order == "start-first", f"it is {order}",
          "--update-order start-first: each new task starts before its old one stops (lesson 06 §8)")
    r.add("its tasks run with GREETING=hello", "GREETING=hello" in _env(svc) and len(tasks) == 3,
          f"its environment is {_env(svc) or 'empty'}",
          "--env-add GREETING=hello changes the task template: the swarm replaces every task "
          "(lesson 06 §8)")
    state = (svc.attrs.get("UpdateStatus") or {}).get("State", "never updated")
    r.add("the update completed", state == "completed", f"the update's state is {state}",
          "docker service update (without --detach) waits until every task is replaced; "
          "docker service ps NAME shows the tasks (lesson 06 §7)")


@check("Exercise 06.3 · roll back with one command")
def rolled_back(r, client, owner):
    """`{owner}-web` rolled back by the swarm (rollback_completed): GREETING gone again."""
    svc = _service(client, owner, "do exercises 06.1 and 06.2 first")
    _converged(svc)
    state = (svc.attrs.get("UpdateStatus") or {}).get("State", "never updated")
    if state == "completed" and "GREETING=hello" in _env(svc):
        raise NotDone("the service still runs exercise 06.2's update", "run your rollback cell")
    r.add("the swarm rolled it back", state == "rollback_completed", f"the last update's state is {state}",
          "docker service rollback NAME returns to the previous definition, kept by the swarm "
          "(lesson 06 §9)")
    if state != "rollback_completed":
        raise Stop()
    r.add("GREETING is gone from its tasks", not any(e.startswith("GREETING=") for e in _env(svc)),
          f"its environment is {_env(svc)}", "the previous definition is 06.1's (lesson 06 §9)")
