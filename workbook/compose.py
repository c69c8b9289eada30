"""Drive Docker Compose v2 (`docker compose`) on the multi-service stack in docker/compose."""

import json
import os
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from . import ROOT, WorkbookError, bases, engine, service, wheelhouse
from .containers import wait_all
from .diagnose import read as read_state
from .resources import free_port, slug

STACK = ROOT / "docker" / "compose"
FILE = STACK / "compose.yaml"
DEV = STACK / "compose.dev.yaml"
TUTORIAL = STACK / "tutorial" / "compose.yaml"
NGINX_PORT = 8080  # preferred; another free one is used when it is taken


def pick_port(preferred):
    """(port, note): `preferred` when free on 127.0.0.1, else one the OS picks, and why."""
    port = free_port(preferred)
    if port == preferred:
        return preferred, f"127.0.0.1:{preferred} is free"
    return port, (f"127.0.0.1:{preferred} is taken (bind: address in use), "
                  f"using 127.0.0.1:{port} instead")


@dataclass
class Project:
    """One Compose project: its name, files and variables, and what it runs."""

    name: str
    owner: str
    files: list = field(default_factory=lambda: [FILE])
    env: dict = field(default_factory=dict)
    echo: bool = True
    port_note: str = ""  # how the nginx port was chosen

    def options(self):
        """`-p NAME -f FILE ...`: what every `docker compose` command of the project starts with."""
        return ["-p", self.name, *[a for f in self.files for a in ("-f", os.path.relpath(f, ROOT))]]

    def command(self, *args):
        """The full `docker compose` command line for `args`."""
        return [*engine.compose_cmd(), *self.options(), *args]

    def __call__(self, *args, check=True, timeout=600, echo=None):
        """Run `docker compose ... ARGS` from the repository root; return its stdout
        (check=False: the CompletedProcess, whatever its exit code)."""
        # Classic builder: the same layer cache as the workbook's docker-py builds, so the
        # images lessons 03-04 built are reused instead of built a second time by BuildKit.
        env = {"DOCKER_BUILDKIT": "0", "COMPOSE_BAKE": "false", **self.env}
        done = engine.docker_cli(*self.options(), *args, compose=True, env=env, check=check,
                                 echo=self.echo if echo is None else echo, timeout=timeout,
                                 name=f"docker compose {args[0]}",
                                 hint="Look at `docker compose ps` and `logs`.")
        return done if not check else done.stdout

    def follow(self, *args, seconds=3.0):
        """`docker compose logs --follow ARGS` for a few seconds; return the lines it printed."""
        cmd = self.command("logs", "--follow", *args)
        print("$", shlex.join(["docker", "compose"] + cmd[len(engine.compose_cmd()):]),
              f"  (stopped after {seconds:g} s, as Ctrl-C would)", flush=True)
        with subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True) as proc:
            try:
                out, _ = proc.communicate(timeout=seconds)
            except subprocess.TimeoutExpired:
                proc.terminate()
                out, _ = proc.communicate()
        return out.splitlines()

    def containers(self, service_name=None, client=None):
        """The project's containers (one service's when named), by service then number."""
        client = client or engine.client()
        labels = [f"com.docker.compose.project={self.name}"]
        if service_name:
            labels.append(f"com.docker.compose.service={service_name}")
        found = client.containers.list(all=True, filters={"label": labels})
        return sorted(found, key=lambda c: (c.labels.get("com.docker.compose.service", ""),
                                            int(c.labels.get("com.docker.compose.container-number", 0))))

    def ps(self):
        """`docker compose ps` as a list of dicts (service, state, health, ports)."""
        out = self("ps", "--all", "--format", "json", echo=False).strip()
        rows = json.loads(out) if out.startswith("[") else [json.loads(ln) for ln in out.splitlines() if ln]
        return sorted(rows, key=lambda r: (r["Service"], r["Name"]))

    def url(self, path="", port=None):
        """http://127.0.0.1:PORT/path through the project's published nginx port."""
        return f"http://127.0.0.1:{port or self.env['NGINX_PORT']}{path}"

    def wait_healthy(self, timeout=120, client=None):
        """Wait until every container is healthy (or running, without a health check).

        Return {container name: seconds}; on a failure or timeout, raise with each bad
        container's state, last health-check output and last log lines.
        """
        found = self.containers(client=client)
        if not found:
            raise WorkbookError(f"{self.name} has no containers to wait for.",
                                "`up` the project first.")
        waited = list(zip(found, wait_all(found, "ready", timeout, every=0.2, lines=0)))
        for c, w in waited:
            if w.why not in ("reached", "pending", "timeout"):  # stopped, or unhealthy
                raise WorkbookError(f"{c.name} is {w.health or w.state}:\n{diagnose(c)}",
                                    "Fix what the health check or the log names, then "
                                    "`up` again.")
        late = [c for c, w in waited if not w.reached]
        if late:
            what = "\n".join(f"{c.name}:\n{diagnose(c)}" for c in late)
            raise WorkbookError(f"Not healthy within {timeout} s:\n{what}",
                                "Read the health-check output and logs above.")
        return {c.name: round(w.elapsed, 1) for c, w in waited}

    def down(self):
        """`docker compose down --volumes --remove-orphans`: containers, networks, volumes."""
        self("down", "--volumes", "--remove-orphans", "--timeout", "5")


def diagnose(container, lines=6):
    """State, exit code, the last health-check output and the last log lines of a container.

    The raw facts, for wait_healthy's errors; workbook.diagnose.diagnose() interprets them.
    """
    st = read_state(container, lines)
    out = [(f"  state {st.status}, exit code {st.exit_code}, "
            f"OOMKilled {st.oom_killed}, restarts {st.restarts}")]
    if st.probe:
        out.append(f"  last health check: exit {st.probe['ExitCode']}: "
                   + (st.probe["Output"].strip().splitlines() or [""])[-1][:300])
    out += [f"  log: {ln[:300]}" for ln in st.logs]
    return "\n".join(out)


def published(name, client=None):
    """The 127.0.0.1 port the project's nginx already publishes, or None."""
    client = client or engine.client()
    for c in client.containers.list(filters={"label": [f"com.docker.compose.project={name}",
                                                       "com.docker.compose.service=nginx"]}):
        for b in c.attrs["NetworkSettings"]["Ports"].get("80/tcp") or []:
            if b["HostIp"] == "127.0.0.1":
                return int(b["HostPort"])
    return None


def variables(owner, name, client=None, port=NGINX_PORT, **extra):
    """The stack's variables: resolved base images, the label owner, a free nginx port."""
    running = published(name, client)
    chosen, note = ((running, f"127.0.0.1:{running} is already this project's nginx")
                    if running else pick_port(port))
    env = {**bases.image_vars(client), "WORKBOOK_OWNER": owner, "NGINX_PORT": chosen,
           "TAG": owner.split("_")[0], **extra}
    return env, note


def prepare():
    """Everything the stack's build contexts need: the model and wheels (docker/app, docker/ui)."""
    service.prepare(service.APP)
    wheelhouse.stage(service.UI, service.UI / "requirements.txt")


def project(owner, files=(FILE,), client=None, port=NGINX_PORT, **extra):
    """A Project named after `owner` (compose names must be lower case) with its variables."""
    name = "workbook-" + slug(owner)
    env, note = variables(owner, name, client, port, **extra)
    return Project(name, owner, list(map(Path, files)), env, port_note=note)
