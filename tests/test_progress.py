"""`make run`'s progress: which notebook of how many, the ETA, a bar only on a terminal."""

import json

import pytest

from workbook import ROOT, notebooks

A, B, C = (ROOT / "notebooks" / f"{n}.ipynb" for n in ("a", "b", "c"))


def _report(path, rows):
    path.write_text(json.dumps([{"notebook": n, "status": "ok", "seconds": s} for n, s in rows]))
    return path


def test_eta_from_the_last_report(tmp_path):
    durations = notebooks.past_durations(_report(tmp_path / "r.json", [("notebooks/a.ipynb", 60),
                                                                        ("notebooks/b.ipynb", 240)]))
    guesses = notebooks.estimates([A, B], durations)
    assert guesses == [60, 240]
    assert notebooks.left(guesses, 0) == 300 and notebooks.left(guesses, 1) == 240
    assert notebooks.eta_text(300) == "about 5 min left"
    assert notebooks.eta_text(45) == "about 45 s left"


def test_a_notebook_missing_from_the_report_counts_as_the_mean(tmp_path):
    durations = notebooks.past_durations(_report(tmp_path / "r.json", [("notebooks/a.ipynb", 60),
                                                                        ("notebooks/b.ipynb", 240)]))
    assert notebooks.estimates([A, C], durations) == [60, 150]


@pytest.mark.parametrize("content", [None, "not json", "[{\"no\": 1}]"])
def test_no_usable_report_means_estimate_unavailable(tmp_path, content):
    path = tmp_path / "report.json"
    if content is not None:
        path.write_text(content)
    guesses = notebooks.estimates([A, B], notebooks.past_durations(path))
    assert guesses is None and notebooks.eta_text(notebooks.left(guesses, 0)) == "estimate unavailable"


def test_position_says_which_of_how_many():
    assert notebooks.position(5, 18, A) == "[5/18] notebooks/a.ipynb"


@pytest.fixture
def fake_papermill(tmp_path, monkeypatch):
    """papermill replaced by a recorder: no kernel, no notebook written."""
    import papermill
    calls = []
    monkeypatch.setattr(papermill, "execute_notebook", lambda *a, **kw: calls.append(kw))
    monkeypatch.setattr(notebooks, "injected_parameters", lambda path, extra=None: {"repeats": 5})
    monkeypatch.setattr(notebooks, "EXECUTED", tmp_path / "executed")
    return calls


def test_a_run_off_a_terminal_prints_one_line_per_notebook_and_no_bar(tmp_path, fake_papermill, capsys):
    report = tmp_path / "report.md"
    _report(report.with_suffix(".json"), [("notebooks/a.ipynb", 600), ("notebooks/b.ipynb", 120)])
    assert notebooks.run_all([A, B], report_to=report) == 0
    out, err = capsys.readouterr()
    assert [kw["progress_bar"] for kw in fake_papermill] == [False, False]
    lines = out.splitlines()
    assert lines[0].startswith("2 notebooks into ") and "about 12 min left" in lines[0]
    assert lines[1].startswith("[1/2] notebooks/a.ipynb repeats=5: ok in ")
    assert lines[1].endswith("; about 2 min left")
    assert lines[2].startswith("[2/2] notebooks/b.ipynb repeats=5: ok in ") and "left" not in lines[2]
    assert len(lines) == 4 and lines[3].startswith("report: ") and err == ""


def test_a_first_run_says_the_estimate_is_unavailable(tmp_path, fake_papermill, capsys):
    notebooks.run_all([A], report_to=tmp_path / "report.md")
    assert "(estimate unavailable)" in capsys.readouterr().out.splitlines()[0]


def test_a_run_on_a_terminal_asks_papermill_for_its_bar(tmp_path, fake_papermill, capsys, monkeypatch):
    monkeypatch.setattr(notebooks, "interactive", lambda: True)
    notebooks.run_all([A], report_to=tmp_path / "report.md")
    assert fake_papermill[0]["progress_bar"]
    assert "[1/1] notebooks/a.ipynb repeats=5 (estimate unavailable)" in capsys.readouterr().out
