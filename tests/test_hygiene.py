"""Runs after everything else (lessons included): nothing labelled 'workbook' is left."""

import pytest

from workbook import resources

KEPT = {"bases", "ladder"}  # shared bases and ladder images, kept on purpose; `make clean` removes them


@pytest.mark.last
def test_nothing_labelled_workbook_is_left(client):
    # The tests' own images are kept for the session; their containers must already be gone.
    removed = resources.cleanup(client, "tests")
    assert not any(removed[k] for k in ("containers", "networks", "volumes")), removed
    left = resources.find(client)
    # Also containers that only inherited the label from a workbook image: none in a test run.
    left["containers"] += [c for c in client.containers.list(all=True, filters={"label": "workbook"})
                           if c not in left["containers"]]
    left["stage images"] = [i for i in left["stage images"]
                            if not all(t.split(":")[0].split("/")[-1] in KEPT for t in i.tags)]
    images = [i.tags or i.short_id for i in left.pop("images") if i.labels.get("workbook") not in KEPT]
    leftovers = {k: [getattr(x, "name", x) for x in v] for k, v in left.items() if v}
    assert not leftovers and not images, f"left behind: {leftovers} images: {images}"
