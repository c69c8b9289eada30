"""The iris model service: a small Flask app around one scikit-learn pipeline saved with skops
(or the same pipeline converted to ONNX by convert.py, then served with onnxruntime).

Run it with gunicorn (settings in gunicorn.conf.py):

    gunicorn --config gunicorn.conf.py 'app:create_app()'

Environment variables:
    MODEL_PATH    the .skops file (default: models/model.skops next to this file), or a .onnx
                  file made by convert.py: onnxruntime serves it, and scikit-learn, scipy and
                  skops need not be installed (docker/app/Dockerfile.onnx)
    MODEL_SHA256  the file's expected SHA-256 (optional; else a <model>.sha256 file is used)
    MAX_BATCH     most records per /predict request (default 100)
    LOG_LEVEL     debug, info, warning or error (default info)
    REDIS_URL     e.g. redis://redis:6379/0: cache predictions there (default: no cache)
    CACHE_TTL     seconds a cached prediction is kept (default 3600)
    API_TOKEN_FILE  a file holding a token /predict then requires as `Authorization: Bearer`
                    (a Docker or Kubernetes secret; API_TOKEN sets it directly, less safely)

Endpoints: GET /health, GET /metadata, POST /predict (one record or a list of records).
/predict answers with a header X-Cache: hit, miss, off (no REDIS_URL) or error (Redis did
not answer: the prediction is computed anyway).
A model that cannot be served safely is refused at startup: one JSON log line says what
is wrong and what to do, and the process exits with code 3, without a traceback.
"""

import difflib
import hashlib
import hmac
import json
import logging
import math
import os
import platform
import re
import socket
import sys
import time
import traceback
import zipfile
from datetime import datetime, timezone
from importlib import metadata as package_metadata
from pathlib import Path

import numpy as np
from flask import Flask, g, jsonify, request
from werkzeug.exceptions import HTTPException

DEFAULT_MODEL = Path(__file__).resolve().parent / "models" / "model.skops"
DEFAULT_MAX_BATCH = 100
DEFAULT_CACHE_TTL = 3600
# A cache that does not answer within this must not slow predictions down.
CACHE_TIMEOUT_S = 0.25
MAX_BODY_BYTES = 1_000_000
# Accepted feature values, in cm: wider than any flower. Larger finite numbers would
# overflow float64 in the scaler and turn into a 500 instead of a clear 4xx.
VALUE_RANGE = (0.0, 1000.0)
# Types this file may contain beyond those skops trusts by default (builtins, numpy arrays,
# scikit-learn estimators). `skops.io.get_untrusted_types(file="models/model.skops")` lists
# none for our pipeline; a file that names any other type (a custom class, a function such
# as eval) is refused. Review a type before adding it here: trusting it lets the file run it.
TRUSTED = []
# Exit code of a refused start. 3 is also gunicorn's "worker failed to boot": if a worker
# (not the master) refuses, gunicorn stops instead of restarting the worker forever.
EXIT_REFUSED = 3
METADATA_KEYS = {"model_version", "features", "classes", "metrics", "trained_with"}
SERVING_PACKAGES = ["scikit-learn", "numpy", "scipy", "flask", "gunicorn"]
# An ONNX model made by convert.py carries train.py's metadata as JSON under this key of its
# metadata_props (the file has no room for a Python dict beside the graph).
ONNX_METADATA_KEY = "workbook.metadata"

log = logging.getLogger("model_service")


class ModelRejected(SystemExit):
    """The model (or a setting) cannot be served; already logged. Exits with EXIT_REFUSED."""

    def __init__(self, reason, message):
        super().__init__(EXIT_REFUSED)  # SystemExit: Python exits quietly, no traceback
        self.reason, self.message = reason, message


class BadInput(Exception):
    """A request the service will not predict on: becomes a 4xx JSON error."""

    def __init__(self, status, error, message, **details):
        super().__init__(message)
        self.status, self.body = status, {"error": error, "message": message, **details}


class JsonFormatter(logging.Formatter):
    """Format a log record as one JSON line."""

    def format(self, record):
        """ts, level, event, pid, then the record's own fields."""
        ts = datetime.fromtimestamp(record.created, timezone.utc)
        line = {"ts": ts.isoformat(timespec="milliseconds"), "level": record.levelname.lower(),
                "event": record.getMessage(), "pid": record.process}
        line.update(getattr(record, "fields", {}))
        return json.dumps(line, default=str)


def emit(level, event, **fields):
    """Log one structured line."""
    log.log(level, event, extra={"fields": fields})


def configure_logging(level):
    """Send this service's log lines to stdout as JSON, at the given level."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    log.handlers[:] = [handler]  # replace, so that calling create_app twice does not log twice
    log.propagate = False
    number = logging.getLevelName(level.upper())  # a name it does not know gives a string
    log.setLevel(number if isinstance(number, int) else logging.INFO)
    if not isinstance(number, int):
        reject("bad_setting", f"LOG_LEVEL={level!r} is not a level: use debug, info, "
                              "warning or error")


def reject(reason, message, model_path=None):
    """Log why the service refuses to start, then exit (raise ModelRejected)."""
    emit(logging.ERROR, "model_refused", reason=reason, message=message,
         model_path=model_path and str(model_path))
    raise ModelRejected(reason, message)


def checked_bytes(path, expected_sha256=None):
    """The file's bytes and SHA-256, checked against MODEL_SHA256 or the sidecar, or reject it.

    The model is then loaded from these same bytes: no swap between check and load.
    """
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    sidecar = path.with_name(path.name + ".sha256")
    if expected_sha256:
        expected, source = expected_sha256.strip().lower(), "MODEL_SHA256"
    elif sidecar.is_file():
        expected, source = (sidecar.read_text().split() or [""])[0].lower(), sidecar.name
    else:
        expected = source = None
    if source and digest != expected:
        reject("digest_mismatch", f"{path.name} has SHA-256 {digest[:12]}… but {source} expects "
                                  f"{expected[:12] or 'nothing'}…: the file is damaged or was "
                                  "replaced; copy the model with its .sha256 again, or retrain",
               path)
    return data, digest


def load_model(path, expected_sha256=None):
    """Check and load a model file; return (pipeline, metadata, sha256) or reject it.

    A path ending in .onnx goes to load_onnx (onnxruntime). Anything else must be a skops
    file, loaded with scikit-learn and skops, imported only then: the ONNX image has neither.
    """
    if path.suffix.lower() == ".onnx":
        return load_onnx(path, expected_sha256)
    if not path.is_file():
        reject("missing_file", f"no model file at {path}: train one with `python train.py "
                               f"--out {path}`, or set MODEL_PATH to an existing .skops file",
               path)
    data, digest = checked_bytes(path, expected_sha256)
    import sklearn  # here, not at the top: the ONNX image has no scikit-learn
    import skops.io as sio
    if not zipfile.is_zipfile(path):
        reject("not_skops", f"{path.name} is not a skops file (a pickle or joblib file?): this "
                            "service only loads skops files, which cannot run code when loaded; "
                            "save the model with `python train.py` (skops is the default)", path)
    try:
        untrusted = sorted(set(sio.get_untrusted_types(data=data)) - set(TRUSTED))
        if untrusted:
            reject("untrusted_types", f"{path.name} contains types this service does not trust: "
                                      f"{', '.join(untrusted)}; loading them could run code. "
                                      "Serve a model made by train.py, or review these types "
                                      "and add them to TRUSTED in app.py", path)
        bundle = sio.loads(data, trusted=TRUSTED)
    except Exception as error:  # a zip that is not a skops dump, or one too old or too new
        reject("not_skops", f"{path.name} cannot be loaded as a skops file ({error}): retrain "
                            "with `python train.py` in this image", path)
    meta = bundle.get("metadata") if isinstance(bundle, dict) else None
    if not (isinstance(meta, dict) and METADATA_KEYS <= meta.keys() and "pipeline" in bundle
            and isinstance(meta["trained_with"], dict)):
        reject("not_a_bundle", f"{path.name} is a skops file but not a model from train.py: "
                               "expected {'pipeline': ..., 'metadata': {...}}", path)
    trained = meta["trained_with"].get("scikit-learn")
    if trained != sklearn.__version__:
        reject("version_mismatch", f"model trained with scikit-learn {trained} but this image "
                                   f"serves {sklearn.__version__}: retrain with train.py in this "
                                   f"image, or pin scikit-learn=={trained}", path)
    return bundle["pipeline"], meta, digest


class OnnxModel:
    """A pipeline converted by convert.py, run by onnxruntime: one input, label + probabilities."""

    def __init__(self, session):
        self.session = session
        self.input = session.get_inputs()[0]
        # float64 in, like scikit-learn (convert.py's choice; float32 would shift the 6th decimal)
        self.dtype = np.float32 if self.input.type == "tensor(float)" else np.float64

    def run(self, rows):
        """(class indices, class probabilities) of rows of floats in feature order."""
        x = np.array(rows, dtype=self.dtype)
        labels, probabilities = self.session.run(None, {self.input.name: x})
        return labels, probabilities


def load_onnx(path, expected_sha256=None):
    """Check and load an ONNX model made by convert.py; return (model, metadata, sha256)."""
    if not path.is_file():
        reject("missing_file", f"no model file at {path}: convert one with `python convert.py "
                               f"--model models/model.skops --out {path}`, or set MODEL_PATH to "
                               "an existing .onnx file", path)
    data, digest = checked_bytes(path, expected_sha256)
    try:
        import onnxruntime as ort  # only the ONNX image (requirements-onnx.txt) has it
    except ImportError:
        reject("missing_runtime", f"{path.name} is an ONNX model but onnxruntime is not "
                                  "installed here: serve the .skops file, or build "
                                  "Dockerfile.onnx", path)
    options = ort.SessionOptions()
    # One thread, no pool: gunicorn forks its workers after the model is loaded (preload_app),
    # and a thread pool does not survive a fork; one iris row needs no parallelism anyway.
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: its warnings are not JSON log lines
    try:  # parses the protobuf; an ONNX file holds a graph of operators, no code to run
        session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        reject("not_onnx", f"{path.name} cannot be loaded as an ONNX model ({first}): convert "
                           "the skops model with `python convert.py`", path)
    try:
        meta = json.loads(session.get_modelmeta().custom_metadata_map[ONNX_METADATA_KEY])
    except (KeyError, ValueError):
        meta = None
    outputs = [o.type for o in session.get_outputs()]
    inputs = session.get_inputs()
    if not (isinstance(meta, dict) and METADATA_KEYS <= meta.keys()
            and isinstance(meta["trained_with"], dict) and len(inputs) == 1
            and inputs[0].type in ("tensor(double)", "tensor(float)")
            and inputs[0].shape[-1:] == [len(meta["features"])]
            and outputs[:1] == ["tensor(int64)"] and len(outputs) == 2
            and outputs[1] in ("tensor(double)", "tensor(float)")):
        reject("not_a_bundle", f"{path.name} is an ONNX model but not one from convert.py: "
                               f"expected {ONNX_METADATA_KEY!r} in its metadata_props, one input "
                               "of shape [N, features] and outputs (label, probabilities)", path)
    meta["runtime"] = f"onnxruntime {ort.__version__}"
    return OnnxModel(session), meta, digest


def setting(name, default):
    """A positive integer from the environment, or reject it."""
    value = os.environ.get(name) or str(default)
    if not value.isdigit() or int(value) < 1:
        reject("bad_setting", f"{name}={value!r} is not a positive whole number: unset it "
                              f"(default {default}) or set e.g. {name}={default}")
    return int(value)


def read_token():
    """The bearer token /predict requires (API_TOKEN_FILE, else API_TOKEN), or None."""
    path = os.environ.get("API_TOKEN_FILE")
    if path:
        try:
            token = Path(path).read_text().strip()
        except OSError as error:
            reject("bad_setting", f"API_TOKEN_FILE={path!r} cannot be read ({error.strerror}): "
                                  "mount the secret there, or unset API_TOKEN_FILE")
        if not token:
            reject("bad_setting", f"API_TOKEN_FILE={path!r} is empty: put the token in it")
        return token
    return os.environ.get("API_TOKEN") or None


class Cache:
    """Predictions in Redis, keyed by the model's digest and a hash of the validated input."""

    def __init__(self, url, ttl, client=None):
        self.ttl, self.up = ttl, True
        self.url = re.sub(r"//[^@/]*@", "//***@", url or "")  # never log a password
        if client is None:
            import redis  # only needed when a cache is configured
            try:
                client = redis.Redis.from_url(url, socket_timeout=CACHE_TIMEOUT_S,
                                              socket_connect_timeout=CACHE_TIMEOUT_S)
            except ValueError as error:
                reject("bad_setting", f"REDIS_URL={url!r} is not a Redis URL ({error}): use "
                                      "e.g. redis://redis:6379/0, or unset it")
        self.client = client

    @staticmethod
    def key(model_sha256, rows):
        """The same rows for the same model give the same key, whatever the JSON looked like."""
        digest = hashlib.sha256(json.dumps(rows).encode()).hexdigest()
        return f"predict:{model_sha256[:16]}:{digest}"

    def get(self, key):
        """(cached predictions or None, 'hit' | 'miss' | 'error')."""
        try:
            value = self.client.get(key)
        except Exception as error:  # redis.RedisError, OSError: serve without the cache
            return None, self._failed(error)
        self._recovered()
        return (json.loads(value), "hit") if value is not None else (None, "miss")

    def put(self, key, predictions):
        """Store predictions for ttl seconds; a failure is logged, never raised."""
        try:
            self.client.set(key, json.dumps(predictions), ex=self.ttl)
        except Exception as error:
            self._failed(error)

    def _failed(self, error):
        if self.up:  # log the change of state, not every request
            emit(logging.WARNING, "cache_unavailable", url=self.url, error=repr(error))
        self.up = False
        return "error"

    def _recovered(self):
        if not self.up:
            emit(logging.INFO, "cache_available", url=self.url)
        self.up = True


def serving_versions(extra=()):
    """Python and the versions of the serving packages (None when one is not installed)."""
    versions = {"python": platform.python_version()}
    for name in [*SERVING_PACKAGES, *extra]:
        try:
            versions[name] = package_metadata.version(name)
        except package_metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def parse_records(body, features, max_batch):
    """Validate a parsed JSON body; return its records as rows of floats in feature order."""
    batch = isinstance(body, list)
    if not batch and not isinstance(body, dict):
        raise BadInput(400, "not_a_record", "send one record (a JSON object keyed by feature "
                                            "name) or a list of records", expected=features)
    records = body if batch else [body]
    if not records:
        raise BadInput(400, "empty_batch", "the list of records is empty: send at least one")
    if len(records) > max_batch:
        raise BadInput(413, "batch_too_large", f"{len(records)} records in one request; send at "
                                               f"most {max_batch} (MAX_BATCH) per request",
                       max_batch=max_batch)
    rows = []
    for index, record in enumerate(records):
        where = f"record {index}" if batch else "the record"
        at = {"index": index} if batch else {}
        if not isinstance(record, dict):
            raise BadInput(400, "record_not_object", f"{where} is not a JSON object: send "
                                                     f"{{{', '.join(features)}}} as numbers", **at)
        unknown = [name for name in record if name not in features]
        if unknown:
            hints = {name: difflib.get_close_matches(name, features, n=1) for name in unknown}
            hints = {name: match[0] for name, match in hints.items() if match}
            also = "".join(f" (did you mean {hints[n]!r}?)" for n in unknown if n in hints)
            raise BadInput(422, "unknown_features", f"{where} has unknown feature(s) "
                           f"{', '.join(map(repr, unknown))}{also}; the features are "
                           f"{', '.join(features)}", unknown=unknown, did_you_mean=hints, **at)
        missing = [name for name in features if name not in record]
        if missing:
            raise BadInput(422, "missing_features", f"{where} lacks {', '.join(missing)}; every "
                           f"record needs {', '.join(features)}", missing=missing, **at)
        rows.append([number(record[name], name, where, at) for name in features])
    return rows


def number(value, name, where, at):
    """One feature value as a float, or a 422 saying what is wrong with it."""
    # bool is a subclass of int in Python: true would silently become 1.0.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        got = {str: "a string", bool: "a boolean", type(None): "null", list: "a list",
               dict: "an object"}.get(type(value), type(value).__name__)
        raise BadInput(422, "wrong_type", f"{name} in {where} is {got}; send a number "
                       f"(in cm), e.g. {name}: 1.5", feature=name, **at)
    try:
        value = float(value)  # an integer too large for a float raises OverflowError
    except OverflowError:
        value = math.inf
    # Python's json accepts NaN and Infinity, and reads 1e999 as inf.
    if not math.isfinite(value):
        raise BadInput(422, "not_finite", f"{name} in {where} is NaN or infinite; send a "
                       "finite number (in cm)", feature=name, **at)
    low, high = VALUE_RANGE
    if not low <= value <= high:
        raise BadInput(422, "out_of_range", f"{name} in {where} is {value:g}; send a length in "
                       f"cm between {low:g} and {high:g}", feature=name, **at)
    return value


def predict_rows(pipeline, classes, rows):
    """The pipeline's label and class probabilities for each row."""
    if isinstance(pipeline, OnnxModel):
        indices, probabilities = pipeline.run(rows)
    else:
        x = np.array(rows, dtype=float)
        indices = pipeline.predict(x)
        probabilities = pipeline.predict_proba(x)
    # Rounded, so that images with other BLAS builds return the same JSON.
    return [{"label": classes[int(i)], "class_index": int(i),
             "probabilities": {c: round(float(p), 6) for c, p in zip(classes, probs)}}
            for i, probs in zip(indices, probabilities)]


def create_app(model_path=None, max_batch=None, cache_client=None):
    """Build the service around a checked model; raise ModelRejected if it cannot be served."""
    configure_logging(os.environ.get("LOG_LEVEL") or "info")
    model_path = Path(model_path or os.environ.get("MODEL_PATH") or DEFAULT_MODEL)
    max_batch = max_batch or setting("MAX_BATCH", DEFAULT_MAX_BATCH)
    token = read_token()
    redis_url = os.environ.get("REDIS_URL")
    cache = None
    if redis_url or cache_client is not None:
        cache = Cache(redis_url, setting("CACHE_TTL", DEFAULT_CACHE_TTL), cache_client)
    hostname = socket.gethostname()

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES  # larger bodies get a 413
    app.json.sort_keys = False  # keep keys in the order written below

    started = time.perf_counter()
    pipeline, meta, digest = load_model(model_path, os.environ.get("MODEL_SHA256"))
    app.extensions["model"] = {"pipeline": pipeline, "metadata": meta, "sha256": digest}
    emit(logging.INFO, "model_loaded", model_version=meta["model_version"],
         sha256=digest[:12], load_seconds=round(time.perf_counter() - started, 3),
         model_path=str(model_path), max_batch=max_batch, cache=bool(cache),
         token_required=bool(token))

    @app.before_request
    def start_timer():
        """Note when the request started."""
        g.started = time.perf_counter()

    @app.after_request
    def log_request(response):
        """Log one JSON line per request."""
        fields = {"method": request.method, "path": request.path, "status": response.status_code}
        if "records" in g:
            fields["records"] = g.records
        if "cache" in g:
            fields["cache"] = g.cache
        fields["duration_ms"] = round((time.perf_counter() - g.get("started", 0)) * 1000, 2)
        emit(logging.ERROR if response.status_code >= 500 else logging.INFO, "request", **fields)
        return response

    @app.get("/health")
    def health():
        """200 once the model is loaded, else 503."""
        model = app.extensions.get("model")
        if model is None:
            return jsonify(status="loading"), 503
        return jsonify(status="ok", model_version=model["metadata"]["model_version"])

    @app.get("/metadata")
    def metadata():
        """What is served, by what, and how it was trained."""
        model = app.extensions["model"]
        meta = model["metadata"]
        # An ONNX model also says what converted it and what runs it ("runtime" only there:
        # the skops answer stays as lessons 03 and 04 show it).
        onnx = {key: meta[key] for key in ("runtime", "converted_with") if key in meta}
        return jsonify(model_version=meta["model_version"], features=meta["features"],
                       classes=meta["classes"], metrics=meta["metrics"],
                       trained_with=meta["trained_with"],
                       serving_with=serving_versions(["onnxruntime"] if onnx else []),
                       **onnx, model_sha256=model["sha256"], max_batch=max_batch,
                       cache="redis" if cache else None, token_required=bool(token))

    @app.post("/predict")
    def predict():
        """Predict the class of one record or of a list of records."""
        model = app.extensions["model"]
        meta = model["metadata"]
        if token:
            sent = request.headers.get("Authorization", "")
            if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
                raise BadInput(401, "unauthorized", "send the header `Authorization: Bearer "
                               "<token>` with the token this service was given "
                               "(API_TOKEN_FILE)")
        try:
            body = json.loads(request.get_data())
        except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
            raise BadInput(400, "invalid_json", "the body is not valid JSON: send e.g. "
                           '{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, '
                           '"petal_width": 0.2}') from None
        rows = parse_records(body, meta["features"], max_batch)
        g.records = len(rows)
        predictions, g.cache = None, "off"
        if cache:
            key = Cache.key(model["sha256"], rows)
            predictions, g.cache = cache.get(key)
        if predictions is None:
            predictions = predict_rows(model["pipeline"], meta["classes"], rows)
            if g.cache == "miss":
                cache.put(key, predictions)
        response = jsonify(model_version=meta["model_version"], served_by=hostname,
                           predictions=predictions)
        response.headers["X-Cache"] = g.cache
        return response

    @app.errorhandler(BadInput)
    def bad_input(error):
        """A 4xx JSON error for input the service will not predict on."""
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else {}
        return jsonify(error.body), error.status, headers

    @app.errorhandler(HTTPException)
    def http_error(error):
        """404, 405, 413 and other HTTP errors as JSON (headers such as Allow are kept)."""
        message = error.description
        if error.code == 404:
            message = f"no endpoint {request.path}: use GET /health, GET /metadata or POST /predict"
        elif error.code == 405:
            allowed = sorted(set(error.valid_methods or []) - {"HEAD", "OPTIONS"})
            message = f"{request.method} is not allowed on {request.path}: use {allowed[0]}"
        elif error.code == 413:
            message = (f"the body is larger than {MAX_BODY_BYTES / 1e6:g} MB: send fewer records "
                       f"per request (at most {max_batch})")
        response = error.get_response()
        response.set_data(json.dumps({"error": error.name.lower().replace(" ", "_"),
                                      "message": message}))
        response.content_type = "application/json"
        return response

    @app.errorhandler(Exception)
    def unexpected_error(error):
        """Anything else: log it, answer a generic JSON 500 (no details leak to clients)."""
        emit(logging.ERROR, "unhandled_error", path=request.path, error=repr(error),
             traceback=traceback.format_exc())
        return jsonify(error="internal_error", message="the service failed on this request; "
                             "it has been logged"), 500

    return app
