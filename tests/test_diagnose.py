"""diagnose() on real containers: every broken scenario names its cause, every fix is ok."""

import socket
import time

import pytest
from docker.errors import APIError

from workbook import WorkbookError, bases, broken, resources, service
from workbook.diagnose import CAUSES, Diagnosis, diagnose, meaning, watch_events

OWNER = "test_diagnose"


@pytest.fixture(scope="module", autouse=True)
def cleanup(client):
    """Whatever a test leaves of OWNER goes at the end of the module."""
    yield
    resources.cleanup(client, OWNER)


@pytest.fixture(scope="module")
def slim(client):
    return bases.resolve("python-slim", client).ref


def run(client, image, command, **kw):
    """A labelled container running `command`, settled (exited, or running with no check)."""
    container = client.containers.run(image, command, detach=True, labels=resources.labels(OWNER),
                                      name=resources.unique_name(OWNER, "d"), **kw)
    container.wait(timeout=60)
    return container


# --- every scenario under docker/broken ------------------------------------------------------
# Broken -> its cause, fixed -> ok and working, for all 13: lesson 09 runs each under nbval and
# its committed outputs show the cause, the "Try:" line and `works: True` (not repeated here).

def test_every_folder_is_a_scenario_and_every_cause_is_known():
    folders = {p.name for p in broken.BROKEN.iterdir() if (p / "compose.yaml").exists()}
    assert folders == set(broken.SCENARIOS)
    for name, scenario in broken.SCENARIOS.items():
        assert scenario.cause in CAUSES and scenario.cause != "ok", name
        assert (broken.BROKEN / name / "compose.fixed.yaml").exists(), name


def test_watch_events_sees_the_oom_kill_live(client):
    project = broken.project_name("oom", OWNER)
    try:
        with watch_events(client, label=f"com.docker.compose.project={project}",
                          type="container") as seen:
            sick = broken.start(client, "oom", OWNER)
        actions = [e["Action"] for e in seen if e["id"] == sick.id]
        assert actions.index("start") < actions.index("oom") < actions.index("die")
    finally:
        broken.down(client, "oom", OWNER)


def test_fix_lines_are_the_real_difference():
    assert broken.changes("oom") == {"compose.yaml → compose.fixed.yaml": [
        "-    mem_limit: 48m",
        "-    memswap_limit: 48m  # no swap either: otherwise the kernel swaps instead of killing",
        "+    mem_limit: 512m",
        "+    memswap_limit: 512m  # no swap either: otherwise the kernel swaps instead of killing"]}
    assert list(broken.changes("bad-command")) == ["Dockerfile → Dockerfile.fixed"]


def test_an_unknown_scenario_is_a_learner_error(client):
    with pytest.raises(WorkbookError, match="bad-command"):
        broken.start(client, "no-such-case", OWNER)


# --- healthy containers: diagnose must report nothing ---------------------------------------

def test_a_healthy_production_container_is_ok(client, production):
    api = service.run(client, production, OWNER, env={"WORKERS": "1"})
    service.wait_healthy(api)
    found = diagnose(api)
    assert found == Diagnosis(True, "ok", f"{api.name} is running (healthy): nothing wrong found.")
    api.remove(force=True)


def test_a_job_that_finished_and_a_plain_running_container_are_ok(client, slim):
    done = run(client, slim, ["python", "-c", "print('scored 10 rows')"])
    assert diagnose(done).cause == "ok" and "exit code 0" in diagnose(done).text
    sleeping = client.containers.run(slim, ["sleep", "60"], detach=True,
                                     labels=resources.labels(OWNER))
    assert diagnose(sleeping).ok
    sleeping.remove(force=True)


# --- the same causes on minimal containers (no build): what each pattern must and must not match

def test_a_key_error_on_a_variable_that_is_set_is_not_missing_env(client, slim):
    unset = run(client, slim, ["python", "-c", "import os; os.environ['MODEL_DIR']"])
    assert diagnose(unset).cause == "missing-env" and "MODEL_DIR" in diagnose(unset).text
    other = run(client, slim, ["python", "-c", "{'a': 1}['MODEL_DIR']"],
                environment={"MODEL_DIR": "/models"})
    assert diagnose(other).cause == "crashed"  # a dict's KeyError, not the environment's


def test_plain_exit_codes_are_explained(client, slim):
    five = run(client, slim, ["sh", "-c", "echo giving up; exit 5"])
    found = diagnose(five)
    assert found.cause == "crashed" and "exit code 5" in found.text and "giving up" in found.text
    missing = run(client, slim, ["sh", "-c", "no-such-tool --serve"])
    assert diagnose(missing).cause == "bad-command" and "127" in diagnose(missing).text
    assert meaning(137) == "killed by SIGKILL (128 + 9)" and meaning(0) == "success"


def test_a_port_held_by_a_host_process(client, slim):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        container = client.containers.create(
            slim, ["sleep", "30"], labels=resources.labels(OWNER),
            name=resources.unique_name(OWNER, "port"), ports={"5000/tcp": ("127.0.0.1", port)})
        with pytest.raises(APIError, match="address already in use"):
            container.start()
        found = diagnose(container)
    assert found.cause == "port-in-use" and f"lsof -i :{port}" in found.text


def test_a_running_container_whose_calls_fail_is_not_ok(client, slim):
    script = ("import time, urllib.request as u\n"
              "try:\n    u.urlopen('http://127.0.0.1:6379', timeout=3)\n"
              "except OSError as e:\n    print('cache unavailable:', e, flush=True)\n"
              "time.sleep(60)")
    degraded = client.containers.run(slim, ["python", "-c", script], detach=True,
                                     labels=resources.labels(OWNER))
    deadline = time.monotonic() + 30
    while not degraded.logs() and time.monotonic() < deadline:
        time.sleep(0.1)
    found = diagnose(degraded)
    assert (found.ok, found.cause) == (False, "network") and "Connection refused" in found.text
    degraded.remove(force=True)
