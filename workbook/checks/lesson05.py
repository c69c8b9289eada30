"""Lesson 05's exercises: compose files the learner fixes and brings up with `docker compose`."""

import time

from .. import bases, compose, engine, service
from .learner_image import healthy, inside, labelled, running
from .report import NotDone, Stop, check

# Each exercise is a project of its own, named in its file: `name: ${WORKBOOK_OWNER}-KIND`.
LABELS = "keep the x-labels block and every `labels: *labels` of the given file"
TODO = "fix the file, write it (run its cell), then run your `!docker compose ... up` cell"


def exercise_files(folder, owner, client=None):
    """One folder per exercise under `folder`, each with the .env its compose file reads."""
    bases.standin_names(client or engine.client(), ("python-slim", "redis"))  # the files' images
    for kind in ("scale", "restart", "keep"):
        (folder / kind).mkdir(parents=True, exist_ok=True)
        # Compose reads .env beside the file: the labels and the project name use it.
        (folder / kind / ".env").write_text(f"WORKBOOK_OWNER={owner}\n")
    return folder


def _containers(client, project, name):
    """The containers of one service of a Compose project, by replica number."""
    found = client.containers.list(all=True, filters={"label": [
        f"com.docker.compose.project={project}", f"com.docker.compose.service={name}"]})
    if not found:
        raise NotDone(f"no `{name}` container in the project {project}", TODO)
    return sorted(found, key=lambda c: int(c.labels.get("com.docker.compose.container-number", 0)))


@check("Exercise 05.1 · two replicas, no port clash")
def two_replicas(r, client, owner):
    """Two running `api` replicas, each on its own port of 127.0.0.1, each answering /health."""
    found = _containers(client, f"{owner}-scale", "api")
    up = [c for c in found if c.status == "running"]
    errors = {c.attrs["State"].get("Error") for c in found if c.status != "running"} - {""}
    r.add("two api containers are running", len(up) == 2,
          f"{len(up)} of {len(found)} running" + (f"; Docker said: {errors.pop()}" if errors else ""),
          "a fixed host port can be bound once: leave the host port out (\"127.0.0.1::5000\"), "
          "then up --scale api=2 (lesson 05 §5)")
    if not up:
        raise Stop()
    labelled(r, up[0], owner, "lesson 05", how=LABELS)
    bindings = [(c.attrs["NetworkSettings"]["Ports"] or {}).get(service.PORT) or [] for c in up]
    r.add("each publishes port 5000 on 127.0.0.1 only",
          all(b and all(x["HostIp"] == "127.0.0.1" for x in b) for b in bindings),
          f"published on {sorted({x['HostIp'] or '0.0.0.0' for b in bindings for x in b}) or 'nothing'}",
          "\"127.0.0.1::5000\": this machine only, on a port Docker picks (lesson 05 §2)")
    ports = [int(x["HostPort"]) for b in bindings for x in b if x["HostIp"] == "127.0.0.1"]
    answered = [p for p in ports if healthy(p)]
    r.add("each answers GET /health on its port", len(answered) == len(up) == len(ports) == 2,
          f"answered on {len(answered)} of {len(up)}: ports {ports}",
          "publish the container's port 5000, where gunicorn listens (lesson 05 §2)")


RESTART_HINT = ("restart: on-failure (or unless-stopped) under the service: Docker then starts the "
                "container again each time its process exits on its own (lesson 05 §7)")


@check("Exercise 05.2 · a service that comes back after a crash")
def comes_back(r, client, owner, timeout=15):
    """The `flaky` service (it exits with code 3 after a second) was restarted by Docker, twice."""
    c = _containers(client, f"{owner}-restart", "flaky")[0]
    labelled(r, c, owner, "lesson 05", how=LABELS)
    deadline = time.monotonic() + timeout
    while True:
        c.reload()
        count, policy = c.attrs["RestartCount"], c.attrs["HostConfig"]["RestartPolicy"]
        retries = policy.get("MaximumRetryCount") or 0
        gave_up = c.status == "exited" and (policy["Name"] in ("", "no") or 0 < retries <= count)
        if count >= 2 or gave_up or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    r.add("Docker started it again after each crash", count >= 2,
          f"restart policy {policy['Name'] or 'no'}"
          + (f" (at most {retries})" if retries else "") + f"; restarted {count} times, now {c.status}",
          RESTART_HINT)


@check("Exercise 05.3 · data that outlives `down`")
def outlives_down(r, client, owner, folder):
    """Redis's /data on a named, labelled volume; a key set before `down` is read after `up`."""
    project = compose.Project(f"{owner}-keep", owner, [folder / "compose.yaml"], echo=False)
    c = _containers(client, project.name, "cache")[0]
    running(r, c, "docker compose -f FILE up -d starts it in the background (lesson 05 §3)")
    labelled(r, c, owner, "lesson 05", how=LABELS)
    mount = next((m for m in c.attrs["Mounts"] if m["Destination"] == "/data"), None)
    named = mount and mount["Type"] == "volume" and mount["Name"] in _declared(client, project.name)
    r.add("/data is on a named volume", named,
          "nothing is mounted on /data" if not mount else
          f"/data is a {mount['Type']} mount" + (" of an anonymous volume" if mount["Type"] == "volume" else ""),
          "volumes: [NAME:/data] under the service, and NAME: under a top-level volumes: "
          "(lesson 05 §8)")
    if not named:
        raise Stop()
    labelled(r, client.volumes.get(mount["Name"]), owner, "lesson 05", subject="the volume",
             how="labels: *labels under the volume's name in the top-level volumes:")
    key = f"exercise-{time.time_ns()}"
    inside(c, f"redis-cli set wb-exercise {key}")
    project("down")  # no --volumes: what down keeps is the point
    project("up", "--detach")
    got = _redis_get(_containers(client, project.name, "cache")[0])
    r.add("the key set before `down` is there after `up`", got == key, f"redis-cli get says {got!r}",
          "down removes the containers, and with them what an anonymous volume was to them; a "
          "named one stays (lesson 05 §8)", note="the check ran docker compose down, then up --detach")


def _declared(client, project):
    """The volumes `project`'s file declares (Compose labels them; an anonymous one it does not)."""
    return {v.name for v in client.volumes.list(filters={"label": [
        f"com.docker.compose.project={project}", "com.docker.compose.volume"]})}


def _redis_get(c, timeout=15):
    """`redis-cli get wb-exercise` in the container, once Redis answers (it loads its data first)."""
    deadline = time.monotonic() + timeout
    while True:
        code, out = inside(c, "redis-cli get wb-exercise")
        if (code == 0 and "LOADING" not in out and "refused" not in out) or time.monotonic() > deadline:
            return out
        time.sleep(0.3)

