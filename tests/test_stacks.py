"""The serving stacks (docker/stacks/): each built offline from its own wheel set, non-root,
health-checked, and giving the production image's labels for the same 30 flowers."""

import pytest
from packaging.utils import canonicalize_name
from sklearn.datasets import load_iris

from workbook import service, stacks, wheelhouse

# Every 5th flower of the iris data: 30 flowers, 10 of each species.
FLOWERS = [dict(zip(stacks.FEATURES, map(float, row))) for row in load_iris().data[::5]]
SETOSA = FLOWERS[0]
# Bad records that app.py answers with a 4xx (tests/test_app.py's BAD has them all).
BAD_RECORDS = {
    "missing": {"sepal_length": 5.1, "sepal_width": 3.5},
    "extra": {**SETOSA, "colour": "blue"},
    "string": {**SETOSA, "petal_width": "0.2"},
    "negative": {**SETOSA, "petal_length": -1.4},
    "empty_list": [],
}


def version(stack, name):
    """The version a stack pins `name` at (packaging's Version)."""
    return next(v for n, v in stacks.pins(stack) if n == name)


def test_every_stack_pins_each_package_exactly_once():
    main = {canonicalize_name(ln.split("==")[0]): ln.split("==")[1]
            for ln in wheelhouse.pinned(service.APP / "requirements.txt")}
    for stack in stacks.STACKS.values():
        assert (stack.folder / "Dockerfile").is_file(), stack.name
        lines = wheelhouse.pinned(stack.folder / "requirements.txt")
        assert all("==" in ln for ln in lines), f"{stack.name}: every requirement pinned exactly"
        names = [n for n, _ in stacks.pins(stack)]
        assert len(names) == len(set(names)) == len(lines), f"{stack.name}: one version per package"
        # The model loads only with the scikit-learn that trained it (app.py refuses others).
        assert str(version(stack, "scikit-learn")) == main["scikit-learn"], stack.name


def test_the_stacks_sets_differ_where_the_frameworks_need_it():
    """MLServer 1.7.1 needs an older FastAPI and protobuf < 7: its own set, not the main one."""
    mlserver, fastapi = stacks.STACKS["mlserver"], stacks.STACKS["fastapi"]
    assert version(mlserver, "fastapi") < version(fastapi, "fastapi")
    assert version(mlserver, "protobuf").major < 7
    main = [ln for ln in wheelhouse.pinned() if ln.startswith("protobuf==")]
    assert main and int(main[0].split("==")[1].split(".")[0]) >= 7  # the main wheelhouse's (onnx)


@pytest.fixture(scope="module")
def stack_images(client):
    """Every stack's image, built once per run (kept like the ladder)."""
    return {name: stacks.build(client, stack) for name, stack in stacks.STACKS.items()}


@pytest.fixture(scope="module")
def expected(client, production):
    """What the production image (Flask + gunicorn) says of the 30 flowers."""
    box = service.run(client, production.id, "tests-stacks")
    try:
        service.wait_ready(box)
        status, body = service.call(box, "/predict", FLOWERS)
        assert status == 200
        return [p["label"] for p in body["predictions"]]
    finally:
        box.remove(force=True)


def post(url, payload=None, raw=None):
    """The HTTP status of a POST of JSON (or of `raw` bytes, sent as JSON)."""
    return service.call(url, "", payload, raw=raw)[0]


@pytest.mark.parametrize("name", list(stacks.STACKS))
def test_stack_serves_the_same_labels_non_root_and_healthy(client, stack_images, expected, name):
    stack, image = stacks.STACKS[name], stack_images[name]
    assert image.attrs["Config"]["Healthcheck"]["Test"], "a HEALTHCHECK"
    box = service.run(client, image.id, "tests-stacks")
    try:
        service.wait_ready(box, path=stack.health, timeout=90)
        url = service.url(box)
        assert stacks.ask(stack, url, FLOWERS) == expected
        uid = box.exec_run(["cat", "/proc/1/status"]).output.decode().split("Uid:")[1].split()[0]
        assert uid != "0", "PID 1 runs as a user, not root"
        assert service.wait_healthy(box, timeout=60) >= 0  # Docker's own probe says healthy
        if stack.protocol != "v2":
            for case, body in BAD_RECORDS.items():
                if stack.protocol == "wrapped":
                    body = {"records": body if isinstance(body, list) else [body]}
                assert 400 <= post(url + "/predict", body) < 500, case
            # A body that is not JSON: LitServe parses it itself, outside decode_request, and
            # its error becomes a 500 (app.py: 400). The scoreboard counts it.
            assert post(url + "/predict", raw=b"{sepal_length: 5.1}") == (500 if name == "litserve" else 422
                                                                          if name == "fastapi" else 400)
        else:  # the V2 protocol: a request that is not one is refused by MLServer's own schema ...
            infer = url + "/v2/models/iris/infer"
            assert 400 <= post(infer, {"tensors": []}) < 500
            # ... but the values are not checked: a tensor of the wrong shape reaches scikit-learn,
            # whose error is a 500, and a negative length is predicted (app.py: 422 for both).
            assert post(infer, {"inputs": [{"name": "flowers", "shape": [1, 3], "datatype": "FP64",
                                            "data": [5.1, 3.5, 1.4]}]}) == 500
            assert post(infer, {"inputs": [{"name": "flowers", "shape": [1, 4], "datatype": "FP64",
                                            "data": [5.1, 3.5, -1.4, 0.2]}]}) == 200
        box.stop(timeout=10)  # docker stop: the stop signal, then SIGKILL after 10 s
        box.reload()
        assert box.attrs["State"]["ExitCode"] != 137, "it stops on docker stop's signal, not killed"
    finally:
        box.remove(force=True)
