"""Train the iris classifier and save it as ONE model file, plus a SHA-256 sidecar.

    python train.py [--out models/model.skops] [--model-version 1] [--format skops|joblib]

The file holds {"pipeline": <fitted Pipeline>, "metadata": {...}}. The metadata travels
with the model, so the service can check what it is about to serve: the features and
classes it expects, its test metrics, and the library versions that trained it.
Training is deterministic (fixed seeds), and so are the bytes of the skops file: the object
ids skops records (and names array files after) are numbered in order, and its zip members
get a fixed timestamp. The same training gives the same file and the same `<out>.sha256`, so a
fresh checkout's `COPY . .` still finds its layers in Docker's build cache.
"""

import argparse
import hashlib
import io
import platform
import re
import zipfile
from pathlib import Path

import joblib
import numpy as np
import sklearn
import skops.io as sio
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]  # in cm
CLASSES = ["setosa", "versicolor", "virginica"]
SEED = 42
DEFAULT_OUT = Path(__file__).resolve().parent / "models" / "model.skops"


def train(out, model_version="1", fmt="skops"):
    """Fit, evaluate and save the pipeline (and its .sha256 sidecar); return its metadata."""
    iris = load_iris()  # ships with scikit-learn: no download
    assert list(iris.target_names) == CLASSES, iris.target_names
    x_train, x_test, y_train, y_test = train_test_split(
        iris.data, iris.target, test_size=0.3, stratify=iris.target, random_state=SEED)
    pipeline = Pipeline([
        ("scale", StandardScaler()),
        ("classify", LogisticRegression(max_iter=1000, random_state=SEED)),
    ]).fit(x_train, y_train)
    predicted = pipeline.predict(x_test)
    metadata = {
        "model_version": str(model_version),
        "features": FEATURES,
        "classes": CLASSES,
        "metrics": {
            "accuracy": round(float(accuracy_score(y_test, predicted)), 4),
            "f1_macro": round(float(f1_score(y_test, predicted, average="macro")), 4),
            "n_train": len(y_train),
            "n_test": len(y_test),
        },
        # The service refuses a model trained with another scikit-learn (see app.py).
        "trained_with": {
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    bundle = {"pipeline": pipeline, "metadata": metadata}
    if fmt == "skops":
        out.write_bytes(reproducible(sio.dumps(bundle)))
    elif fmt == "joblib":
        # joblib is pickle: loading the file runs whatever code it names. Written here only
        # to show that the service refuses it; never load a pickle you did not make.
        joblib.dump(bundle, out)
    else:
        raise ValueError(f"unknown format {fmt!r}: use 'skops' or 'joblib'")
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    sidecar(out).write_text(f"{digest}  {out.name}\n")  # the format of `sha256sum`
    return metadata


def reproducible(archive):
    """A skops archive's bytes with object ids and member names numbered in order, and fixed timestamps."""
    src = zipfile.ZipFile(io.BytesIO(archive))
    numbered = [i.filename for i in src.infolist() if re.fullmatch(r"\d+\.\w+", i.filename)]
    names = {old: f"{n}{Path(old).suffix}" for n, old in enumerate(numbered)}
    schema = src.read("schema.json").decode()
    for old, new in names.items():
        assert schema.count(f'"{old}"') == 1, old  # each array file is named once, by its node
        schema = schema.replace(f'"{old}"', f'"{new}"')
    ids = {}  # "__id__": an object's id(), which repeated references share: number them in order
    schema = re.sub(r'"__id__": (\d+)', lambda m: f'"__id__": {ids.setdefault(m[1], len(ids))}', schema)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(names.get(info.filename, info.filename), (1980, 1, 1, 0, 0, 0))
            fixed.compress_type, fixed.external_attr = info.compress_type, info.external_attr
            data = schema.encode() if info.filename == "schema.json" else src.read(info)
            dst.writestr(fixed, data)
    return out.getvalue()


def sidecar(path):
    """The digest file that goes with a model file: <name>.sha256 beside it."""
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def main(argv=None):
    """Command line: train, save, print a short report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="model file to write (default: models/model.skops next to train.py)")
    parser.add_argument("--model-version", default="1",
                        help="version string served by /health and /metadata (default: 1)")
    parser.add_argument("--format", choices=["skops", "joblib"], default="skops",
                        help="skops (default, safe to load) or joblib: pickle, which runs code "
                             "when loaded; kept only to show why the service refuses it")
    args = parser.parse_args(argv)
    meta = train(args.out, args.model_version, args.format)
    m = meta["metrics"]
    print(f"trained StandardScaler + LogisticRegression on {m['n_train']} iris flowers")
    print(f"held-out test set ({m['n_test']} flowers): "
          f"accuracy {m['accuracy']:.3f}, macro F1 {m['f1_macro']:.3f}")
    print(f"saved {args.out} ({args.format}, {args.out.stat().st_size / 1000:.1f} kB, "
          f"model_version {meta['model_version']}) and {sidecar(args.out).name}")


if __name__ == "__main__":
    main()
