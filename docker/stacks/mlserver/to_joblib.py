"""The builder stage's step: the skops bundle's pipeline, saved as joblib for mlserver-sklearn.

MLServer's scikit-learn runtime loads `model.joblib` with joblib.load, which unpickles: loading
such a file can run any code it carries (lesson 07's pickle demo). Here it is made in the
builder from the skops file (which loads without running code), never taken from elsewhere.
"""

import joblib
import skops.io as sio

bundle = sio.load("models/model.skops")
joblib.dump(bundle["pipeline"], "model.joblib")
print("model.joblib from models/model.skops, model_version", bundle["metadata"]["model_version"])
