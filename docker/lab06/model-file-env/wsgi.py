"""gunicorn entry point of a deployment told which file in /app/models it serves."""

import os

from app import create_app

application = create_app(os.path.join("/app/models", os.environ["MODEL_FILE"]))
