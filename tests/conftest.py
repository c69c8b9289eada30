"""Shared fixtures and the test tiers: no engine / engine / slow, marked from what a test uses.

- `engine`: the test uses the Docker client fixture `client` (directly or through another
  fixture), or it is a notebook cell run by nbval.
- `slow`: the test uses a fixture that builds or runs something big (SLOW_FIXTURES), or it
  is a cell of a notebook other than the quick ones (QUICK_NOTEBOOKS).
`make test-fast` runs `-m "not engine and not slow"` (no Docker needed), `make test-engine` adds the engine
tier without the slow one, `make test` runs everything.
"""

import json

import pytest

from appmodules import SETTINGS, load
from workbook import engine, service

# Fixtures whose setup builds the ladder or the labs' images, brings up a stack, deploys to
# Swarm or drives the browser: any test that uses one is `slow`.
SLOW_FIXTURES = {"ladder", "onnx_image", "audit_images", "workspaces", "compose_stack", "layouts",
                 "swarm_stack", "lab05", "lab06", "lab07", "browser"}
# Every notebook is `engine`; all but these quick ones are `slow` too.
QUICK_NOTEBOOKS = {"00_setup_check.ipynb", "01_containers_vs_vms.ipynb"}


def pytest_collection_modifyitems(items):
    """Mark each test's tier from its fixtures; move tests marked `last` after all others."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        notebook = item.nodeid.split("::")[0].endswith(".ipynb")
        if notebook or "client" in fixtures:
            item.add_marker(pytest.mark.engine)
        if fixtures & SLOW_FIXTURES or (notebook and item.fspath.basename not in QUICK_NOTEBOOKS):
            item.add_marker(pytest.mark.slow)
    items.sort(key=lambda item: item.get_closest_marker("last") is not None)


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
