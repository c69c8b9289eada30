"""The model every framework stack serves: train.py's skops bundle, loaded and asked alike.

Copied into each stack's build context (workbook/stacks.py), so that every stack gives the
same answer for the same flower: label, class index, probabilities rounded as app.py does.
"""

import os

import numpy as np
import skops.io as sio

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
MAX_BATCH = 100


class Model:
    """The pipeline and metadata of a model file made by docker/app/train.py."""

    def __init__(self, path=None):
        path = path or os.environ.get("MODEL_PATH", "models/model.skops")
        bundle = sio.load(path)  # skops's default trusted types only, as app.py
        self.pipeline, self.meta = bundle["pipeline"], bundle["metadata"]
        self.version = self.meta["model_version"]

    def predict(self, rows):
        """Label, class index and class probabilities of rows in FEATURES order."""
        x = np.array(rows, dtype=float)
        classes = self.meta["classes"]
        return [{"label": classes[int(i)], "class_index": int(i),
                 "probabilities": {c: round(float(p), 6) for c, p in zip(classes, probs)}}
                for i, probs in zip(self.pipeline.predict(x), self.pipeline.predict_proba(x))]
