"""The iris model behind FastAPI + uvicorn: app.py's endpoints and records, checked by pydantic.

FastAPI refuses an invalid body with its own codes and messages, not app.py's
(tests/test_stacks.py).
"""

from typing import Annotated, Union

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt

from iris import FEATURES, MAX_BATCH, Model

# A length in cm: a JSON number (not a string, not a boolean), finite, 0-1000 (app.py's range).
Length = Annotated[Union[StrictInt, StrictFloat], Field(ge=0, le=1000, allow_inf_nan=False)]


class Record(BaseModel):
    """One flower; an unknown or missing feature is a 422, as in app.py."""

    model_config = ConfigDict(extra="forbid")
    sepal_length: Length
    sepal_width: Length
    petal_length: Length
    petal_width: Length


model = Model()
app = FastAPI(title="iris (FastAPI)")


@app.get("/health")
def health():
    """200 once the model is loaded (it is loaded before the server starts)."""
    return {"status": "ok", "model_version": model.version}


@app.post("/predict")
def predict(body: Union[Record, Annotated[list[Record], Field(min_length=1, max_length=MAX_BATCH)]]):
    """One record or a list of records, as app.py takes them."""
    records = body if isinstance(body, list) else [body]
    rows = [[getattr(r, f) for f in FEATURES] for r in records]
    return {"model_version": model.version, "predictions": model.predict(rows)}
