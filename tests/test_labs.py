"""labs/ is generated from solutions/ (`make labs`), and every generated lab runs to its first
check under papermill and reports "not done yet" there, without a traceback."""

import nbformat
import papermill
import pytest

from workbook import ROOT, WorkbookError, labs, resources

SOLUTIONS = sorted(labs.SOLUTIONS.glob("*.ipynb"))
IDS = [p.stem for p in SOLUTIONS]


def test_there_are_labs():
    assert len(SOLUTIONS) >= 4


def test_labs_are_what_make_labs_writes():
    assert labs.stale() == [], "labs/ is out of date: run `make labs`"


def test_generation_is_deterministic(tmp_path):
    labs.generate(labs.SOLUTIONS, tmp_path)
    first = {p.name: p.read_bytes() for p in tmp_path.glob("*.ipynb")}
    labs.generate(labs.SOLUTIONS, tmp_path)
    assert first == {p.name: p.read_bytes() for p in tmp_path.glob("*.ipynb")}
    assert sorted(first) == [p.name for p in SOLUTIONS]


def test_stale_sees_an_edited_lab_and_an_orphan(tmp_path):
    labs.generate(labs.SOLUTIONS, tmp_path)
    assert labs.stale(labs.SOLUTIONS, tmp_path) == []
    edited = tmp_path / SOLUTIONS[0].name
    edited.write_text(edited.read_text().replace("TODO", "DONE", 1))
    (tmp_path / "99_orphan.ipynb").write_text("{}")
    assert labs.stale(labs.SOLUTIONS, tmp_path) == [edited, tmp_path / "99_orphan.ipynb"]
    labs.generate(labs.SOLUTIONS, tmp_path)
    assert labs.stale(labs.SOLUTIONS, tmp_path) == []


def test_strip_replaces_solutions_with_todos():
    source = "\n".join([
        "%%writefile Dockerfile",
        "### BEGIN SOLUTION: write the Dockerfile",
        "FROM python:3.11-slim",
        "### END SOLUTION",
        "x = 1",
        "    ### BEGIN SOLUTION",
        "    answer = 42",
        "    ### LAB: answer = None",
        "    ### END SOLUTION",
    ])
    assert labs.strip(source) == "\n".join([
        "%%writefile Dockerfile", "# TODO: write the Dockerfile", "x = 1",
        "    # TODO: your answer here", "    answer = None"])
    assert labs.strip("no markers\nat all") == "no markers\nat all"


@pytest.mark.parametrize("bad", ["### BEGIN SOLUTION\nx = 1", "x = 1\n### END SOLUTION",
                                 "### LAB: x = 1"])
def test_strip_refuses_unpaired_markers(bad):
    with pytest.raises(WorkbookError):
        labs.strip(bad)


def test_lab_of_clears_outputs_and_drops_solution_only_cells(tmp_path):
    cells = [nbformat.v4.new_markdown_cell("# Lab"),
             nbformat.v4.new_code_cell("### BEGIN SOLUTION\nprint(1)\n### END SOLUTION",
                                       execution_count=1,
                                       outputs=[nbformat.v4.new_output("stream", text="1\n")]),
             nbformat.v4.new_code_cell("assert report.passed", metadata={"tags": ["solution-only"]})]
    nb = nbformat.v4.new_notebook(cells=cells, metadata={"workbook": {"code_sha256": "x"}})
    nbformat.write(nb, tmp_path / "s.ipynb")
    lab = labs.lab_of(tmp_path / "s.ipynb")
    assert [c.source for c in lab.cells] == ["# Lab", "# TODO: your answer here"]
    assert lab.cells[1].outputs == [] and lab.cells[1].execution_count is None
    assert lab.cells[1].id == cells[1].id and "workbook" not in lab.metadata


@pytest.fixture(params=SOLUTIONS, ids=IDS)
def solution(request):
    return request.param


def test_solution_states_goal_time_and_done(solution):
    intro = nbformat.read(solution, as_version=4).cells[0].source
    for words in ("You will learn", "Goal:", "Done when:", "Time:"):
        assert words in intro, f"{solution.name}: the first cell must say {words!r}"


def test_solution_marks_the_learners_part_and_has_a_check(solution):
    nb = nbformat.read(solution, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert any(labs.BEGIN.match(ln) for c in code for ln in c.source.splitlines())
    assert any("check" in c.metadata.get("tags", []) for c in code), "tag the check cell 'check'"


def _to_first_check(solution):
    """The generated lab cut after its first check cell, with its cleanup cell kept last."""
    nb = labs.lab_of(solution)
    first = next(i for i, c in enumerate(nb.cells) if "check" in c.metadata.get("tags", []))
    cleanup = [c for c in nb.cells if c.cell_type == "code"][-1]
    nb.cells = nb.cells[:first + 1] + [cleanup]
    return nb


def test_generated_lab_runs_to_its_first_check_and_says_not_done(solution, tmp_path, client):
    nb = _to_first_check(solution)
    path, out = tmp_path / solution.name, tmp_path / ("out-" + solution.name)
    nbformat.write(nb, path)
    owner = f"test_labs_{solution.stem[:2]}"
    declared = papermill.inspect_notebook(str(path))
    params = {"OWNER": owner} if "OWNER" in declared else {}
    try:
        # Run where the learner runs it: in labs/, so relative paths mean the same.
        papermill.execute_notebook(str(path), str(out), parameters=params, kernel_name="python3",
                                   cwd=str(ROOT / "labs"), progress_bar=False)
    finally:
        resources.cleanup(client, owner)
    done = nbformat.read(out, as_version=4)
    outputs = [o for c in done.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "\n".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "Traceback" not in text
    check = next(c for c in done.cells if "check" in c.metadata.get("tags", []))
    said = "".join(o.get("text", "") for o in check.outputs)
    assert "not done yet" in said, said
