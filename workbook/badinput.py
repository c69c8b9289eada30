"""Bodies the model service must refuse with a clear 4xx: raw bytes, to send over HTTP too."""

import json

from .service import SAMPLES

SETOSA = dict(SAMPLES[0][0])
MAX_BATCH = 100  # what "too_many_records" exceeds: app.py's default, so the images refuse it too
MAX_BODY_BYTES = 1_000_000  # docker/app/app.py's MAX_BODY_BYTES (tests/test_app.py checks)


def with_value(name, raw):
    """SETOSA as JSON text, with feature `name` written as the raw JSON text `raw`."""
    parts = [f'"{k}": {raw if k == name else json.dumps(v)}' for k, v in SETOSA.items()]
    return "{" + ", ".join(parts) + "}"


BAD = {  # id -> body; tests/test_app.py holds what the service must answer to each
    "not_json": "{sepal_length: 5.1}",
    "empty_body": "",
    "deep_nesting": "[" * 100_000 + "]" * 100_000,
    "a_number": "3",
    "a_string": '"setosa"',
    "null": "null",
    "empty_list": "[]",
    "item_not_object": json.dumps([SETOSA, [5.1, 3.5, 1.4, 0.2]]),
    "missing": json.dumps({"sepal_length": 5.1, "sepal_width": 3.5}),
    "misspelled": json.dumps(SETOSA).replace("petal_length", "petal_lenght"),
    "extra": json.dumps({**SETOSA, "colour": "blue"}),
    "string": with_value("petal_width", '"0.2"'),
    "true": with_value("petal_width", "true"),
    "false": with_value("sepal_length", "false"),
    "null_value": with_value("petal_width", "null"),
    "list_value": with_value("petal_width", "[0.2]"),
    "object_value": with_value("petal_width", '{"cm": 0.2}'),
    "nan": with_value("sepal_width", "NaN"),
    "infinity": with_value("sepal_width", "Infinity"),
    "minus_infinity": with_value("sepal_width", "-Infinity"),
    "1e999": with_value("petal_length", "1e999"),
    "huge_integer": with_value("petal_length", "9" * 400),
    # Finite, but it would overflow in the scaler: the model must never see it.
    "1e308": with_value("petal_length", "1e308"),
    "negative": with_value("petal_length", "-1.4"),
    "batch_names_index": json.dumps([SETOSA, SETOSA, {**SETOSA, "sepal_length": "5.1"}]),
    "too_many_records": json.dumps([SETOSA] * (MAX_BATCH + 1)),
}
# Bodies that are not even close: any 4xx will do, never the catch-all 500.
GARBAGE = [b"\xff\xfe\x00", b"{", b"[{}]", b'{"": 1}', b"[[], {}]", b'{"sepal_length": {}}',
           json.dumps([SETOSA] * 1000).encode(), b"1e999", b"\x00" * 10, b'"\\ud800"']

CASES = {
    **{case: body.encode() for case, body in BAD.items()},
    **{f"garbage_{i}": body for i, body in enumerate(GARBAGE)},
    "over_size_limit": b" " * (MAX_BODY_BYTES + 1),
}
