"""The features the service must be trained on, in order."""

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def check_features(features):
    """Refuse a model trained on other features than FEATURES."""
    if list(features) != FEATURES:
        raise SystemExit(f"model features {features} are not {FEATURES}")
