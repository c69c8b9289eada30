"""The tutorial's "Common Issues", broken on purpose: one Compose project per case in docker/broken/.

Each folder holds compose.yaml (the broken case) and compose.fixed.yaml (its fix), with the
Dockerfiles and files they build on the production image. start() and start_fixed() run them,
labelled for an owner; resources.cleanup(client, owner) removes everything they made.
"""

import difflib
import hashlib
import shutil
from dataclasses import dataclass

from docker.errors import NotFound

from . import ROOT, WorkbookError, compose, containers, images, service
from .diagnose import diagnose, read
from .engine import short_error
from .resources import free_port, slug

BROKEN = ROOT / "docker" / "broken"
APP_IMAGE = service.tag("production")
UP = ("up", "--detach", "--build", "--force-recreate")


@dataclass(frozen=True)
class Scenario:
    """One broken case: what you see, its Diagnosis cause key, and the fix."""

    title: str
    cause: str
    symptom: str
    fix: str
    service: str = "app"  # the Compose service whose container shows the problem


SCENARIOS = {
    "bad-command": Scenario(
        "Container exits immediately: a typo in CMD", "bad-command",
        "the container never runs: `exec: \"gunicron\": executable file not found in $PATH`, "
        "exit code 127, no logs",
        "spell the executable right; check with `docker run --rm --entrypoint sh IMAGE -c "
        "'command -v gunicorn'`"),
    "missing-module": Scenario(
        "Container exits immediately: a module the image lacks", "missing-module",
        "exits at once; its log ends with `ModuleNotFoundError: No module named 'features'`",
        "COPY every module the code imports (or install the missing package)"),
    "not-executable": Scenario(
        "Permission denied: a start script without its execute bit", "permission-denied",
        "the container never runs: `exec: \"/app/start.sh\": permission denied`, exit code 126",
        "`chmod +x` the script in the build (RUN chmod 755 as root, then back to USER 1000)"),
    "permission-denied": Scenario(
        "Permission denied: a non-root user writing to a root-owned volume",
        "permission-denied",
        "the job exits 1: `PermissionError: [Errno 13] Permission denied: "
        "'/data/predictions.jsonl'`",
        "create the directory in the image, owned by the user that writes it (a new named "
        "volume copies its ownership); not `--user root`"),
    "disk-full": Scenario(
        "Out of disk space (an 8 MB tmpfs)", "disk-full",
        "the job exits 1: `OSError: [Errno 28] No space left on device`",
        "give the job the space it needs (here a 64 MB tmpfs); on a real disk, "
        "`docker system df`, then prune what you own (by label)"),
    "port-in-use": Scenario(
        "Port already in use", "port-in-use",
        "the container is created but cannot start: `Bind for 127.0.0.1:PORT failed: port is "
        "already allocated`",
        "publish another host port (`-p 127.0.0.1:5001:5000`), or stop what holds it"),
    "oom": Scenario(
        "Killed by the OOM killer (48 MiB limit)", "oom",
        "exits with code 137 and `State.OOMKilled` true, no error in its log",
        "raise the memory limit above what `docker stats` shows (512 MiB), or use less "
        "(fewer workers)"),
    "unhealthy": Scenario(
        "A failing health check (the tutorial's `import requests`)", "unhealthy",
        "running and answering, yet `unhealthy`: every probe fails with "
        "`ModuleNotFoundError: No module named 'requests'`",
        "probe with what the image has: `urllib.request.urlopen`, which raises on 4xx/5xx"),
    "missing-env": Scenario(
        "A missing environment variable", "missing-env",
        "exits at once; its log ends with `KeyError: 'MODEL_DIR'`",
        "set it where the container is defined (`environment:`, `-e MODEL_DIR=/app/models`)"),
    "wrong-network": Scenario(
        "Network: the client on another network", "network",
        "the client exits 1: `<urlopen error [Errno -2] Name or service not known>`",
        "put the client on the API's user-defined network (`docker network connect`)",
        service="client"),
    "wrong-host": Scenario(
        "Network: the wrong host name", "network",
        "the client exits 1: `<urlopen error [Errno -2] Name or service not known>`",
        "call the service by its Compose service name (or add a network alias)",
        service="client"),
    "not-ready": Scenario(
        "Network: the service not ready yet", "network",
        "the client exits 1: `<urlopen error [Errno 111] Connection refused>`",
        "wait for the health check (`depends_on: condition: service_healthy`) or retry",
        service="client"),
    "model-version": Scenario(
        "A model trained with another scikit-learn", "model-version",
        "exits with code 3 and one JSON log line: `\"reason\": \"version_mismatch\"`",
        "retrain with train.py under the image's scikit-learn (or pin the version the model "
        "was trained with)"),
}


def folder(name):
    """docker/broken/NAME, or a WorkbookError naming the scenarios."""
    if name not in SCENARIOS:
        raise WorkbookError(f"No broken scenario {name!r}.", f"Pick one of {', '.join(SCENARIOS)}.")
    return BROKEN / name


def project(client, name, owner, fixed=False, echo=False):
    """The Compose project of scenario `name` (broken or fixed), labelled for `owner`."""
    if not images.exists(client, APP_IMAGE):
        service.build(client, "production")
    env = {"APP_IMAGE": APP_IMAGE, "WORKBOOK_OWNER": owner, "TAG": slug(owner),  # image tags
           "PORT": _port(), "ALT_PORT": _port()}
    file = folder(name) / ("compose.fixed.yaml" if fixed else "compose.yaml")
    return compose.Project(project_name(name, owner, fixed), owner, [file], env, echo=echo)


_HANDED = set()  # ports given out: two projects started at once never get the same one


def _port():
    """A free 127.0.0.1 port this process has not handed out before."""
    while (port := free_port()) in _HANDED:
        pass
    _HANDED.add(port)
    return port


def command_line(name, owner, fixed=False):
    """The `docker compose ... up` command start() (or start_fixed()) runs."""
    file = BROKEN.relative_to(ROOT) / name / ("compose.fixed.yaml" if fixed else "compose.yaml")
    return f"docker compose -p {project_name(name, owner, fixed)} -f {file} {' '.join(UP)}"


def project_name(name, owner, fixed=False):
    """wb-OWNER-NAME[-fixed]: Compose project names are lower case."""
    return f"wb-{slug(owner)}-{name}" + ("-fixed" if fixed else "")


def prepare(name):
    """Write the files a scenario builds that are not in git (model-version's models/)."""
    if name != "model-version":
        return
    import skops.io as sio  # the host's pinned scikit-learn and skops (make install)

    models = BROKEN / name / "models"
    models.mkdir(exist_ok=True)
    good = service.ensure_model()
    for src in (good, good.with_name(good.name + ".sha256")):
        shutil.copyfile(src, models / src.name)
    bundle = sio.load(good, trusted=[])
    bundle["metadata"]["trained_with"]["scikit-learn"] = "1.5.0"
    old = models / "model-sklearn-1.5.0.skops"
    sio.dump(bundle, old)
    digest = hashlib.sha256(old.read_bytes()).hexdigest()
    old.with_name(old.name + ".sha256").write_text(f"{digest}  {old.name}\n")


def _run(client, name, owner, fixed, echo, timeout):
    scenario = SCENARIOS.get(name)
    prepare(name) if scenario else folder(name)
    proj = project(client, name, owner, fixed, echo)
    done = proj(*UP, check=False)
    found = proj.containers(scenario.service, client)
    if not found:  # a build failed, or the file is wrong: nothing was even created
        raise WorkbookError(f"docker compose up made no {scenario.service!r} container for "
                            f"{name}: {short_error(done.stderr)}",
                            "Fix what the message names in docker/broken/" + name)
    return settle(found[0], timeout)


def start(client, name, owner, echo=False, timeout=60):
    """Build (cached) and run the broken case `name`; return its container once settled."""
    return _run(client, name, owner, False, echo, timeout)


def start_fixed(client, name, owner, echo=False, timeout=60):
    """Build and run the fixed version of case `name`; return its container once settled."""
    return _run(client, name, owner, True, echo, timeout)


SWITCH = ("dockerfile:", "image: workbook/broken-")  # compose lines that only pick the fixed build


def changes(name):
    """What the fix changes, comments aside: {"Dockerfile → Dockerfile.fixed": ["- ...", "+ ..."]}."""
    found = {}
    for old, new in [("Dockerfile", "Dockerfile.fixed"), ("compose.yaml", "compose.fixed.yaml")]:
        a, b = folder(name) / old, folder(name) / new
        if not (a.exists() and b.exists()):
            continue
        code = [[ln for ln in p.read_text().splitlines() if not ln.lstrip().startswith("#")]
                for p in (a, b)]
        lines = [ln for ln in difflib.unified_diff(*code, lineterm="", n=0)
                 if ln[:1] in "+-" and ln[:3] not in ("+++", "---")
                 and not ln[1:].strip().startswith(SWITCH)]
        if lines:
            found[f"{old} → {new}"] = lines
    return found


def down(client, name, owner):
    """Like `docker compose down --volumes` on both projects of `name`; images stay for cleanup."""
    for fixed in (False, True):
        label = {"label": f"com.docker.compose.project={project_name(name, owner, fixed)}"}
        for container in client.containers.list(all=True, filters=label):
            container.remove(force=True, v=True)
        for item in client.networks.list(filters=label) + client.volumes.list(filters=label):
            try:
                item.remove()
            except NotFound:
                pass


def settle(container, timeout=60):
    """Wait until a container shows how it ends: stopped, never started, healthy or unhealthy."""
    containers.wait(container, "settled", timeout, every=0.2, lines=0)
    return container


def works(container, timeout=60):
    """True when a (fixed) container does its job: a job exited 0; a service is healthy and
    answers /health and /predict on its published port."""
    settle(container, timeout)
    st = read(container, lines=0)
    if not diagnose(container).ok:
        return False
    if st.status == "exited":
        return st.exit_code == 0
    if st.status != "running" or st.health not in (None, "healthy"):
        return False
    if not (container.attrs["NetworkSettings"]["Ports"] or {}).get(service.PORT):
        return True  # nothing published to call: running (and healthy) is all we can see
    try:
        labels, _ = service.predictions(container)
        return service.call(container, "/health")[0] == 200 and labels == [
            label for _, label in service.SAMPLES]
    except (OSError, WorkbookError, LookupError):
        return False
