"""Runs after everything else (lessons included): nothing labelled 'workbook' is left."""

import subprocess
import sys

import nbformat
import pytest

from workbook import BUILD, ROOT, resources

KEPT = {"bases", "ladder"}  # shared bases and ladder images, kept on purpose; `make clean` removes them


@pytest.mark.last
def test_nothing_labelled_workbook_is_left(client, request):
    # The tests' own images are kept for the session; their containers must already be gone.
    removed = resources.cleanup(client, "tests")
    assert not any(removed[k] for k in ("containers", "networks", "volumes")), removed
    before = request.config.workbook_before or set()  # there before the run: not this run's
    left = {k: [x for x in v if x.id not in before] for k, v in resources.find(client).items()}
    # Also containers that only inherited the label from a workbook image: none in a test run.
    left["containers"] += [c for c in client.containers.list(all=True, filters={"label": "workbook"})
                           if c not in left["containers"] and c.id not in before]
    left["stage images"] = [i for i in left["stage images"]
                            if not all(t.split(":")[0].split("/")[-1] in KEPT for t in i.tags)]
    images = [i.tags or i.short_id for i in left.pop("images") if i.labels.get("workbook") not in KEPT]
    leftovers = {k: [getattr(x, "name", x) for x in v] for k, v in left.items() if v}
    assert not leftovers and not images, f"left behind: {leftovers} images: {images}"



@pytest.mark.last
def test_no_anonymous_volume_is_left(client, request):
    # An image's VOLUME gives each container an anonymous volume, without labels; removing the
    # container without v=True (docker-py's run(remove=True) does that) leaves it behind.
    before = request.config.volumes_before
    if before is None:
        pytest.skip("no engine when the session started")
    new = [v.name for v in client.volumes.list(filters={"dangling": True})
           if v.name not in before and not v.attrs.get("Labels")]
    assert not new, f"{len(new)} anonymous volumes left by this run: {new}"

def test_a_failed_notebook_leaves_nothing_behind(client):
    """conftest.py (the repository's root) cleans up after a notebook whose cell failed."""
    folder = BUILD / "failed-notebook"
    folder.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in (
        'from workbook import engine, resources\nOWNER = "test_failed_notebook"\n'
        'engine.client().containers.run("workbook/python:3.11-slim", "sleep 300", detach=True,\n'
        '                                 labels=resources.labels(OWNER))',
        "1 / 0  # the failed cell: the cleanup cell below never runs",
        "resources.cleanup(engine.client(), OWNER)")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / "failing.ipynb")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(folder / "failing.ipynb")], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 1 and "1 failed" in done.stdout, done.stdout[-2000:]
    left = client.containers.list(all=True, filters={"label": "workbook=test_failed_notebook"})
    for c in left:
        c.remove(force=True)
    assert not left, "the failed notebook's container outlived it"
