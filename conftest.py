"""For every notebook nbval runs (notebooks/ and solutions/): when one of its cells fails,
remove what its OWNER made after its last cell, as its cleanup cell would have, so that no
stack or container outlives a failed lesson or lab. It also notes the engine's volumes at the
start, for tests/test_hygiene.py. (Test fixtures live in tests/conftest.py.)"""

import json
import os

import pytest

FAILED = set()  # the notebooks a cell of which failed in this run


def pytest_sessionstart(session):
    """Note the volumes and the workbook's resources that exist before any test (None without an engine).

    `make test` runs pytest three times (two parallel parts, then the solo part with the hygiene
    tests): WORKBOOK_SINCE names a file that the first run writes and the later ones read.
    """
    since = os.environ.get("WORKBOOK_SINCE")
    if since and os.path.exists(since):
        with open(since, encoding="utf-8") as f:
            before = json.load(f)
        session.config.volumes_before, session.config.workbook_before = (
            None if before[k] is None else set(before[k]) for k in ("volumes", "workbook"))
        return
    try:
        import docker

        from workbook import resources
        client = docker.from_env(timeout=10)
        names = {v.name for v in client.volumes.list()}
        # What an earlier run or the learner left is not this run's: the hygiene test skips it.
        ours = {getattr(x, "id", None) for found in resources.find(client).values() for x in found}
    except Exception:  # no engine, or no docker-py: the tests that need one say so
        names = ours = None
    session.config.volumes_before = names
    session.config.workbook_before = ours
    if since and not hasattr(session.config, "workerinput"):  # the controller, not an xdist worker
        os.makedirs(os.path.dirname(os.path.abspath(since)), exist_ok=True)
        with open(since, "w", encoding="utf-8") as f:
            json.dump({"volumes": None if names is None else sorted(names),
                       "workbook": None if ours is None else sorted(ours)}, f)


def _notebook(item):
    return item.nodeid.split("::")[0].endswith(".ipynb")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Remember the notebook of a failed cell."""
    report = (yield).get_result()
    if report.failed and _notebook(item):
        FAILED.add(str(item.fspath))


def pytest_runtest_teardown(item, nextitem):
    """After a failed notebook's last cell, resources.cleanup(client, OWNER)."""
    path = str(item.fspath)
    if path not in FAILED or (nextitem is not None and str(nextitem.fspath) == path):
        return
    from workbook import engine, resources  # only notebooks that ran need the engine

    owner = owner_of(path)
    if owner:
        resources.cleanup(engine.client(), owner)


def owner_of(path):
    """The OWNER a notebook's code sets (None if it sets none)."""
    with open(path, encoding="utf-8") as f:
        cells = json.load(f)["cells"]
    for cell in cells:
        for line in "".join(cell["source"]).splitlines():
            if line.startswith("OWNER = "):
                return line.split("=", 1)[1].split("#")[0].strip().strip("\"'")
    return None
