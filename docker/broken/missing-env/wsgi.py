"""gunicorn entry point of a deployment that must be told where its models are (MODEL_DIR)."""

import os
from pathlib import Path

from app import create_app

# No default on purpose: each deployment says which model directory it serves.
application = create_app(Path(os.environ["MODEL_DIR"]) / "model.skops")
