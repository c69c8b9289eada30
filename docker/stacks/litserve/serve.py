"""The iris model behind LitServe (Lightning AI's serving layer on FastAPI + uvicorn)."""

import litserve as ls
from fastapi import HTTPException

from iris import FEATURES, MAX_BATCH, Model


class IrisAPI(ls.LitAPI):
    """setup() loads the model once per worker; predict() answers one request."""

    def setup(self, device):
        self.model = Model()

    def decode_request(self, request):
        records = request if isinstance(request, list) else [request]
        if not records or len(records) > MAX_BATCH or not all(
                isinstance(r, dict) and sorted(r) == sorted(FEATURES)
                and all(type(r[f]) in (int, float) and 0 <= r[f] <= 1000 for f in FEATURES)
                for r in records):
            raise HTTPException(422, f"send one record or a list of 1-{MAX_BATCH} records with "
                                     f"the numbers {', '.join(FEATURES)} (cm, 0-1000)")
        return [[r[f] for f in FEATURES] for r in records]

    def predict(self, rows):
        return self.model.predict(rows)

    def encode_response(self, predictions):
        return {"model_version": self.model.version, "predictions": predictions}


if __name__ == "__main__":
    ls.LitServer(IrisAPI(), accelerator="cpu", healthcheck_path="/health",
                 workers_per_device=1).run(host="0.0.0.0", port=5000, generate_client_file=False)
