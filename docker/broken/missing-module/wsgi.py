"""gunicorn entry point: the model service, checked against the feature names in features.py."""

from app import create_app
from features import check_features

application = create_app()
check_features(application.extensions["model"]["metadata"]["features"])
