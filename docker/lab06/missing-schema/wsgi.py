"""gunicorn entry point: the model service, its features checked against schema.py."""

from app import create_app
from schema import check_features

application = create_app()
check_features(application.extensions["model"]["metadata"]["features"])
