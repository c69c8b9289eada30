"""The model service in docker/app: training, input validation, refusals, logs, real gunicorn.

No Docker: Flask's test client, plus a few subprocesses (python, gunicorn on 127.0.0.1).
One model is trained into a temporary folder for the whole module.
"""

import hashlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
import skops.io as sio
import sklearn

from appmodules import APP_DIR, BIN, gunicorn_server, load, run_env
from workbook import badinput
from workbook.resources import free_port

ROOT = Path(__file__).resolve().parents[1]

service = load("app")
training = load("train")
FEATURES = training.FEATURES
SETOSA = badinput.SETOSA
VERSICOLOR = dict(zip(FEATURES, [5.9, 3.0, 4.2, 1.5]))
VIRGINICA = dict(zip(FEATURES, [6.7, 3.0, 5.2, 2.3]))
MAX_BATCH = badinput.MAX_BATCH


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A model trained by train.py (model_version 7), with its .sha256 sidecar."""
    path = tmp_path_factory.mktemp("models") / "model.skops"
    training.train(path, model_version="7")
    return path


@pytest.fixture(scope="module")
def app(model):
    """The service around that model, with MAX_BATCH records per request at most."""
    return service.create_app(model, max_batch=MAX_BATCH)


@pytest.fixture
def http(app):
    """Flask's test client: requests without a server."""
    return app.test_client()


def post(http, body, **kwargs):
    """POST /predict; `body` is sent as it is when it is text or bytes, else as JSON."""
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    kwargs.setdefault("content_type", "application/json")
    return http.post("/predict", data=data, **kwargs)


def save(path, bundle, digest=False):
    """Write a skops file for a refusal test (and a correct .sha256 when asked)."""
    sio.dump(bundle, path)
    if digest:
        training.sidecar(path).write_text(hashlib.sha256(path.read_bytes()).hexdigest())
    return path


def bundle_of(model):
    """The {"pipeline", "metadata"} dict saved in a model file."""
    return sio.load(model, trusted=service.TRUSTED)


# --- training -----------------------------------------------------------------------------

def test_train_saves_metadata_and_a_sha256sum_sidecar(model):
    meta = bundle_of(model)["metadata"]
    assert meta["model_version"] == "7"
    assert meta["features"] == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert meta["classes"] == ["setosa", "versicolor", "virginica"]
    assert meta["trained_with"]["scikit-learn"] == sklearn.__version__
    assert set(meta["trained_with"]) == {"scikit-learn", "numpy", "python"}
    assert "trained_at" not in meta
    metrics = meta["metrics"]
    assert metrics["n_train"] + metrics["n_test"] == 150 and metrics["n_test"] == 45
    assert metrics["accuracy"] > 0.85 and metrics["f1_macro"] > 0.85
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    assert training.sidecar(model).read_text() == f"{digest}  model.skops\n"


def test_training_is_deterministic(model, tmp_path):
    again = tmp_path / "deep" / "er" / "model.skops"  # parent folders are created
    assert training.train(again, model_version="7") == bundle_of(model)["metadata"]
    first, second = bundle_of(model)["pipeline"], bundle_of(again)["pipeline"]
    assert (first[-1].coef_ == second[-1].coef_).all()
    # The same bytes too (object ids and zip timestamps fixed): Docker's cache holds a COPY of it.
    assert again.read_bytes() == model.read_bytes()


def test_a_trained_model_needs_no_type_beyond_trusted(model):
    assert set(sio.get_untrusted_types(file=model)) <= set(service.TRUSTED)


def test_train_command_prints_a_short_report(tmp_path, capsys):
    training.main(["--out", str(tmp_path / "m.skops"), "--model-version", "2"])
    out = capsys.readouterr().out
    assert "accuracy 0.9" in out and "macro F1" in out and "m.skops.sha256" in out


# --- predictions ----------------------------------------------------------------------------

def test_predict_one_record(http):
    r = post(http, SETOSA)
    assert r.status_code == 200
    body = r.get_json()
    assert body["model_version"] == "7" and body["served_by"] == socket.gethostname()
    [prediction] = body["predictions"]
    assert prediction["label"] == "setosa" and prediction["class_index"] == 0
    probabilities = prediction["probabilities"]
    assert list(probabilities) == ["setosa", "versicolor", "virginica"]
    assert math.isclose(sum(probabilities.values()), 1, abs_tol=1e-5)
    assert all(round(p, 6) == p for p in probabilities.values())
    assert probabilities["setosa"] == max(probabilities.values())


def test_predict_a_batch_keeps_its_order(http):
    known = [(SETOSA, "setosa"), (VERSICOLOR, "versicolor"), (VIRGINICA, "virginica")]
    for batch in (known, known[::-1], [known[2], known[0], known[1]]):
        r = post(http, [row for row, _ in batch])
        assert r.status_code == 200
        predictions = r.get_json()["predictions"]
        assert [p["label"] for p in predictions] == [label for _, label in batch]
        assert [p["class_index"] for p in predictions] == [
            training.CLASSES.index(label) for _, label in batch]
        for p in predictions:
            assert math.isclose(sum(p["probabilities"].values()), 1, abs_tol=1e-5)


def test_predict_accepts_the_form_content_type_curl_sends(http):
    r = post(http, SETOSA, content_type="application/x-www-form-urlencoded")
    assert r.status_code == 200 and r.get_json()["predictions"][0]["label"] == "setosa"


def test_integers_are_numbers(http):
    r = post(http, dict(zip(FEATURES, [5, 3, 1, 0])))
    assert r.status_code == 200 and r.get_json()["predictions"][0]["label"] == "setosa"


# --- bad input: exact status, error code, and what the message names ------------------------

BAD = {
    # badinput.CASES id: (status, error, words the message must contain, details the body has)
    "not_json": (400, "invalid_json", ["not valid JSON"], {}),
    "empty_body": (400, "invalid_json", ["not valid JSON"], {}),
    "deep_nesting": (400, "invalid_json", [], {}),
    "a_number": (400, "not_a_record", ["one record", "list of records"], {}),
    "a_string": (400, "not_a_record", ["one record"], {}),
    "null": (400, "not_a_record", ["one record"], {}),
    "empty_list": (400, "empty_batch", ["empty"], {}),
    "item_not_object": (400, "record_not_object", ["record 1"], {"index": 1}),
    "missing": (422, "missing_features", ["petal_length, petal_width"],
                {"missing": ["petal_length", "petal_width"]}),
    "misspelled": (422, "unknown_features", ["'petal_lenght'", "did you mean 'petal_length'"],
                   {"unknown": ["petal_lenght"], "did_you_mean": {"petal_lenght": "petal_length"}}),
    "extra": (422, "unknown_features", ["'colour'"], {"unknown": ["colour"], "did_you_mean": {}}),
    "string": (422, "wrong_type", ["petal_width", "a string"], {"feature": "petal_width"}),
    "true": (422, "wrong_type", ["petal_width", "boolean"], {"feature": "petal_width"}),
    "false": (422, "wrong_type", ["sepal_length"], {"feature": "sepal_length"}),
    "null_value": (422, "wrong_type", ["petal_width", "null"], {"feature": "petal_width"}),
    "list_value": (422, "wrong_type", ["a list"], {"feature": "petal_width"}),
    "object_value": (422, "wrong_type", ["an object"], {"feature": "petal_width"}),
    "nan": (422, "not_finite", ["sepal_width"], {"feature": "sepal_width"}),
    "infinity": (422, "not_finite", ["sepal_width"], {"feature": "sepal_width"}),
    "minus_infinity": (422, "not_finite", [], {"feature": "sepal_width"}),
    "1e999": (422, "not_finite", ["petal_length"], {"feature": "petal_length"}),
    "huge_integer": (422, "not_finite", ["petal_length"], {"feature": "petal_length"}),
    "1e308": (422, "out_of_range", ["petal_length", "cm"], {"feature": "petal_length"}),
    "negative": (422, "out_of_range", ["petal_length"], {"feature": "petal_length"}),
    "batch_names_index": (422, "wrong_type", ["record 2", "sepal_length"], {"index": 2}),
    "too_many_records": (413, "batch_too_large", [f"{MAX_BATCH + 1} records",
                                                  f"at most {MAX_BATCH}"], {"max_batch": MAX_BATCH}),
}


def test_every_bad_case_has_an_expectation():
    assert set(BAD) == set(badinput.BAD)
    assert badinput.MAX_BODY_BYTES == service.MAX_BODY_BYTES
    assert badinput.MAX_BATCH == service.DEFAULT_MAX_BATCH  # so that the images refuse too_many_records


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_input_is_a_clear_4xx(http, log_lines, case):
    status, error, words, details = BAD[case]
    r = post(http, badinput.CASES[case])
    assert r.status_code == status, r.get_data(as_text=True)
    assert r.is_json
    answer = r.get_json()
    assert answer["error"] == error
    for word in words:
        assert word in answer["message"]
    assert details.items() <= answer.items()
    assert [line["event"] for line in log_lines] == ["request"]  # never the catch-all 500


GARBAGE = [case for case in badinput.CASES if case.startswith("garbage_")]


@pytest.mark.parametrize("case", GARBAGE)
def test_garbage_never_reaches_the_catch_all(http, log_lines, case):
    r = post(http, badinput.CASES[case])
    assert 400 <= r.status_code < 500 and r.is_json and "error" in r.get_json()
    assert "unhandled_error" not in [line["event"] for line in log_lines]


def test_a_body_over_the_size_limit_is_a_json_413(http):
    r = post(http, badinput.CASES["over_size_limit"])
    assert r.status_code == 413 and r.is_json
    assert r.get_json()["error"] == "request_entity_too_large"
    assert "1 MB" in r.get_json()["message"]


def test_unknown_path_is_a_json_404(http):
    r = http.get("/predictions")
    assert r.status_code == 404 and r.is_json
    assert r.get_json()["error"] == "not_found" and "POST /predict" in r.get_json()["message"]


def test_wrong_method_is_a_json_405(http):
    r = http.get("/predict")
    assert r.status_code == 405 and r.is_json and "POST" in r.headers["Allow"]
    assert r.get_json() == {"error": "method_not_allowed",
                            "message": "GET is not allowed on /predict: use POST"}
    assert http.post("/health").get_json()["error"] == "method_not_allowed"


def test_the_catch_all_answers_a_generic_json_500_and_logs_it(model, log_lines):
    app = service.create_app(model)

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret detail")

    r = app.test_client().get("/boom")
    assert r.status_code == 500 and r.get_json()["error"] == "internal_error"
    assert "secret" not in r.get_data(as_text=True)
    [error] = [line for line in log_lines if line["event"] == "unhandled_error"]
    assert error["level"] == "error" and "secret detail" in error["traceback"]


# --- health, metadata, logs ---------------------------------------------------------------

def test_health(http):
    assert http.get("/health").get_json() == {"status": "ok", "model_version": "7"}


def test_health_is_503_until_the_model_is_loaded(model):
    app = service.create_app(model)
    del app.extensions["model"]
    r = app.test_client().get("/health")
    assert r.status_code == 503 and r.get_json() == {"status": "loading"}


def test_metadata(http, model):
    meta = http.get("/metadata").get_json()
    assert meta["model_version"] == "7" and meta["features"] == FEATURES
    assert meta["classes"] == training.CLASSES and meta["max_batch"] == MAX_BATCH
    assert meta["metrics"] == bundle_of(model)["metadata"]["metrics"]
    assert meta["trained_with"]["scikit-learn"] == sklearn.__version__
    assert meta["model_sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    serving = meta["serving_with"]
    assert set(serving) == {"python", "scikit-learn", "numpy", "scipy", "flask", "gunicorn"}
    assert serving["scikit-learn"] == sklearn.__version__ and serving["flask"]


def test_serving_versions_tolerate_a_missing_package(monkeypatch):
    monkeypatch.setattr(service, "SERVING_PACKAGES", ["scikit-learn", "no-such-package"])
    assert service.serving_versions()["no-such-package"] is None


def test_each_request_logs_one_json_line(http, log_lines):
    post(http, [SETOSA, VIRGINICA])
    post(http, {"petal_lenght": 1})
    http.get("/health")
    ok, bad, health = log_lines
    assert ok["event"] == "request" and ok["level"] == "info" and ok["pid"] == os.getpid()
    assert {k: ok[k] for k in ("method", "path", "status", "records")} == {
        "method": "POST", "path": "/predict", "status": 200, "records": 2}
    assert isinstance(ok["duration_ms"], float) and ok["ts"].endswith("+00:00")
    assert bad["status"] == 422 and "records" not in bad
    assert health["path"] == "/health" and "records" not in health


def test_model_loaded_is_logged(model, log_lines):
    service.create_app(model)
    [loaded] = log_lines
    assert loaded["event"] == "model_loaded" and loaded["model_version"] == "7"
    assert loaded["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()[:12]
    assert loaded["load_seconds"] >= 0


def test_log_level_is_respected(model, log_lines, monkeypatch):
    monkeypatch.setenv("LOG_LEVEL", "warning")
    post(service.create_app(model).test_client(), SETOSA)
    assert log_lines == []


def test_settings_come_from_the_environment(model, monkeypatch):
    monkeypatch.setenv("MODEL_PATH", str(model))
    monkeypatch.setenv("MAX_BATCH", "1")
    http = service.create_app().test_client()
    assert http.get("/metadata").get_json()["max_batch"] == 1
    assert post(http, [SETOSA, SETOSA]).status_code == 413


@pytest.mark.parametrize("name, value", [("MAX_BATCH", "lots"), ("MAX_BATCH", "0"),
                                         ("LOG_LEVEL", "chatty")])
def test_a_bad_setting_is_refused(model, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(service.ModelRejected) as refused:
        service.create_app(model)
    assert refused.value.reason == "bad_setting" and name in refused.value.message


# --- the prediction cache and the bearer token ---------------------------------------------
# A real Redis serves the cache in tests/test_compose.py; here a dict stands in for it.

class FakeRedis:
    """The two Redis calls the cache makes, on a dict; `down` makes them fail like Redis."""

    def __init__(self):
        self.data, self.ttl, self.down = {}, {}, False

    def get(self, key):
        if self.down:
            raise ConnectionError("Error 111 connecting to redis:6379. Connection refused.")
        return self.data.get(key)

    def set(self, key, value, ex=None):
        if self.down:
            raise ConnectionError("Error 111 connecting to redis:6379. Connection refused.")
        self.data[key], self.ttl[key] = value.encode(), ex


def test_a_repeated_request_is_served_from_the_cache(model):
    fake = FakeRedis()
    http = service.create_app(model, cache_client=fake).test_client()
    first, second = post(http, [SETOSA, VIRGINICA]), post(http, [SETOSA, VIRGINICA])
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("miss", "hit")
    assert first.get_json() == second.get_json()
    [key] = fake.data
    assert key.startswith("predict:" + hashlib.sha256(model.read_bytes()).hexdigest()[:16])
    assert fake.ttl[key] == service.DEFAULT_CACHE_TTL


def test_the_cache_key_ignores_how_the_json_was_written(model):
    http = service.create_app(model, cache_client=FakeRedis()).test_client()
    post(http, SETOSA)
    reordered = json.dumps(dict(reversed(list(SETOSA.items())))).replace(" ", "")
    assert post(http, reordered).headers["X-Cache"] == "hit"
    assert post(http, VIRGINICA).headers["X-Cache"] == "miss"


def test_a_cached_answer_is_never_served_for_another_model(model, tmp_path):
    fake = FakeRedis()
    post(service.create_app(model, cache_client=fake).test_client(), SETOSA)
    other = tmp_path / "other.skops"
    training.train(other, model_version="8")
    assert post(service.create_app(other, cache_client=fake).test_client(),
                SETOSA).headers["X-Cache"] == "miss"


def test_a_dead_cache_is_logged_once_and_predictions_go_on(model, log_lines):
    fake = FakeRedis()
    http = service.create_app(model, cache_client=fake).test_client()
    fake.down = True
    answers = [post(http, SETOSA) for _ in range(3)]
    assert [a.status_code for a in answers] == [200] * 3
    assert {a.headers["X-Cache"] for a in answers} == {"error"}
    assert answers[0].get_json()["predictions"][0]["label"] == "setosa"
    assert [ln["event"] for ln in log_lines].count("cache_unavailable") == 1
    fake.down = False
    assert post(http, SETOSA).headers["X-Cache"] == "miss"
    assert "cache_available" in [ln["event"] for ln in log_lines]


def test_no_redis_url_means_no_cache(http):
    answer = post(http, SETOSA)
    assert answer.headers["X-Cache"] == "off" and http.get("/metadata").get_json()["cache"] is None


def test_a_redis_url_with_a_password_is_never_logged(model, monkeypatch, log_lines):
    monkeypatch.setenv("REDIS_URL", "redis://:hunter2@127.0.0.1:9/0")  # nothing listens on 9
    http = service.create_app(model).test_client()
    assert post(http, SETOSA).headers["X-Cache"] == "error"
    assert "hunter2" not in json.dumps(log_lines) and "***@" in json.dumps(log_lines)


def test_a_bad_redis_url_is_refused(model, monkeypatch):
    monkeypatch.setenv("REDIS_URL", "http://redis:6379")
    with pytest.raises(service.ModelRejected) as refused_start:
        service.create_app(model)
    assert refused_start.value.reason == "bad_setting" and "REDIS_URL" in refused_start.value.message


def test_a_token_file_makes_predict_ask_for_the_token(model, tmp_path, monkeypatch):
    secret = tmp_path / "api_token"
    secret.write_text("s3cret-token\n")
    monkeypatch.setenv("API_TOKEN_FILE", str(secret))
    http = service.create_app(model).test_client()
    for header in [{}, {"Authorization": "Bearer wrong"}]:
        answer = post(http, SETOSA, headers=header)
        assert answer.status_code == 401 and answer.get_json()["error"] == "unauthorized"
        assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert post(http, SETOSA, headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
    assert http.get("/health").status_code == 200  # health checks need no token
    assert http.get("/metadata").get_json()["token_required"] is True


@pytest.mark.parametrize("content", [None, ""], ids=["missing", "empty"])
def test_an_unusable_token_file_is_refused(model, tmp_path, monkeypatch, content):
    secret = tmp_path / "api_token"
    if content is not None:
        secret.write_text(content)
    monkeypatch.setenv("API_TOKEN_FILE", str(secret))
    with pytest.raises(service.ModelRejected) as refused_start:
        service.create_app(model)
    assert refused_start.value.reason == "bad_setting"
    assert "API_TOKEN_FILE" in refused_start.value.message


# --- refusals: one error line, SystemExit(3), no traceback --------------------------------

def refused(path, log_lines):
    """create_app(path) must refuse: return its message, after checking the exit and the log."""
    with pytest.raises(service.ModelRejected) as caught:
        service.create_app(path)
    assert isinstance(caught.value, SystemExit) and caught.value.code == service.EXIT_REFUSED
    [line] = log_lines  # ONE line, and it says the same thing
    assert line["level"] == "error" and line["event"] == "model_refused"
    assert line["message"] == caught.value.message and line["reason"] == caught.value.reason
    return caught.value


def test_refuses_a_model_from_another_scikit_learn(model, tmp_path, log_lines):
    bundle = bundle_of(model)
    bundle["metadata"]["trained_with"]["scikit-learn"] = "1.5.0"
    error = refused(save(tmp_path / "old.skops", bundle, digest=True), log_lines)
    assert error.reason == "version_mismatch"
    assert error.message == (f"model trained with scikit-learn 1.5.0 but this image serves "
                             f"{sklearn.__version__}: retrain with train.py in this image, or "
                             "pin scikit-learn==1.5.0")


def test_refuses_a_file_changed_after_training(model, tmp_path, log_lines):
    changed = tmp_path / "model.skops"
    changed.write_bytes(model.read_bytes() + b"\0")
    training.sidecar(changed).write_text(training.sidecar(model).read_text())
    error = refused(changed, log_lines)
    assert error.reason == "digest_mismatch" and "model.skops.sha256 expects" in error.message


def test_refuses_a_digest_other_than_model_sha256(model, log_lines, monkeypatch):
    monkeypatch.setenv("MODEL_SHA256", "ab" * 32)
    error = refused(model, log_lines)
    assert error.reason == "digest_mismatch"
    assert "MODEL_SHA256 expects abababababab" in error.message


def test_model_sha256_is_accepted_when_it_matches(model, tmp_path, monkeypatch):
    copy = tmp_path / "model.skops"
    copy.write_bytes(model.read_bytes())  # no sidecar: the variable alone is checked
    monkeypatch.setenv("MODEL_SHA256", hashlib.sha256(copy.read_bytes()).hexdigest().upper())
    assert service.create_app(copy).test_client().get("/health").status_code == 200


def test_refuses_an_empty_sidecar(model, tmp_path, log_lines):
    copy = tmp_path / "model.skops"
    copy.write_bytes(model.read_bytes())
    training.sidecar(copy).write_text("")
    assert refused(copy, log_lines).reason == "digest_mismatch"


def test_refuses_untrusted_types(model, tmp_path, log_lines):
    bundle = bundle_of(model)
    bundle["metadata"]["hook"] = eval  # skops records it as a type to import: never trusted
    error = refused(save(tmp_path / "evil.skops", bundle, digest=True), log_lines)
    assert error.reason == "untrusted_types" and "builtins.eval" in error.message


def test_refuses_a_joblib_pickle(tmp_path, log_lines):
    path = tmp_path / "model.joblib"
    training.train(path, fmt="joblib")  # with a matching sidecar: the digest is not the issue
    error = refused(path, log_lines)
    assert error.reason == "not_skops" and "pickle" in error.message


def test_refuses_a_zip_that_is_not_skops(tmp_path, log_lines):
    path = tmp_path / "model.skops"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("hello.txt", "hi")
    assert refused(path, log_lines).reason == "not_skops"


@pytest.mark.parametrize("shape", ["bare pipeline", "metadata without trained_with"])
def test_refuses_a_skops_file_that_is_not_a_bundle(model, tmp_path, log_lines, shape):
    bundle = bundle_of(model)
    del bundle["metadata"]["trained_with"]
    path = save(tmp_path / "odd.skops", bundle if "metadata" in shape else bundle["pipeline"])
    assert refused(path, log_lines).reason == "not_a_bundle"


def test_refuses_a_missing_file(tmp_path, log_lines):
    error = refused(tmp_path / "nowhere.skops", log_lines)
    assert error.reason == "missing_file"
    assert "nowhere.skops" in error.message and "python train.py" in error.message


def old_model(model, tmp_path):
    bundle = bundle_of(model)
    bundle["metadata"]["trained_with"]["scikit-learn"] = "1.5.0"
    return save(tmp_path / "old.skops", bundle)


def test_a_refusal_exits_3_without_a_traceback(model, tmp_path):
    run = subprocess.run([sys.executable, "-c", "import app; app.create_app()"], cwd=APP_DIR,
                         env=run_env(MODEL_PATH=old_model(model, tmp_path)),
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == service.EXIT_REFUSED and run.stderr == ""
    [line] = run.stdout.splitlines()
    assert json.loads(line)["reason"] == "version_mismatch"


# --- real gunicorn on 127.0.0.1 -------------------------------------------------------------

@pytest.fixture
def server(model, tmp_path):
    """gunicorn with 2 workers; yields (base url, process, log file); always stopped."""
    log_path = tmp_path / "gunicorn.log"
    with gunicorn_server(model, log_path, WORKERS=2) as (url, process):
        yield url, process, log_path


def test_gunicorn_serves_with_a_preloaded_model(server):
    url, process, log_path = server
    with urllib.request.urlopen(f"{url}/health", timeout=5) as r:
        assert r.status == 200 and json.load(r)["status"] == "ok"
    body = json.dumps([SETOSA, VIRGINICA]).encode()
    request = urllib.request.Request(f"{url}/predict", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as r:
        assert [p["label"] for p in json.load(r)["predictions"]] == ["setosa", "virginica"]
    # SIGTERM, as `docker stop` sends: graceful, the workers finish what they are sending.
    # (SIGINT, gunicorn's quick shutdown, can cut a worker off inside its last write: a
    # SystemExit traceback in the log on a busy machine, seen in CI.)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=15)
    lines = log_path.read_text().splitlines()
    events = [json.loads(line) for line in lines if line.startswith("{")]
    # preload_app: loaded once, in the master; the workers (other pids) answer the requests.
    [loaded] = [e for e in events if e["event"] == "model_loaded"]
    assert loaded["pid"] == process.pid
    served = [e for e in events if e["event"] == "request"]
    assert [e["path"] for e in served][-2:] == ["/health", "/predict"]
    assert process.pid not in {e["pid"] for e in served}
    assert "Traceback" not in "\n".join(lines)
    assert any("Booting worker" in line for line in lines)  # gunicorn's own log is on stdout


def test_gunicorn_refuses_an_old_model_quickly_and_clearly(model, tmp_path):
    started = time.monotonic()
    run = subprocess.run([str(BIN / "gunicorn"), "--config", "gunicorn.conf.py",
                          "--bind", f"127.0.0.1:{free_port()}", "app:create_app()"],
                         cwd=APP_DIR, capture_output=True, text=True, timeout=20,
                         env=run_env(MODEL_PATH=old_model(model, tmp_path), WORKERS=2))
    assert time.monotonic() - started < 20
    assert run.returncode == service.EXIT_REFUSED
    output = run.stdout + run.stderr
    assert "Traceback" not in output
    [line] = output.splitlines()
    assert json.loads(line)["message"].startswith("model trained with scikit-learn 1.5.0 but")


# --- pins -----------------------------------------------------------------------------------

def pins(path):
    """{name: version} of a requirements file's `name==version` lines."""
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return dict(line.split("==") for line in lines if line)


def test_requirements_are_pinned_like_the_wheelhouse():
    requirements = pins(APP_DIR / "requirements.txt")
    assert set(requirements) == {"flask", "gunicorn", "scikit-learn", "skops", "redis"}
    wheelhouse = pins(ROOT / "docker" / "wheelhouse.txt")
    assert {name: wheelhouse.get(name) for name in requirements} == requirements


def test_the_host_runs_the_pinned_scikit_learn_and_skops():
    requirements = pins(APP_DIR / "requirements.txt")
    for name in ("scikit-learn", "skops"):
        assert metadata.version(name) == requirements[name], name
