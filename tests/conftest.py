"""Shared fixtures: a real engine, hygiene checks that run last, the model service's logs."""

import json

import pytest

from appmodules import SETTINGS, load
from workbook import engine


def pytest_collection_modifyitems(items):
    """Move tests marked `last` after every other test, notebooks included."""
    items.sort(key=lambda item: item.get_closest_marker("last") is not None)


@pytest.fixture(scope="session")
def client():
    """The real Docker engine (make test starts it; no engine is a failure, not a skip)."""
    return engine.client()



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
    service, lines = load("app"), []
    write = service.JsonFormatter.format

    def format_and_keep(self, record):
        text = write(self, record)
        assert "\n" not in text  # one line per record
        lines.append(json.loads(text))
        return text

    monkeypatch.setattr(service.JsonFormatter, "format", format_and_keep)
    service.configure_logging("info")  # undo a LOG_LEVEL set by an earlier test
    return lines
