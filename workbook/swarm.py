"""Docker Swarm on the local engine: init, deploy a stack, watch its tasks, load it, remove it."""

import os
import secrets as _secrets
import time
from pathlib import Path

from docker.errors import APIError, NotFound

from . import ROOT, WorkbookError, bases, engine, images, service
from .compose import STACK as COMPOSE_STACK
from .resources import labels

STACK_FILE = ROOT / "docker" / "swarm" / "stack.yaml"
NAMESPACE = "com.docker.stack.namespace"  # the label `docker stack deploy` puts on everything
DONE = ("completed", "rollback_completed", "paused", "rollback_paused")


HINT = "Look at `docker service ls` and `docker service ps`."  # when the CLI does not finish


def state(client):
    """This engine's swarm state: 'inactive', 'active', 'pending', 'error' or 'locked'."""
    return client.info().get("Swarm", {}).get("LocalNodeState", "inactive")


def ensure_swarm(client):
    """Make this engine a one-node swarm manager; return True when this call started the swarm."""
    info = client.info().get("Swarm", {})
    if info.get("LocalNodeState") == "active":
        if not info.get("ControlAvailable"):
            raise WorkbookError("This engine is a swarm worker, not a manager.",
                                "Run the lesson on a manager, or `docker swarm leave` first.")
        print("swarm already active: this engine is a manager (left as it is at the end)")
        return False
    if info.get("LocalNodeState") not in ("inactive", None):
        raise WorkbookError(f"The swarm is {info.get('LocalNodeState')}: {info.get('Error')}",
                            "`docker swarm leave --force`, then run the cell again.")
    print("$ docker swarm init --advertise-addr 127.0.0.1 --listen-addr 127.0.0.1:2377")
    try:
        client.swarm.init(advertise_addr="127.0.0.1", listen_addr="127.0.0.1:2377")
    except APIError as exc:
        raise WorkbookError(f"docker swarm init failed: {exc.explanation}",
                            "Is port 2377 in use? `docker info` shows the swarm state.") from None
    return True


def leave_if_started(client, started, owners=()):
    """Leave the swarm only if `started` here and no service but `owners`' runs on it."""
    if not started:
        return "swarm left active (it was active before)"
    if state(client) != "active":
        return "not in a swarm any more"
    others = [s.name for s in client.services.list()
              if s.attrs["Spec"].get("Labels", {}).get("workbook") not in owners]
    if others:
        return f"swarm left active: services of others run on it ({', '.join(sorted(others))})"
    if cut_off := on_local_networks(client):
        return (f"swarm left active: leaving would cut off the names of {len(cut_off)} running container(s) on "
                f"user-defined networks ({', '.join(cut_off[:3])}{', ...' if len(cut_off) > 3 else ''}; "
                "moby/moby#45144): stop them, then `docker swarm leave --force`")
    print("$ docker swarm leave --force")
    client.swarm.leave(force=True)
    return "left the swarm (it was started here)"


def on_local_networks(client):
    """Running containers on user-defined local networks, whose names a `docker swarm leave` wipes."""
    # Engine 20.10 (moby/moby#45144, still open): leaving clears the embedded DNS records of every
    # local network too, so a Compose stack still running stops resolving its service names.
    names = set()
    for net in client.networks.list(filters={"driver": "bridge"}, greedy=True):
        if net.name not in ("bridge", "docker_gwbridge"):
            names |= {c["Name"] for c in (net.attrs.get("Containers") or {}).values()}
    return sorted(names)


def ipvs_available():
    """True/False: does this kernel have IPVS (swarm's VIPs, routing mesh)? None: engine not local."""
    host = os.environ.get("DOCKER_HOST", "")
    if host and not host.startswith("unix://"):
        return None  # the engine's kernel is not this machine's
    if Path("/proc/net/ip_vs").exists() or Path("/sys/module/ip_vs").exists():
        return True
    release = os.uname().release
    dep = Path("/lib/modules") / release / "modules.dep"
    try:  # a loadable module: dockerd loads it when a VIP is first needed
        return "/ip_vs.ko" in dep.read_text()
    except OSError:
        return False


def build_nginx(client, owner, tag):
    """The reverse proxy of lesson 05 (docker/compose/nginx) on the resolved nginx base."""
    args = {"NGINX_IMAGE": bases.image_vars(client)["NGINX_IMAGE"]}
    return images.build(client, COMPOSE_STACK / "nginx", tag, owner, buildargs=args, log="none")


build_v2 = service.build_v2  # lesson 06 deploys it as the stack's next release


def create_secret(client, name, owner):
    """A Docker secret holding a random token; return (secret, token). Replaces our old one."""
    for old in client.secrets.list(filters={"name": name}):
        if old.name == name:
            if old.attrs["Spec"].get("Labels", {}).get("workbook") != owner:
                raise WorkbookError(f"A secret named {name} exists and is not {owner}'s.",
                                    f"Remove it (`docker secret rm {name}`) or pick another name.")
            try:
                old.remove()
            except APIError:
                raise WorkbookError(f"Secret {name} is still used by a service.",
                                    "Remove the stack first (`docker stack rm NAME`).") from None
    token = _secrets.token_urlsafe(24)
    print(f"$ openssl rand -base64 24 | docker secret create --label workbook={owner} {name} -")
    created = client.secrets.create(name=name, data=token.encode(), labels=labels(owner))
    return client.secrets.get(created.id), token


def deploy(stack_file, name, env):
    """docker stack deploy --compose-file FILE --resolve-image never NAME, with `env` set."""
    return engine.docker_cli("stack", "deploy", "--compose-file", os.path.relpath(stack_file, ROOT),
                             "--resolve-image", "never", name, env=env, hint=HINT).stdout


def get_service(client, name):
    """The service called `name`, or a short error."""
    try:
        return client.services.get(name)
    except NotFound:
        raise WorkbookError(f"No service {name}.", "Deploy the stack first (`docker stack "
                                                   "deploy`); `docker service ls` lists them.") from None


def service_tasks(client, name, desired="running"):
    """The service's tasks (desired state `desired`; None: all) as dicts, by slot then age."""
    svc = get_service(client, name)
    filters = {"desired-state": desired} if desired else {}
    rows = []
    for t in svc.tasks(filters=filters):
        status = t["Status"]
        image = t["Spec"]["ContainerSpec"]["Image"].split("@")[0]
        rows.append({"slot": t.get("Slot"), "state": status["State"],
                     "desired": t["DesiredState"], "image": image, "error": status.get("Err", ""),
                     "container": (status.get("ContainerStatus") or {}).get("ContainerID"),
                     "created": t["CreatedAt"]})
    return sorted(rows, key=lambda r: (r["slot"] or 0, r["created"]))


def logs(name, tail=5):
    """The last lines of `docker service logs NAME` (without task ids), as a list."""
    done = engine.docker_cli("service", "logs", "--no-task-ids", "--tail", str(tail), name,
                             echo=False, timeout=30, hint=HINT)
    return done.stdout.splitlines()


def _diagnose(client, name):
    """Failed tasks' errors and the service's last log lines, for an error message."""
    bad = [t for t in service_tasks(client, name, desired=None)
           if t["state"] in ("failed", "rejected") or t["error"]]
    lines = [f"  task {t['slot']}: {t['state']}: {t['error']}" for t in bad[-4:]]
    try:
        lines += [f"  log: {ln[:300]}" for ln in logs(name, tail=6)]
    except WorkbookError:
        pass
    return "\n".join(lines) or "  (no task errors, no log lines)"


def wait_converged(client, name, replicas, timeout=120):
    """Wait until `replicas` tasks run (healthy) from the service's image and no others; return s."""
    start = time.monotonic()
    while True:
        svc = get_service(client, name)
        image = svc.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"].split("@")[0]
        tasks = service_tasks(client, name)
        running = [t for t in tasks if t["state"] == "running" and t["image"] == image]
        others = [t for t in service_tasks(client, name, desired="shutdown")
                  if t["state"] in ("running", "starting")]
        if len(running) == replicas == len(tasks) and not others:
            return time.monotonic() - start
        missing = [t for t in service_tasks(client, name, desired=None)
                   if t["state"] == "rejected" and "No such image" in t["error"]]
        if missing:
            raise WorkbookError(f"{name}: {missing[-1]['error']}",
                                "A swarm never builds: build the image first (or fix its name).")
        if time.monotonic() - start > timeout:
            raise WorkbookError(f"{name} did not reach {replicas} healthy tasks in {timeout} s "
                                f"({len(running)} running):\n{_diagnose(client, name)}",
                                "Read the task errors and log lines above.")
        time.sleep(0.25)


def wait_update(client, name, timeout=180):
    """Wait until the service's update (or rollback) ends; return (state, message, seconds)."""
    start = time.monotonic()
    while True:
        status = get_service(client, name).attrs.get("UpdateStatus") or {}
        if status.get("State") in DONE:
            return status["State"], status.get("Message", ""), time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise WorkbookError(f"The update of {name} did not end in {timeout} s "
                                f"(state {status.get('State')}):\n{_diagnose(client, name)}",
                                f"`docker service ps {name}` shows each task's state.")
        time.sleep(0.25)


def update(name, *args):
    """docker service update --detach --no-resolve-image ARGS NAME (returns at once)."""
    return engine.docker_cli("service", "update", "--detach", "--no-resolve-image", *args, name,
                             hint=HINT).stdout


def rollback(name):
    """docker service rollback --detach NAME: back to the previous spec."""
    return engine.docker_cli("service", "rollback", "--detach", name, hint=HINT).stdout


def kill_a_task(client, name, replicas, slot=1, timeout=120):
    """SIGKILL the container of one task; return seconds until `replicas` healthy tasks run again."""
    task = next(t for t in service_tasks(client, name) if t["slot"] == slot)
    container = client.containers.get(task["container"])
    start = time.monotonic()
    container.kill()
    while any(t["container"] == task["container"] for t in service_tasks(client, name)):
        if time.monotonic() - start > timeout:  # the dead task must leave the running set
            raise WorkbookError(f"{name}: the killed task was not replaced in {timeout} s.",
                                f"`docker service ps {name}` shows why.")
        time.sleep(0.1)
    wait_converged(client, name, replicas, timeout)
    return time.monotonic() - start


def remove_stack(client, name, timeout=90):
    """docker stack rm NAME, then wait until its services, containers and networks are gone."""
    f = {"label": f"{NAMESPACE}={name}"}
    if state(client) != "active":
        return 0.0  # no swarm, no stack
    if client.services.list(filters=f) or client.networks.list(filters=f):
        engine.docker_cli("stack", "rm", name, hint=HINT)
    start = time.monotonic()
    while (client.services.list(filters=f) or client.containers.list(all=True, filters=f, sparse=True)
           or client.networks.list(filters=f)):
        if not client.services.list(filters=f) and not client.containers.list(all=True, filters=f, sparse=True):
            for net in client.networks.list(filters=f):  # `stack rm` gave up while tasks stopped
                try:
                    net.remove()
                except (NotFound, APIError):
                    pass
        if time.monotonic() - start > timeout:
            raise WorkbookError(f"Stack {name} was not gone after {timeout} s.",
                                "Look at `docker service ls` and `docker network ls`.")
        time.sleep(0.5)
    return time.monotonic() - start
