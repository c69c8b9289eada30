"""The benchmark's pieces (workbook/bench.py): pure helpers, then each measurement on the engine."""

import csv
import json

import pytest

import workbook
from workbook import bench, resources, service

OWNER = "tests-bench"


@pytest.mark.parametrize("ratio, text", [(1.0, "about the same"), (1.149, "about the same"),
                                         (1.15, "1.15-1.5×"), (1.7, "1.5-2×"), (3, "2-5×"),
                                         (9.99, "5-10×"), (45, "10-100×"), (250, "over 100×")])
def test_factors_fall_into_stable_buckets(ratio, text):
    assert bench.bucket(ratio) == text


def test_durations_come_from_the_last_make_run(tmp_path):
    assert bench.notebook_durations(tmp_path / "none.json") == {}
    report = tmp_path / "report.json"
    report.write_text(json.dumps([{"notebook": "notebooks/05_docker_compose.ipynb",
                                   "status": "ok", "seconds": 86.2}]))
    assert bench.notebook_durations(report) == {"notebooks/05_docker_compose.ipynb": 86.2}


def test_results_are_written_as_json_with_the_machine_and_as_csv(tmp_path, monkeypatch):
    monkeypatch.setattr(workbook, "BUILD", tmp_path)
    monkeypatch.setattr(bench, "OUT", tmp_path / "bench")
    rows = [{"variant": "naive", "bytes": 10}, {"variant": "minimal", "bytes": 4}]
    path = bench.write({"images": rows, "traced_lower_bound": 3}, "Docker Engine X")
    doc = json.loads(path.read_text())
    assert doc["figures"]["images"] == rows and doc["machine"]["engine"] == "Docker Engine X"
    assert doc["machine"]["cores"] >= 1
    with open(tmp_path / "bench" / "results.csv") as fh:
        assert list(csv.DictReader(fh)) == [{"variant": "naive", "bytes": "10"},
                                            {"variant": "minimal", "bytes": "4"}]


def test_charts_are_drawn_from_results_json(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "OUT", tmp_path)
    timing = {"runs": [1.0, 2.0, 3.0], "min": 1.0, "median": 2.0}
    doc = {"machine": {"host": "vm", "cores": 2}, "figures": {
        "builds": {"production": {"cold": timing, "warm": timing, "code change": timing}},
        "starts": {"production": {"first 200": timing, "healthy": timing}},
        "paths": {"host process": {"one": {"p50": 0.002}}, "container": {"one": {"p50": 0.0021}}}}}
    (tmp_path / "results.json").write_text(json.dumps(doc))
    made = bench.charts()
    assert [p.name for p in made] == ["builds.png", "starts.png", "latency.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in made)


def test_the_variants_are_the_ladder_and_onnx():
    assert list(bench.variants()) == [*service.LADDER, "onnx"]


# --- on the engine --------------------------------------------------------------------------

def test_size_row_agrees_with_the_engine(client, production):
    image = production
    row = bench.size_row(client, "production")
    assert row["bytes"] == image.attrs["Size"]
    assert row["layers_with_files"] == len([h for h in image.history() if h["Size"]])
    assert 0.9 < row["efficiency"] <= 1 and 0 <= row["wasted_bytes"] < row["bytes"]


def test_start_seconds_first_answer_then_healthy(client, production):
    answered, healthy = bench.start_seconds(client, service.tag("production"), OWNER)
    assert 0 < answered <= healthy < 60
    assert not client.containers.list(all=True, filters={"label": f"workbook={OWNER}"})


def test_host_container_and_nginx_all_answer_and_are_timed(client, production):
    net = bench.network(client, OWNER)
    try:
        with bench.HostServer(workers=1) as host, \
                bench.Container(client, service.tag("production"), OWNER, 1, network=net.name) as box, \
                bench.Container(client, service.tag("production"), OWNER, 1, host_network=True) as local, \
                bench.Proxy(client, OWNER, net.name) as proxy:
            # On the host's network the service listens on loopback only, never 0.0.0.0.
            assert f"GUNICORN_CMD_ARGS=--bind 127.0.0.1:{local.port}" in local.c.attrs["Config"]["Env"]
            for url in (host.url, box.url, local.url, proxy.url + "/api"):
                figures = bench.latency(url + "/predict", bench.ONE, n=10, warmup=2)
                assert 0 < figures["p50"] <= figures["p95"] < 5 and figures["n"] == 10
            assert bench.throughput(box.url + "/predict", bench.ONE, clients=2, seconds=0.5) > 1
            assert box.memory() > 10e6  # a model service uses tens of MB
        assert host.proc.poll() is not None  # the host gunicorn is gone
    finally:
        net.remove()
        resources.cleanup(client, OWNER)
    assert not client.containers.list(all=True, filters={"label": f"workbook={OWNER}"})


def test_a_code_change_rebuild_reuses_the_dependency_layers(client, tmp_path):
    context, tag = service.copy_context(tmp_path / "app"), "workbook/bench-tests:production"
    bench.build_seconds(client, "production", OWNER, context=context, tag=tag)
    before = client.images.get(tag).history()
    bench.code_change(context, 1)
    bench.build_seconds(client, "production", OWNER, context=context, tag=tag)
    after = client.images.get(tag).history()
    def layer(history, where):  # the id of the COPY step that wrote `where`
        return [h["Id"] for h in history if f"in {where} " in (h["CreatedBy"] or "") + " "]
    assert layer(before, "/opt/venv") and layer(before, "/opt/venv") == layer(after, "/opt/venv")
    assert layer(before, "./") != layer(after, "./")  # app.py's layer is new
    assert "# benchmark edit 1" in (context / "app.py").read_text()
    resources.cleanup(client, OWNER)
