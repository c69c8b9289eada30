"""Shared fixtures and the test tiers: no engine / engine / slow, marked from what a test uses.

- `engine`: the test uses the Docker client fixture `client` (directly or through another
  fixture), or it is a notebook cell run by nbval.
- `slow`: the test uses a fixture that builds or runs something big (SLOW_FIXTURES), or it
  is a cell of a notebook other than the quick ones (QUICK_NOTEBOOKS).
`make test-fast` runs `-m "not engine and not slow"` (no Docker needed), `make test-engine` adds the engine
tier without the slow one, `make test` runs everything.

`make test` runs in three parts. Twice in two processes (pytest-xdist, `--dist loadgroup`; a
notebook's cells, a module's tests and everything that uses the one swarm each stay in one
process, `group`): first Swarm beside the groups of BESIDE_SWARM and the tests that need no
engine, then the other engine tests (marked `networks`): `docker swarm leave` wipes the names
of every container on a user-defined network (moby/moby#45144), so no Compose stack may run
while Swarm's tests come and go. Then, alone, what measures time (SOLO_NOTEBOOKS, whose
printed verdicts compare timings) and the hygiene checks (`last`).
"""

import json
import re

import pytest
from xdist.scheduler import LoadScopeScheduling

from appmodules import SETTINGS, load
from workbook import engine, service

# Fixtures whose setup builds the ladder or the labs' images, brings up a stack, deploys to
# Swarm or drives the browser: any test that uses one is `slow`.
SLOW_FIXTURES = {"ladder", "onnx_image", "audit_images", "workspaces", "compose_stack", "layouts",
                 "swarm_stack", "lab05", "lab06", "lab07", "browser", "cli_lab", "stack_images",
                 "traced", "traced_narrow", "traced_onnx"}
# Every notebook is `engine`; all but these quick ones are `slow` too.
QUICK_NOTEBOOKS = {"00_setup_check.ipynb", "01_containers_vs_vms.ipynb"}
# The engine has one swarm: whatever joins, deploys to or leaves it runs in one process. (Lesson
# 07's exercises too: its setup cell empties build/07/, which the lesson itself writes in.)
SWARM = ("notebooks/06_orchestration.ipynb::", "notebooks/07_security.ipynb::",
         "solutions/07_rolling_update.ipynb::", "tests/test_swarm.py::",
         "tests/test_checks_stack.py::test_lab07_", "tests/test_exercises.py::test_exercise_is_graded_right[06.",
         "tests/test_exercises.py::test_exercise_is_graded_right[07.")
# The engine's groups that put no container on a user-defined network (none runs Compose,
# `docker network create` or `--network NAME`): they run beside Swarm, whose `docker swarm
# leave` would cut a running stack's service names (moby/moby#45144; swarm.leave_if_started
# refuses, so a group wrongly listed here fails lesson 06's cleanup cell, not at random).
# Every other engine group is marked `networks` and runs after them. (The same wipe made lab
# 05's cache answer `error` in fresh runs ci14 and ci15, then run alone: a swarm init and leave
# beside it gives "X-Cache: error then error" again. It now runs with the `networks` part.)
BESIDE_SWARM = {
    "notebooks/00_setup_check.ipynb", "notebooks/01_containers_vs_vms.ipynb", "notebooks/02_docker_fundamentals.ipynb",
    "solutions/01_first_container.ipynb", "solutions/02_cache_friendly.ipynb", "solutions/03_smaller_image.ipynb",
    "solutions/04_hardened_image.ipynb",
    *(f"tests/test_checks.py[lab0{n}]" for n in range(1, 5)),
    *(f"tests/test_exercises.py[{n}]" for n in ("01", "02", "04", "08", "09", "10")),
    *(f"tests/test_{m}.py" for m in ("audit", "bases", "bundle", "checks", "cli_lab", "dockerfiles", "engine",
                                     "exercises", "imagefs", "images", "interrupt", "inventory", "labs", "ladder",
                                     "layers", "measure", "onnx", "pictures", "python_layouts", "registry", "scan",
                                     "ui", "wheelhouse")),
}
# Lessons that time builds and requests run alone, so that another process's work does not
# blur what they compare.
SOLO_NOTEBOOKS = {"04_dockerfile_best_practices.ipynb", "08_performance.ipynb"}
# The longest groups start first, so that neither process is left with a long one at the end.
FIRST = ("swarm", "notebooks/10_real_world.ipynb", "notebooks/11_serving_stacks.ipynb", "tests/test_compose.py",
         "tests/test_exercises.py[11]", "solutions/06_troubleshooting.ipynb",
         "tests/test_exercises.py[10]", "tests/test_checks.py[lab02]",
         "notebooks/09_troubleshooting.ipynb")


# Tests that use what a notebook uses: its OWNER (the browser runs notebook 00), or the lab's
# image name workbook/lab-NN:latest (a generated lab run to its first check, lab 05 and 06's
# checks; the browser does lab 00, whose image is workbook/lab-00:v1) run in that notebook's process.
WITH_NOTEBOOK = {"tests/test_browser.py::": "notebooks/00_setup_check.ipynb",
                 "solutions/00_docker_cli.ipynb::": "notebooks/00_setup_check.ipynb",  # the browser does lab 00
                 "tests/test_checks_stack.py::test_lab05_": "solutions/05_compose_stack.ipynb",
                 "tests/test_checks_stack.py::test_lab06_": "solutions/06_troubleshooting.ipynb"}
GENERATED_LAB = "tests/test_labs.py::test_generated_lab_runs_to_its_first_check_and_says_not_done["


def group(nodeid):
    """The process a test shares with others: 'swarm', else its notebook's or module's path."""
    if nodeid.startswith(GENERATED_LAB):
        nodeid = f"solutions/{nodeid[len(GENERATED_LAB):].rstrip(']')}.ipynb::"
    for prefix, notebook in WITH_NOTEBOOK.items():
        if nodeid.startswith(prefix):
            nodeid = notebook + "::"
    if nodeid.startswith(SWARM):
        return "swarm"
    # The two longest modules split by what they share: a lesson's exercises, a lab's checks.
    if m := re.match(r"(tests/test_exercises\.py)::test_exercise_is_graded_right\[(\d\d[a-z]?)\.", nodeid):
        return f"{m[1]}[{m[2]}]"
    if m := re.match(r"(tests/test_checks\.py)::test_(lab\d\d)_", nodeid):
        return f"{m[1]}[{m[2]}]"
    return nodeid.split("::")[0]


class GroupScheduling(LoadScopeScheduling):
    """pytest-xdist's scheduler by scope, the scope being group(nodeid), in collection order."""

    def _split_scope(self, nodeid):
        return group(nodeid)


def pytest_xdist_make_scheduler(config, log):
    """`pytest -n 2 --dist loadgroup` hands out whole groups (see group)."""
    if config.getvalue("dist") == "loadgroup":
        config.option.loadscopereorder = False  # keep FIRST's order
        return GroupScheduling(config, log)
    return None


def pytest_collection_modifyitems(items):
    """Mark each test's tier from its fixtures; order the groups; tests marked `last` after all others."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        notebook = item.nodeid.split("::")[0].endswith(".ipynb")
        if notebook or "client" in fixtures:
            item.add_marker(pytest.mark.engine)
        if fixtures & SLOW_FIXTURES or (notebook and item.fspath.basename not in QUICK_NOTEBOOKS):
            item.add_marker(pytest.mark.slow)
        if "engine" in item.keywords and group(item.nodeid) not in BESIDE_SWARM | {"swarm"}:
            item.add_marker(pytest.mark.networks)
        if item.get_closest_marker("last") or (notebook and item.fspath.basename in SOLO_NOTEBOOKS):
            item.add_marker(pytest.mark.solo)
    order = {name: i for i, name in enumerate(FIRST)}
    items.sort(key=lambda item: (item.get_closest_marker("last") is not None,
                                 order.get(group(item.nodeid), len(FIRST))))


@pytest.fixture(scope="session")
def client():
    """The real Docker engine (make test starts it; no engine is a failure, not a skip)."""
    return engine.client()


@pytest.fixture(scope="session")
def ladder(client):
    """Every rung of the image ladder, built once per test session (kept until `make clean`)."""
    return {v: service.build(client, v, log="none") for v in service.LADDER}


@pytest.fixture(scope="session")
def production(client):
    """The production image (workbook/app:production), built once per test session."""
    return service.build(client, "production", log="none")


@pytest.fixture(scope="module", autouse=True)
def clean_env():
    """No model-service setting leaks in from the environment of whoever runs the tests."""
    with pytest.MonkeyPatch.context() as mp:
        for name in SETTINGS:
            mp.delenv(name, raising=False)
        yield


@pytest.fixture
def log_lines(monkeypatch):
    """The model service's log lines during one test, as its formatter writes them, parsed."""
    app, lines = load("app"), []
    write = app.JsonFormatter.format

    def format_and_keep(self, record):
        text = write(self, record)
        assert "\n" not in text  # one line per record
        lines.append(json.loads(text))
        return text

    monkeypatch.setattr(app.JsonFormatter, "format", format_and_keep)
    app.configure_logging("info")  # undo a LOG_LEVEL set by an earlier test
    return lines
