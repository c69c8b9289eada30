"""The ONNX variant of the model service: convert.py, app.py's onnxruntime path, Dockerfile.onnx.

Host tests (no Docker): a model trained into a temporary folder is converted with convert.py
and served through create_app, beside the same model served by scikit-learn: the answers must
be the same (labels identical, probabilities within TOLERANCE after the service's rounding),
and so must the errors. Engine tests build docker/app/Dockerfile.onnx as
workbook/app:onnx-tests (owner "tests-onnx", removed at the end of the module).
"""

import hashlib
import json
import math
import statistics
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import skops.io as sio

from appmodules import APP_DIR, gunicorn_server, load, run_env
from workbook import badinput, resources
from workbook import service as wb_service

ROOT = Path(__file__).resolve().parents[1]
# Largest |ONNX - scikit-learn| allowed for a served probability (both rounded to 6 decimals
# by the service). Measured: 0 on the iris flowers and 6,000 random rows (float64 input).
TOLERANCE = 1e-6
OWNER = "tests-onnx"
IMAGE = "workbook/app:onnx"  # shared with lesson 08: built once per run, kept (label ladder)
NOT_IN_THE_IMAGE = ["sklearn", "scipy", "skops", "joblib"]

service = load("app")
training = load("train")
converting = load("convert")
FEATURES = training.FEATURES
SETOSA = dict(zip(FEATURES, [5.1, 3.5, 1.4, 0.2]))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """(skops model from train.py, model_version 7; its ONNX conversion, with sidecars)."""
    folder = tmp_path_factory.mktemp("onnx-models")
    skops_path = folder / "model.skops"
    training.train(skops_path, model_version="7")
    converting.convert(skops_path, folder / "model.onnx")
    return skops_path, folder / "model.onnx"


@pytest.fixture(scope="module")
def apps(models):
    """The scikit-learn service and the ONNX service around the same model (test clients)."""
    skops_path, onnx_path = models
    return (service.create_app(skops_path, max_batch=200).test_client(),
            service.create_app(onnx_path, max_batch=200).test_client())


def check_rows():
    """The iris flowers, the lesson's samples and random rows over the accepted range."""
    from sklearn.datasets import load_iris
    rng = np.random.default_rng(7)
    rows = np.vstack([load_iris().data, rng.uniform(0, 10, (1000, 4)),
                      rng.uniform(0, 1000, (200, 4))])
    return [dict(zip(FEATURES, map(float, row))) for row in rows] + [r for r, _ in
                                                                      wb_service.SAMPLES]


def predict_all(client, records, batch=200):
    """Every record's prediction from a Flask test client, in batches of `batch`."""
    out = []
    for i in range(0, len(records), batch):
        r = client.post("/predict", json=records[i:i + batch])
        assert r.status_code == 200, r.get_data(as_text=True)
        out += r.get_json()["predictions"]
    return out


def max_difference(a, b):
    """Largest |difference| between the probabilities of two lists of predictions."""
    return max(abs(p["probabilities"][c] - q["probabilities"][c])
               for p, q in zip(a, b) for c in p["probabilities"])


def refused(path, log_lines, **kw):
    """create_app(path) must refuse with one JSON line and exit code 3; return the error."""
    with pytest.raises(service.ModelRejected) as caught:
        service.create_app(path, **kw)
    assert isinstance(caught.value, SystemExit) and caught.value.code == service.EXIT_REFUSED
    [line] = log_lines
    assert line["event"] == "model_refused" and line["message"] == caught.value.message
    return caught.value


def write_onnx(model_proto, path, sidecar=True):
    """Save an edited ONNX model (and a matching .sha256)."""
    path.write_bytes(model_proto.SerializeToString())
    if sidecar:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        path.with_name(path.name + ".sha256").write_text(f"{digest}  {path.name}\n")
    return path


# --- convert.py ------------------------------------------------------------------------------

def test_convert_writes_the_model_its_metadata_and_a_sidecar(models):
    skops_path, onnx_path = models
    model = onnx.load(onnx_path)
    props = {p.key: p.value for p in model.metadata_props}
    meta = json.loads(props[service.ONNX_METADATA_KEY])
    trained = sio.load(skops_path, trusted=[])["metadata"]
    assert {k: meta[k] for k in trained} == trained
    assert meta["converted_with"]["skl2onnx"] and meta["converted_with"]["onnx"] == onnx.__version__
    digest = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    assert onnx_path.with_name("model.onnx.sha256").read_text() == f"{digest}  model.onnx\n"
    # float64 in, label and a probability tensor out (no ZipMap's list of dicts)
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    assert [(i.type, i.shape[1]) for i in session.get_inputs()] == [("tensor(double)", 4)]
    assert [o.type for o in session.get_outputs()] == ["tensor(int64)", "tensor(double)"]


def test_convert_checks_the_conversion_and_reports(models, tmp_path, capsys):
    skops_path, _ = models
    assert converting.main(["--model", str(skops_path), "--out", str(tmp_path / "m.onnx")]) == 0
    out = capsys.readouterr().out
    assert "float64 input" in out and "same labels" in out and "m.onnx.sha256" in out
    report = converting.convert(skops_path, tmp_path / "again.onnx")
    assert report["max_probability_difference"] <= converting.TOLERANCE


def test_convert_refuses_a_skops_file_that_does_not_match_its_sidecar(models, tmp_path, capsys):
    skops_path, _ = models
    copy = tmp_path / "model.skops"
    copy.write_bytes(skops_path.read_bytes())
    copy.with_name("model.skops.sha256").write_text("0" * 64 + "  model.skops\n")
    assert converting.main(["--model", str(copy), "--out", str(tmp_path / "m.onnx")]) == 1
    assert "does not match" in capsys.readouterr().err and not (tmp_path / "m.onnx").exists()


# --- the same answers as the scikit-learn service ------------------------------------------

def test_predictions_equal_scikit_learns_within_the_tolerance(apps):
    sklearn_app, onnx_app = apps
    records = check_rows()
    expected, got = predict_all(sklearn_app, records), predict_all(onnx_app, records)
    assert [p["label"] for p in got] == [p["label"] for p in expected]
    assert [p["class_index"] for p in got] == [p["class_index"] for p in expected]
    difference = max_difference(got, expected)
    print(f"max |ONNX - scikit-learn| over {len(records)} rows, after rounding: {difference:g}")
    assert difference <= TOLERANCE


def test_the_samples_get_the_same_json(apps):
    sklearn_app, onnx_app = apps
    body = [r for r, _ in wb_service.SAMPLES]
    a, b = (c.post("/predict", json=body).get_json() for c in apps)
    assert [p["label"] for p in b["predictions"]] == [label for _, label in wb_service.SAMPLES]
    assert max_difference(a["predictions"], b["predictions"]) <= TOLERANCE
    assert a["model_version"] == b["model_version"] == "7"


def test_health_and_metadata(apps, models):
    sklearn_app, onnx_app = apps
    assert onnx_app.get("/health").get_json() == {"status": "ok", "model_version": "7"}
    a, b = sklearn_app.get("/metadata").get_json(), onnx_app.get("/metadata").get_json()
    for key in ("model_version", "features", "classes", "metrics", "trained_with", "max_batch",
                "cache", "token_required"):
        assert a[key] == b[key], key
    assert b["runtime"] == f"onnxruntime {onnxruntime.__version__}"
    assert b["serving_with"]["onnxruntime"] == onnxruntime.__version__
    assert b["converted_with"]["onnx"] == onnx.__version__
    assert b["model_sha256"] == hashlib.sha256(models[1].read_bytes()).hexdigest()
    # the skops answer is unchanged: no runtime key (lessons 03 and 04 show it as it was)
    assert "runtime" not in a and "converted_with" not in a and "onnxruntime" not in a[
        "serving_with"]


# Every bad body of test_app, but "too_many_records": its 4 records are a batch these apps
# accept (max_batch 200); garbage_6's 1000 are not.
BAD_BODIES = {case: body for case, body in badinput.CASES.items() if case != "too_many_records"}


@pytest.mark.parametrize("case", BAD_BODIES, ids=list(BAD_BODIES))
def test_bad_input_gets_the_same_4xx_json(apps, case):
    answers = [c.post("/predict", data=BAD_BODIES[case], content_type="application/json")
               for c in apps]
    (a, b) = [(r.status_code, r.get_json()) for r in answers]
    assert 400 <= a[0] < 500 and a == b


def test_other_errors_are_the_same(apps):
    for path, method in (("/nope", "get"), ("/predict", "get"), ("/health", "post")):
        a, b = [getattr(c, method)(path) for c in apps]
        assert (a.status_code, a.get_json()) == (b.status_code, b.get_json())


# --- refusals ----------------------------------------------------------------------------------

def test_refuses_a_missing_onnx_file(tmp_path, log_lines):
    error = refused(tmp_path / "model.onnx", log_lines)
    assert error.reason == "missing_file" and "python convert.py" in error.message


def test_refuses_an_onnx_file_changed_after_conversion(models, tmp_path, log_lines):
    changed = tmp_path / "model.onnx"
    changed.write_bytes(models[1].read_bytes() + b"\0")
    changed.with_name("model.onnx.sha256").write_text(
        models[1].with_name("model.onnx.sha256").read_text())
    assert refused(changed, log_lines).reason == "digest_mismatch"


def test_refuses_a_digest_other_than_model_sha256(models, log_lines):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MODEL_SHA256", "ab" * 32)
        error = refused(models[1], log_lines)
    assert error.reason == "digest_mismatch" and "MODEL_SHA256" in error.message


@pytest.mark.parametrize("content", [b"", b"not an onnx model", b"PK\x03\x04 a zip?"],
                         ids=["empty", "text", "zip_header"])
def test_refuses_a_file_that_is_not_onnx(tmp_path, log_lines, content):
    path = tmp_path / "model.onnx"
    path.write_bytes(content)
    error = refused(path, log_lines)
    assert error.reason == "not_onnx" and "convert.py" in error.message
    assert "\n" not in error.message


def test_refuses_a_skops_file_named_onnx(models, tmp_path, log_lines):
    path = tmp_path / "model.onnx"
    path.write_bytes(models[0].read_bytes())
    assert refused(path, log_lines).reason == "not_onnx"


def test_refuses_an_onnx_model_without_the_metadata(models, tmp_path, log_lines):
    model = onnx.load(models[1])
    del model.metadata_props[:]
    error = refused(write_onnx(model, tmp_path / "model.onnx"), log_lines)
    assert error.reason == "not_a_bundle" and service.ONNX_METADATA_KEY in error.message


def test_refuses_an_onnx_model_with_a_zipmap_output(models, tmp_path, log_lines):
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    bundle = sio.load(models[0], trusted=[])
    # (float32: onnxruntime's ZipMap takes no float64, one more reason convert.py turns it off)
    model = to_onnx(bundle["pipeline"], initial_types=[("input", FloatTensorType([None, 4]))])
    entry = model.metadata_props.add()
    entry.key, entry.value = service.ONNX_METADATA_KEY, json.dumps(bundle["metadata"])
    assert refused(write_onnx(model, tmp_path / "model.onnx"), log_lines).reason == "not_a_bundle"


def test_an_onnx_model_needs_no_particular_scikit_learn(models, tmp_path):
    model = onnx.load(models[1])
    [entry] = [p for p in model.metadata_props if p.key == service.ONNX_METADATA_KEY]
    meta = json.loads(entry.value)
    meta["trained_with"]["scikit-learn"] = "1.5.0"
    entry.value = json.dumps(meta)
    app = service.create_app(write_onnx(model, tmp_path / "model.onnx"))
    assert app.test_client().post("/predict", json=SETOSA).status_code == 200


def test_refuses_an_onnx_model_when_onnxruntime_is_missing(models, log_lines, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import raises ImportError
    error = refused(models[1], log_lines)
    assert error.reason == "missing_runtime" and "Dockerfile.onnx" in error.message


# --- no scikit-learn needed; real gunicorn ------------------------------------------------------

BLOCK = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)")
sys.meta_path.insert(0, Block())
"""


def test_the_onnx_path_runs_without_scikit_learn_scipy_skops_joblib(models):
    blocked = set(NOT_IN_THE_IMAGE)
    code = BLOCK.format(blocked=blocked) + f"""
import json, app
client = app.create_app().test_client()
answer = client.post("/predict", json={SETOSA!r}).get_json()
meta = client.get("/metadata").get_json()
print(json.dumps([answer["predictions"][0]["label"], meta["runtime"],
                  sorted(m for m in sys.modules if m.split(".")[0] in {blocked!r})]))
"""
    run = subprocess.run([sys.executable, "-c", code], cwd=APP_DIR, capture_output=True,
                         text=True, timeout=60, env=run_env(MODEL_PATH=models[1]))
    assert run.returncode == 0, run.stderr
    label, runtime, loaded = json.loads(run.stdout.splitlines()[-1])
    assert label == "setosa" and runtime.startswith("onnxruntime ") and loaded == []


def test_the_skops_path_still_needs_scikit_learn_and_says_so(models):
    code = BLOCK.format(blocked={"sklearn"}) + "import app\napp.create_app()\n"
    run = subprocess.run([sys.executable, "-c", code], cwd=APP_DIR, capture_output=True,
                         text=True, timeout=60, env=run_env(MODEL_PATH=models[0]))
    assert run.returncode != 0 and "sklearn" in run.stderr  # the import, at load time


def test_gunicorn_serves_the_onnx_model_from_forked_workers(models, tmp_path):
    """preload_app: the session is made in the master, then used by 2 forked workers."""
    log_path = tmp_path / "gunicorn.log"
    with gunicorn_server(models[1], log_path, WORKERS=2) as (url, process):
        body = json.dumps([r for r, _ in wb_service.SAMPLES]).encode()
        for _ in range(20):  # enough to reach both workers
            request = urllib.request.Request(f"{url}/predict", data=body,
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=5) as r:
                labels = [p["label"] for p in json.load(r)["predictions"]]
            assert labels == [label for _, label in wb_service.SAMPLES]
    lines = log_path.read_text().splitlines()
    events = [json.loads(line) for line in lines if line.startswith("{")]
    [loaded] = [e for e in events if e["event"] == "model_loaded"]
    assert loaded["pid"] == process.pid
    assert "Traceback" not in "\n".join(lines)


def test_requirements_are_pinned_like_the_wheelhouse():
    def pins(path):
        lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
        return dict(line.split("==") for line in lines if line)
    wheelhouse = pins(ROOT / "docker" / "wheelhouse.txt")
    runtime = pins(APP_DIR / "requirements-onnx.txt")
    convert = pins(APP_DIR / "requirements-convert.txt")
    for requirements in (runtime, convert):
        assert {name: wheelhouse.get(name) for name in requirements} == requirements
    assert not {"scikit-learn", "scipy", "skops", "joblib"} & set(runtime)
    assert {"onnxruntime", "skl2onnx", "onnx", "scikit-learn"} <= set(convert)
    # the host runs what the images run
    assert onnxruntime.__version__ == runtime["onnxruntime"] == convert["onnxruntime"]


def test_the_onnx_variant_is_not_a_ladder_rung():
    assert "onnx" in wb_service.VARIANTS and "onnx" not in wb_service.LADDER
    assert {k: v for k, v in wb_service.VARIANTS.items() if k != "onnx"} == wb_service.LADDER


# --- the image ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def onnx_image(client):
    """workbook/app:onnx from Dockerfile.onnx (the lessons' own); the tests' containers go at the end."""
    try:
        yield wb_service.build(client, "onnx", log="none")
    finally:
        resources.cleanup(client, OWNER)


@pytest.fixture(scope="module")
def api(client, onnx_image):
    """The ONNX service running, published on 127.0.0.1."""
    container = wb_service.run(client, IMAGE, OWNER)
    try:
        wb_service.wait_ready(container)
        yield container
    finally:
        container.remove(force=True)


def in_image(client, command):
    """Run a command in the image; return (exit code, output)."""
    container = client.containers.run(IMAGE, command, detach=True,
                                      labels=resources.labels(OWNER))
    try:
        code = container.wait(timeout=60)["StatusCode"]
        return code, container.logs().decode()
    finally:
        container.remove(force=True)


def test_the_image_has_no_scikit_learn_scipy_skops_joblib(client, onnx_image):
    # No pip in the image (trimmed like minimal): ask the distributions' metadata instead.
    code, out = in_image(client, ["python", "-c", "import importlib.metadata as m; print("
                                  "'\\n'.join(d.metadata['Name'] for d in m.distributions()))"])
    installed = {line.strip().lower() for line in out.split()}
    assert code == 0 and "onnxruntime" in installed
    assert not installed & {"scikit-learn", "scipy", "skops", "joblib", "threadpoolctl",
                            "skl2onnx", "onnx", "pip", "setuptools"}
    for module in NOT_IN_THE_IMAGE:
        code, out = in_image(client, ["python", "-c", f"import {module}"])
        assert code == 1 and "ModuleNotFoundError" in out, module
    code, out = in_image(client, ["ls", "/app/models"])
    assert out.split() == ["model.onnx", "model.onnx.sha256"]
    assert onnx_image.attrs["Config"]["User"] == "1000:1000"
    assert onnx_image.attrs["Config"]["Env"].count("MODEL_PATH=/app/models/model.onnx") == 1


def test_the_image_answers_like_scikit_learn(client, api):
    labels, body = wb_service.predictions(api)
    assert labels == [label for _, label in wb_service.SAMPLES]
    pipeline = sio.load(wb_service.MODEL, trusted=[])["pipeline"]
    expected = pipeline.predict_proba(np.array([[r[f] for f in FEATURES]
                                                for r, _ in wb_service.SAMPLES]))
    got = np.array([list(p["probabilities"].values()) for p in body["predictions"]])
    assert np.abs(got - expected).max() <= TOLERANCE  # ≤ 5e-7 of rounding, plus float error
    meta = wb_service.call(api, "/metadata")[1]
    assert meta["runtime"] == "onnxruntime 1.32.0"
    assert meta["serving_with"]["scikit-learn"] is None and meta["serving_with"]["scipy"] is None


def test_the_image_rejects_bad_input_like_the_scikit_learn_service(api):
    host = service.create_app(wb_service.MODEL).test_client()  # max_batch 100, as in the image
    for case in ("not_json", "missing", "misspelled", "string", "nan", "1e308", "batch_names_index"):
        status, body = wb_service.call(api, "/predict", raw=BAD_BODIES[case])
        r = host.post("/predict", data=BAD_BODIES[case], content_type="application/json")
        assert (status, body) == (r.status_code, r.get_json()), case
    status, body = wb_service.call(api, "/predict", [SETOSA] * 101)
    assert status == 413 and body["error"] == "batch_too_large"


def test_the_image_is_healthy_and_refuses_a_missing_model(client, api):
    assert wb_service.wait_healthy(api) < 30
    container = wb_service.run(client, IMAGE, OWNER,
                               env={"MODEL_PATH": "/app/models/missing.onnx"})
    try:
        assert container.wait(timeout=60)["StatusCode"] == 3
        [line] = container.logs().decode().splitlines()
        assert json.loads(line)["reason"] == "missing_file"
    finally:
        container.remove(force=True)


def test_size_and_start_time_against_production_and_minimal(client, onnx_image):
    sizes = {"onnx": onnx_image.attrs["Size"]}
    for rung in ("production", "minimal"):  # read only: never built here
        try:
            sizes[rung] = client.images.get(wb_service.tag(rung)).attrs["Size"]
        except Exception:  # not built on this engine yet
            pass
    starts = []
    for _ in range(3):
        container = wb_service.run(client, IMAGE, OWNER)
        try:
            starts.append(wb_service.wait_ready(container))
        finally:
            container.remove(force=True)
    print("sizes (MB): " + ", ".join(f"{k} {v / 1e6:.1f}" for k, v in sizes.items()))
    print(f"first /health 200 after run: min {min(starts):.2f} s, "
          f"median {statistics.median(starts):.2f} s")
    if "production" in sizes:
        assert sizes["onnx"] < sizes["production"]
    assert math.isfinite(statistics.median(starts))
