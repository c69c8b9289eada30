"""A batch job: score ROWS random flowers with the model, write one JSON line each to OUTPUT."""

import json
import os
import random
from pathlib import Path

from app import load_model

rows = int(os.environ.get("ROWS", "1000"))
output = Path(os.environ.get("OUTPUT", "/data/predictions.jsonl"))
pipeline, meta, _ = load_model(Path(os.environ["MODEL_PATH"]))
rng = random.Random(0)
flowers = [[round(rng.uniform(0.1, 8.0), 1) for _ in meta["features"]] for _ in range(rows)]
labels = pipeline.predict(flowers)
with output.open("w") as out:
    for flower, label in zip(flowers, labels):
        record = dict(zip(meta["features"], flower))
        out.write(json.dumps({**record, "label": meta["classes"][int(label)]}) + "\n")
print(f"wrote {rows} predictions to {output} ({output.stat().st_size} bytes)")
