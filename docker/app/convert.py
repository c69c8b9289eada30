"""Convert the skops model made by train.py to ONNX, for the onnxruntime image (Dockerfile.onnx).

    python convert.py [--model models/model.skops] [--out models/model.onnx]

The skops file is checked as app.py checks it (its .sha256 sidecar, no type beyond those
skops trusts), converted with skl2onnx, and checked again: the ONNX model must give the
same labels as the pipeline and the same probabilities within TOLERANCE on the iris
flowers and on random inputs over the range the service accepts. Then it is written with
train.py's metadata as JSON in its metadata_props (key "workbook.metadata", read by app.py)
and a `<out>.sha256` sidecar. The input is float64 (DoubleTensorType), like scikit-learn's:
float32 moves probabilities by up to ~2e-6, which the service's 6 decimals would show.
"""

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import skl2onnx
import skops.io as sio
from skl2onnx import to_onnx
from skl2onnx.common.data_types import DoubleTensorType
from sklearn.datasets import load_iris

HERE = Path(__file__).resolve().parent
METADATA_KEY = "workbook.metadata"  # app.py's ONNX_METADATA_KEY
METADATA_KEYS = {"model_version", "features", "classes", "metrics", "trained_with"}
# Largest |ONNX - scikit-learn| allowed for a probability (measured: ~2e-16 in float64).
TOLERANCE = 1e-9
VALUE_RANGE = (0.0, 1000.0)  # app.py's: what the service accepts, in cm
SEED = 42


class ConversionError(Exception):
    """The model cannot be converted faithfully: the build must stop."""


def load_bundle(path):
    """The {"pipeline", "metadata"} bundle of a skops file from train.py, checked like app.py."""
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    sidecar = path.with_name(path.name + ".sha256")
    if sidecar.is_file() and (sidecar.read_text().split() or [""])[0].lower() != digest:
        raise ConversionError(f"{path.name} does not match {sidecar.name}: damaged or replaced")
    untrusted = sio.get_untrusted_types(data=data)
    if untrusted:
        raise ConversionError(f"{path.name} holds types skops does not trust: {untrusted}")
    bundle = sio.loads(data, trusted=[])
    meta = bundle.get("metadata") if isinstance(bundle, dict) else None
    if not (isinstance(meta, dict) and METADATA_KEYS <= meta.keys() and "pipeline" in bundle):
        raise ConversionError(f"{path.name} is not a model from train.py")
    return bundle["pipeline"], meta


def check_inputs(n_features):
    """The iris flowers, plus random rows over the whole range the service accepts."""
    rng = np.random.default_rng(SEED)
    low, high = VALUE_RANGE
    return np.vstack([load_iris().data, rng.uniform(0, 10, (2000, n_features)),
                      rng.uniform(low, high, (500, n_features))])


def convert(model, out):
    """Convert, check and write the ONNX model and its sidecar; return a short report (dict)."""
    pipeline, meta = load_bundle(Path(model))
    n_features = len(meta["features"])
    classifier = pipeline.steps[-1][1]
    # zipmap off: probabilities come out as an [N, classes] tensor, not a list of dicts.
    onx = to_onnx(pipeline, initial_types=[("input", DoubleTensorType([None, n_features]))],
                  options={id(classifier): {"zipmap": False}})
    opsets = {o.domain or "ai.onnx": o.version for o in onx.opset_import}
    meta = {**meta, "converted_with": {"skl2onnx": skl2onnx.__version__,
                                       "onnx": onnx.__version__, "opsets": opsets}}
    onnx.checker.check_model(onx)
    entry = onx.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta)
    data = onx.SerializeToString()

    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    x = check_inputs(n_features)
    labels, probabilities = session.run(None, {"input": x})
    expected = pipeline.predict(x)
    if not np.array_equal(labels, expected):
        raise ConversionError(f"the ONNX model labels {int((labels != expected).sum())} of "
                              f"{len(x)} check rows differently from scikit-learn")
    difference = float(np.abs(probabilities - pipeline.predict_proba(x)).max())
    if difference > TOLERANCE:
        raise ConversionError(f"ONNX probabilities differ from scikit-learn's by up to "
                              f"{difference:.2e} (tolerance {TOLERANCE:.0e})")

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    out.with_name(out.name + ".sha256").write_text(f"{digest}  {out.name}\n")  # sha256sum format
    return {"out": str(out), "bytes": len(data), "sha256": digest, "opsets": opsets,
            "check_rows": len(x), "max_probability_difference": difference,
            "model_version": meta["model_version"]}


def main(argv=None):
    """Command line: convert, check, write, print a short report (exit 1 if not faithful)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=HERE / "models" / "model.skops",
                        help="skops file from train.py (default: models/model.skops)")
    parser.add_argument("--out", type=Path, default=HERE / "models" / "model.onnx",
                        help="ONNX file to write (default: models/model.onnx)")
    args = parser.parse_args(argv)
    try:
        report = convert(args.model, args.out)
    except (ConversionError, OSError) as error:
        print(f"convert.py: {error}", file=sys.stderr)
        return 1
    opsets = ", ".join(f"{domain} {version}" for domain, version in report["opsets"].items())
    print(f"converted {args.model.name} (model_version {report['model_version']}) with skl2onnx "
          f"{skl2onnx.__version__}: float64 input, opsets {opsets}")
    print(f"checked on {report['check_rows']} rows with onnxruntime {ort.__version__}: same "
          f"labels, probabilities within {report['max_probability_difference']:.1e}")
    print(f"saved {report['out']} ({report['bytes'] / 1000:.1f} kB) and "
          f"{Path(report['out']).name}.sha256")
    return 0


if __name__ == "__main__":
    sys.exit(main())
