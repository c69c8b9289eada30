"""The iris model as a BentoML service (bentoml serve service:Iris)."""

import bentoml
from bentoml.exceptions import InvalidArgument

from iris import FEATURES, MAX_BATCH, Model


@bentoml.service(http={"port": 5000})
class Iris:
    """One model per worker, loaded when the worker starts."""

    def __init__(self):
        self.model = Model()

    @bentoml.api(route="/predict")
    def predict(self, records: list[dict]) -> dict:
        """A list of 1-100 records {sepal_length, sepal_width, petal_length, petal_width}."""
        if not records or len(records) > MAX_BATCH or not all(
                sorted(r) == sorted(FEATURES) and all(type(r[f]) in (int, float) and 0 <= r[f] <= 1000
                                                      for f in FEATURES) for r in records):
            raise InvalidArgument(f"send 1-{MAX_BATCH} records with the numbers {', '.join(FEATURES)}")
        return {"model_version": self.model.version,
                "predictions": self.model.predict([[r[f] for f in FEATURES] for r in records])}
