"""Committed notebooks are fresh, parameterised, complete; `make run` machinery works."""

import json

import nbformat
import pytest

from workbook import ROOT, labs, notebooks

COMMITTED = notebooks.committed()
IDS = [p.name for p in COMMITTED]


def test_there_are_lessons():
    assert any(p.parent.name == "notebooks" for p in COMMITTED)


@pytest.fixture(params=COMMITTED, ids=IDS)
def nb(request):
    return nbformat.read(request.param, as_version=4)


def test_has_a_parameters_cell(nb):
    assert notebooks.parameters_cell(nb) is not None, "tag one code cell 'parameters' (papermill)"


def test_outputs_are_from_the_current_code(nb):
    assert notebooks.stamp_of(nb) == notebooks.code_hash(nb), (
        "code changed since the outputs were made: run `make notebooks NB=<path>`")


def test_executed_top_to_bottom_in_one_run(nb):
    counts = [c.execution_count for c in nb.cells if c.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1))
    assert any(c.outputs for c in nb.cells if c.cell_type == "code")
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors


def test_follows_the_notebook_shape(nb):
    intro = nb.cells[0].source
    assert nb.cells[0].cell_type == "markdown" and intro.startswith("# ")
    assert "You will learn" in intro and "Time:" in intro
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert "show.summary(" in "\n".join(code), "end with a summary of what was measured"
    assert "resources.cleanup(client, OWNER)" in code[-1], "the last cell cleans up"
    # The learner types `!docker` in a lab (lab 00 is all CLI) and in a lesson's exercise cells
    # (tagged answer); the lesson's own cells use docker-py with the CLI line beside it.
    lab = any(labs.BEGIN.match(ln) for c in nb.cells for ln in c.source.splitlines())
    own = [c.source for c in nb.cells if c.cell_type == "code" and "answer" not in c.metadata.get("tags", [])]
    assert lab or "!docker" not in "\n".join(own), "use docker-py or subprocess.run(check=True)"


def test_code_hash_sees_code_changes_only():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# t"),
                                         nbformat.v4.new_code_cell("x = 1")])
    h = notebooks.code_hash(nb)
    nb.cells[0].source = "# changed prose"
    assert notebooks.code_hash(nb) == h
    nb.cells[1].source = "x = 2"
    assert notebooks.code_hash(nb) != h


def _tiny(path, body):
    cells = [nbformat.v4.new_code_cell("repeats = 1"), nbformat.v4.new_code_cell(body)]
    cells[0].metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_run_all_injects_parameters_and_reports(tmp_path, monkeypatch):
    monkeypatch.setattr(notebooks, "EXECUTED", tmp_path / "executed")
    monkeypatch.setattr(notebooks, "REPORT", tmp_path / "report.md")
    monkeypatch.setenv("WORKBOOK_REPEATS", "7")
    good = _tiny(tmp_path / "good.ipynb",
                 "from workbook import show\nshow.summary('good', {'repeats seen': repeats})")
    bad = _tiny(tmp_path / "bad.ipynb", "raise ValueError('boom')")
    assert notebooks.run_all([good, bad]) == 1
    report = (tmp_path / "report.md").read_text()
    assert "| ok |" in report and "repeats seen: 7" in report
    assert "| FAILED |" in report and "ValueError: boom" in report
    rows = json.loads((tmp_path / "report.json").read_text())  # the same, for lesson 08
    assert [r["status"] for r in rows] == ["ok", "FAILED"] and all(r["seconds"] > 0 for r in rows)
    executed = nbformat.read(tmp_path / "executed" / "good.ipynb", as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)


def test_workbook_errors_show_as_one_line_in_a_notebook(tmp_path, monkeypatch):
    """A missing engine, seen from a notebook: a short message, not a Python traceback."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/missing.sock")
    nb = nbformat.read(_tiny(tmp_path / "err.ipynb", "from workbook import engine\nengine.client()"), 4)
    with pytest.raises(CellExecutionError):
        NotebookClient(nb, kernel_name="python3", timeout=120).execute()
    (err,) = [o for o in nb.cells[1].outputs if o.output_type == "error"]
    assert len(err.traceback) == 1 and "No engine answers at DOCKER_HOST" in err.traceback[0]


def test_merged_streams_joins_runs_of_one_stream_only():
    from workbook.notebooks import merged_streams

    def out(name, text):
        return {"output_type": "stream", "name": name, "text": text}
    shown = {"output_type": "display_data", "data": {"text/plain": "x"}, "metadata": {}}
    got = merged_streams([out("stdout", "Step 1/2 : FROM x"), out("stdout", "  (from cache)\n"),
                          out("stderr", "warn\n"), out("stdout", "a\n"), shown, out("stdout", "b\n")])
    assert [o.get("text") for o in got] == ["Step 1/2 : FROM x  (from cache)\n", "warn\n", "a\n",
                                            None, "b\n"]


def test_nbval_reads_every_sanitize_rule():
    """nbval takes `regex: X` followed by `replace: Y` (Y not empty) and skips anything else
    without a word: every rule of the file must come out of its own parser."""
    from nbval.plugin import get_sanitize_patterns

    text = (ROOT / "tests" / "sanitize.cfg").read_text()
    rules = [ln for ln in text.splitlines() if ln.startswith("regex:")]
    assert len(get_sanitize_patterns(text)) == len(rules) > 0


# No code cell is over LONG_CELL lines: a longer one moves into a helper shown once, a file under
# docker/, or cells of its own (issue 14). A %%writefile cell is the learner's file, and is exempt.
LONG_CELL = 25


def test_code_cells_stay_short():
    """No code cell is over LONG_CELL lines, unless it is a %%writefile."""
    long = {(p.name, c.source.splitlines()[0]) for p in COMMITTED
            for c in nbformat.read(p, as_version=4).cells
            if c.cell_type == "code" and len(c.source.splitlines()) > LONG_CELL and not c.source.startswith("%%writefile")}
    assert not long, f"move these into a helper, a file under docker/ or cells of their own: {sorted(long)}"
