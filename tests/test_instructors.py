"""INSTRUCTORS.md's timings table is generated from `make run`'s report, between its markers."""

import json

import pytest

from workbook import WorkbookError, instructors
from workbook.__main__ import main

ROWS = [
    {"notebook": "notebooks/00_setup_check.ipynb", "status": "ok", "seconds": 21.4},
    {"notebook": "notebooks/04_dockerfile_best_practices.ipynb", "status": "ok", "seconds": 312.0},
    {"notebook": "solutions/99_gone.ipynb", "status": "FAILED", "seconds": 3.0},
]
DOC = f"""# Guide

Before.

{instructors.START}
{instructors.placeholder_table()}
{instructors.END}

After.
"""


@pytest.fixture
def report(tmp_path):
    path = tmp_path / "report.json"
    path.write_text(json.dumps(ROWS))
    path.with_suffix(".md").write_text(
        "# Workbook run report\n\nExecuted 2026-11-27 08:21 UTC on vm (2 cores, Linux x86_64).\n")
    return path


@pytest.fixture
def doc(tmp_path):
    path = tmp_path / "INSTRUCTORS.md"
    path.write_text(DOC)
    return path


def test_table_from_a_report(doc, report):
    table = instructors.update(doc, report)
    text = doc.read_text()
    assert table in text and instructors.PLACEHOLDER not in text
    assert text.startswith("# Guide\n\nBefore.\n\n") and text.endswith("\n\nAfter.\n")
    assert "on vm (2 cores, Linux x86_64), 2026-11-27 08:21 UTC" in table
    assert "5.6 min of running for 3 notebooks" in table  # 21.4 + 312 + 3 s
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert rows[0] == ("| `notebooks/00_setup_check.ipynb` | Setup check: is this machine ready "
                       "for the workbook? | 21 s | 10 min | ok |")
    assert "| 5.2 min |" in rows[1]  # minutes once past 90 s
    assert rows[2] == "| `solutions/99_gone.ipynb` | - | 3 s | - | FAILED |"
    assert "**Not ok in that run:** solutions/99_gone.ipynb" in table


def test_regenerating_is_stable(doc, report):
    instructors.update(doc, report)
    once = doc.read_text()
    instructors.update(doc, report)
    assert doc.read_text() == once


def test_no_report_says_make_run(doc, tmp_path):
    with pytest.raises(WorkbookError, match="No run report") as err:
        instructors.update(doc, tmp_path / "missing.json")
    assert "make run" in err.value.fix
    assert doc.read_text() == DOC  # untouched


def test_machine_falls_back_to_the_report_date(doc, report):
    report.with_suffix(".md").unlink()
    assert "an unrecorded machine" in instructors.update(doc, report)


def test_markers_are_required(tmp_path, report):
    doc = tmp_path / "other.md"
    doc.write_text("# No markers\n")
    with pytest.raises(WorkbookError, match="no timings markers"):
        instructors.update(doc, report)


def test_class_time_of_lessons_and_labs():
    assert instructors.class_minutes("**Time:** about 2 minutes to run, 10 to read.") == 10
    assert instructors.class_minutes("**Time:** about 5 minutes to run (15–20 the very first "
                                     "time),\n35 to read.") == 35
    assert instructors.class_minutes("**Time:** about 20 minutes (the check takes a minute).") == 20
    assert instructors.class_minutes("**Time:** about 6 minutes to run.") is None
    assert instructors.class_minutes("**Time:** about 2 minutes to run, 20 to read,\n"
                                     "and about 25 for the three exercises.") == 45


def test_the_committed_guide_has_one_table(tmp_path):
    text = instructors.DOC.read_text()
    assert text.count(instructors.START) == 1 and text.count(instructors.END) == 1
    table = text.split(instructors.START)[1].split(instructors.END)[0]
    assert instructors.PLACEHOLDER in table or "Measured by `make run` on " in table


def test_command_line(monkeypatch, doc, report, capsys):
    monkeypatch.setattr(instructors, "DOC", doc)
    monkeypatch.setattr(instructors, "REPORT", report)
    assert main(["instructors"]) == 0
    assert "21 s" in doc.read_text() and "updated INSTRUCTORS.md" in capsys.readouterr().out
