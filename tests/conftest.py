"""Shared fixtures: a real engine, and hygiene checks that run last."""

import pytest

from workbook import engine


def pytest_collection_modifyitems(items):
    """Move tests marked `last` after every other test, notebooks included."""
    items.sort(key=lambda item: item.get_closest_marker("last") is not None)


@pytest.fixture(scope="session")
def client():
    """The real Docker engine (make test starts it; no engine is a failure, not a skip)."""
    return engine.client()

