"""The image ladder (docker/app): every rung builds, serves the same predictions, and differs
from the one before in what it claims to fix."""

import os
import subprocess
import sys
import time

import pytest

from workbook import WorkbookError, footprint, service

OWNER = "tests"


@pytest.fixture(scope="module")
def served(client, ladder):
    """Each rung's /predict answer to the sample flowers, and a few facts from inside."""
    out = {}
    for variant, image in ladder.items():
        c = service.run(client, image.tags[0], OWNER)
        try:
            service.wait_ready(c, timeout=60)
            labels, body = service.predictions(c)
            out[variant] = {"labels": labels, "predictions": body["predictions"],
                            "uid": c.exec_run("id -u").output.decode().strip(),
                            "gcc": c.exec_run(["sh", "-c", "command -v gcc"]).exit_code == 0,
                            "pip": c.exec_run(["python", "-m", "pip", "--version"]).exit_code == 0}
        finally:
            c.remove(force=True)
    return out


def test_every_rung_predicts_the_known_species(served):
    expected = [want for _, want in service.SAMPLES]
    assert {v: s["labels"] for v, s in served.items()} == {v: expected for v in served}


def test_every_rung_gives_identical_probabilities(served):
    reference = served["naive"]["predictions"]
    assert all(s["predictions"] == reference for s in served.values())


def test_each_rung_fixes_what_it_claims(served):
    assert served["naive"]["uid"] == served["multi-stage"]["uid"] == "0"  # root until rung 5
    assert served["production"]["uid"] == served["minimal"]["uid"] == "1000"
    assert served["naive"]["gcc"] and served["cache-friendly"]["gcc"]  # compilers left in
    assert not served["multi-stage"]["gcc"] and not served["production"]["gcc"]
    assert served["production"]["pip"] and not served["minimal"]["pip"]


def test_sizes_go_down_the_ladder(ladder):
    size = {v: img.attrs["Size"] for v, img in ladder.items()}
    assert size["slim"] < size["naive"]
    assert size["cache-friendly"] < size["slim"]  # one RUN, lists removed
    assert size["multi-stage"] < size["cache-friendly"]
    assert size["production"] <= 0.5 * size["naive"]  # the target
    assert size["minimal"] < size["production"]


def test_production_turns_healthy_quickly_and_labels_itself(client, ladder):
    image = ladder["production"]
    assert image.labels["org.opencontainers.image.title"] == "iris-api"
    assert image.attrs["Config"]["Healthcheck"]["Interval"] == 2_000_000_000  # 2 s, in ns
    c = service.run(client, image.tags[0], OWNER)
    try:
        assert service.wait_healthy(c, timeout=30) < 15
    finally:
        c.remove(force=True)


def test_wait_healthy_says_when_there_is_no_healthcheck(client, ladder):
    c = service.run(client, ladder["naive"].tags[0], OWNER)
    try:
        with pytest.raises(WorkbookError, match="no HEALTHCHECK"):
            service.wait_healthy(c, timeout=5)
    finally:
        c.remove(force=True)


def test_wait_ready_reports_a_refused_model_with_its_log_line(client, ladder):
    """A container that exits (here: a missing model) ends the wait with its last log line."""
    c = service.run(client, ladder["production"].tags[0], OWNER,
                    env={"MODEL_PATH": "/app/models/missing.skops"})
    try:
        with pytest.raises(WorkbookError) as err:
            service.wait_ready(c, timeout=60)
        text = str(err.value)
        assert "exit code 3" in text and "missing_file" in text
    finally:
        c.remove(force=True)


def test_trace_finds_what_serving_reads(client, ladder):
    fp = footprint.trace(client, ladder["minimal"].tags[0], OWNER)
    files = list(fp.files)
    assert any(p.endswith("/app/models/model.skops") for p in files)  # the model
    assert any("/sklearn/linear_model/" in p for p in files)  # the estimator's code
    assert any("libopenblas" in p or "libscipy_openblas" in p for p in files)  # mapped .so
    assert any("/site-packages/flask/" in p for p in files)
    assert not any(p.endswith(".csv") for p in files)  # the training data is never read
    groups = fp.by_group()
    assert groups["scipy"] > 10e6 and groups["model"] < 1e6
    # a lower bound: smaller than any image that serves, larger than the model alone
    assert 50e6 < fp.bytes < ladder["minimal"].attrs["Size"]
    left = footprint.unused(client, ladder["minimal"].tags[0], fp)
    total = sum(footprint.image_files(client, ladder["minimal"].tags[0]).values())
    assert abs(total - fp.bytes - sum(left.values())) < 0.01 * total


def test_tracer_logs_opened_files(tmp_path):
    """The sitecustomize tracer on the host: every file Python opens lands in the log."""
    log, data = tmp_path / "trace.log", tmp_path / "data.txt"
    data.write_text("x")
    env = {**os.environ, "PYTHONPATH": str(footprint.TRACER), "WB_TRACE_OUT": str(log)}
    subprocess.run([sys.executable, "-c", f"open({str(data)!r}).read(); import json"],
                   env=env, check=True)
    lines = log.read_text().split()
    assert str(data) in lines and any(p.endswith("json/__init__.py") or "json/__pycache__" in p
                                      for p in lines)


def test_call_returns_text_when_the_body_is_not_json():
    assert service._parse(b"ok") == "ok"
    assert service._parse(b'{"a": 1}') == {"a": 1}
    assert service._parse(b"") is None


def test_build_rejects_an_unknown_rung(client):
    with pytest.raises(WorkbookError, match="No ladder variant"):
        service.build(client, "tiny")


@pytest.fixture(scope="module")
def production(client, ladder):
    """The production image running with a small batch limit and three workers."""
    c = service.run(client, ladder["production"].tags[0], OWNER,
                    env={"MAX_BATCH": "2", "WORKERS": "3", "LOG_LEVEL": "warning"})
    try:
        service.wait_ready(c, timeout=60)
        yield c
    finally:
        c.remove(force=True)


@pytest.mark.parametrize("payload, raw, status, error", [
    (None, b"{not json", 400, "invalid_json"),
    ({"sepal_length": 5.1, "sepal_width": 3.5, "petal_lenght": 1.4, "petal_width": 0.2},
     None, 422, "unknown_features"),
    ([], None, 400, "empty_batch"),
    ([service.SAMPLES[0][0]] * 3, None, 413, "batch_too_large"),  # MAX_BATCH=2 from the env
])
def test_container_refuses_bad_input_like_the_test_client(production, payload, raw, status, error):
    got_status, body = service.call(production, "/predict", payload, raw=raw)
    assert (got_status, body["error"]) == (status, error)


def test_container_reads_its_settings_from_the_environment(production):
    assert service.call(production, "/metadata")[1]["max_batch"] == 2
    deadline = time.monotonic() + 10  # the master forks its workers one by one
    while True:
        procs = [p for p in production.top()["Processes"] if "gunicorn" in " ".join(p)]
        if len(procs) == 1 + 3 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(procs) == 1 + 3  # the master and WORKERS=3
    logs = production.logs().decode()
    assert '"event": "request"' not in logs  # LOG_LEVEL=warning: no info lines
