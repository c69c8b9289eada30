"""Generate the learner's labs/ from the solutions/ notebooks (`make labs`).

In a solution, the learner's part of a cell sits between two marker lines (in Python cells
and in `%%writefile` cells alike, where `#` starts a comment too):

    ### BEGIN SOLUTION: what to do (becomes "# TODO: what to do")
    ...the answer...
    ### LAB: a line the learner's version keeps instead (e.g. `diagnosis = ""`)
    ### END SOLUTION

Cells tagged `solution-only` are left out of the lab; every output is cleared.
"""

import re
from pathlib import Path

import nbformat

from . import ROOT, WorkbookError

SOLUTIONS = ROOT / "solutions"
LABS = ROOT / "labs"
BEGIN = re.compile(r"^(\s*)### BEGIN SOLUTION:?\s*(.*)$")
END = re.compile(r"^\s*### END SOLUTION\s*$")
KEEP = re.compile(r"^(\s*)### LAB: ?(.*)$")
TODO = "your answer here"


def strip(source, where="cell"):
    """A cell's source with every solution region replaced by its TODO prompt."""
    out, region = [], None
    for line in source.splitlines():
        if region is None and (m := BEGIN.match(line)):
            region = m
            out.append(f"{m.group(1)}# TODO: {m.group(2) or TODO}")
        elif region is not None and END.match(line):
            region = None
        elif region is not None:
            if m := KEEP.match(line):
                out.append(m.group(1) + m.group(2))
        elif END.match(line) or KEEP.match(line):
            raise WorkbookError(f"{where}: a solution marker outside BEGIN/END SOLUTION: {line!r}",
                                "Pair every ### END SOLUTION with a ### BEGIN SOLUTION.")
        else:
            out.append(line)
    if region is not None:
        raise WorkbookError(f"{where}: ### BEGIN SOLUTION without ### END SOLUTION",
                            "Close the region with a ### END SOLUTION line.")
    return "\n".join(out)


def lab_of(solution):
    """The learner's notebook for a solution notebook (a new notebook object)."""
    nb = nbformat.read(solution, as_version=4)
    cells = []
    for i, cell in enumerate(nb.cells):
        if "solution-only" in cell.metadata.get("tags", []):
            continue
        cell.source = strip(cell.source, f"{Path(solution).name} cell {i}")
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cell.metadata.pop("execution", None)
        cells.append(cell)
    nb.cells = cells
    nb.metadata.pop("workbook", None)  # the code stamp belongs to the executed solution
    return nb


def render(solution):
    """The bytes `make labs` writes for a solution notebook."""
    return nbformat.writes(lab_of(solution)) + "\n"


def expected(solutions=SOLUTIONS, labs=LABS):
    """{lab path: text} for every solution notebook."""
    return {Path(labs) / s.name: render(s) for s in sorted(Path(solutions).glob("*.ipynb"))}


def stale(solutions=SOLUTIONS, labs=LABS):
    """Lab notebooks that differ from what `make labs` would write, or have no solution."""
    want = expected(solutions, labs)
    wrong = [p for p, text in want.items() if not p.exists() or p.read_text() != text]
    extra = [p for p in Path(labs).glob("*.ipynb") if p not in want]
    return sorted(wrong + extra)


def generate(solutions=SOLUTIONS, labs=LABS):
    """Write labs/ from solutions/ (and remove labs whose solution is gone); return the paths."""
    want = expected(solutions, labs)
    Path(labs).mkdir(parents=True, exist_ok=True)
    for path, text in want.items():
        path.write_text(text)
    for path in Path(labs).glob("*.ipynb"):
        if path not in want:
            path.unlink()
    return sorted(want)
