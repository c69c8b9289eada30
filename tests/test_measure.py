import json
import time

from workbook import measure
from workbook.measure import Timing, repeat, seconds, size


def test_repeat_counts_runs_and_skips_warmup():
    calls = []
    t = repeat(lambda: calls.append(1), runs=4, warmup=2)
    assert len(calls) == 6 and len(t.runs) == 4


def test_timing_min_median():
    t = Timing([3.0, 1.0, 2.0, 10.0])
    assert t.min == 1.0 and t.median == 2.5
    assert str(t) == "min 1.00 s, median 2.50 s over 4 runs"


def test_repeat_measures_wall_clock():
    t = repeat(lambda: time.sleep(0.02), runs=3, warmup=0)
    assert 0.02 <= t.min < 0.5


def test_seconds_and_size_formats():
    assert seconds(0.4123) == "412 ms"
    assert seconds(3.214) == "3.21 s"
    assert seconds(150) == "2.5 min"
    assert size(999) == "999 B"
    assert size(74_800_000) == "74.8 MB"
    assert size(1.5e9) == "1.5 GB"


def test_record_writes_figures_as_json(tmp_path, monkeypatch):
    monkeypatch.setattr("workbook.BUILD", tmp_path)
    out = measure.record("demo", {"t": measure.Timing([1.0, 3.0, 2.0])}, "Docker Engine X")
    doc = json.loads(out.read_text())
    assert doc["figures"]["t"]["median"] == 2.0 and doc["machine"]["engine"] == "Docker Engine X"
