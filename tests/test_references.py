"""Every "lesson NN §N" (and "lab NN §N") a hint, a lesson or a document names exists, and so
does every bare "§N" a lesson uses for one of its own sections."""

import re

import nbformat
import pytest

from workbook import ROOT

LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]*_*.ipynb"))
NAMED = re.compile(r"\blessons? (\d\d[a-z]?) §(\d+)")  # "lesson 04 §3", "lesson 07b §1"
# A bare §N (also the second one of "§1, §3"), not one that follows "lesson NN " or "lesson NNb "
OWN = re.compile(r"(?<!\d\d )(?<!\d\d[a-z] )§(\d+)")


def sections(path):
    """The numbers of a lesson's '## N. Title' headings."""
    nb = nbformat.read(path, as_version=4)
    return {int(m.group(1)) for c in nb.cells if c.cell_type == "markdown"
            for m in re.finditer(r"^##\s+(\d+)\.", c.source, re.M)}


SECTIONS = {p.name.split("_")[0]: sections(p) for p in LESSONS}
LAB_NAMED = re.compile(r"\blab (\d\d) §(\d+)")  # "lab 00 §3"
LAB_SECTIONS = {p.name[:2]: sections(p) for p in sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))}


def texts():
    """(where, text) of every check, helper, lesson, lab solution and document a learner reads."""
    for path in sorted((ROOT / "workbook").rglob("*.py")):
        yield path.relative_to(ROOT), path.read_text()
    for path in [ROOT / "README.md", ROOT / "INSTRUCTORS.md", *sorted((ROOT / "docker").rglob("README.md"))]:
        yield path.relative_to(ROOT), path.read_text()
    for path in [*LESSONS, *sorted((ROOT / "solutions").glob("*.ipynb"))]:
        nb = nbformat.read(path, as_version=4)
        yield path.relative_to(ROOT), "\n".join(c.source for c in nb.cells)


def test_every_named_section_exists():
    missing = [(str(where), m.group(0)) for where, text in texts() for m in NAMED.finditer(text)
               if int(m.group(2)) not in SECTIONS.get(m.group(1), set())]
    assert not missing, f"sections that do not exist: {missing}"


def test_every_named_lab_section_exists():
    named = [(str(where), m) for where, text in texts() for m in LAB_NAMED.finditer(text)]
    missing = [(where, m.group(0)) for where, m in named
               if int(m.group(2)) not in LAB_SECTIONS.get(m.group(1), set())]
    assert named and not missing, f"lab sections that do not exist: {missing}"


@pytest.mark.parametrize("path", LESSONS, ids=[p.name for p in LESSONS])
def test_a_lessons_own_section_references_exist(path):
    nb = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    text = NAMED.sub("", text)  # another lesson's sections are the test above's
    missing = sorted({m.group(0) for m in OWN.finditer(text) if int(m.group(1)) not in SECTIONS[path.name.split("_")[0]]})
    assert not missing, f"{path.name} names sections it does not have: {missing}"


def test_the_reference_pattern_finds_what_it_should():
    assert [m.groups() for m in NAMED.finditer("see lesson 04 §3 and lessons 02 §6, lesson 07b §2")] == [
        ("04", "3"), ("02", "6"), ("07b", "2")]
    assert [m.group(1) for m in OWN.finditer("(§1, §3) and lesson 04 §5, lesson 07b §2")] == ["1", "3"]
