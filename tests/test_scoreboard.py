"""Lesson 11's scoreboard (workbook/scoreboard.py): its logic on made-up boards, then one real run."""

import json

import pytest

from workbook import badinput, scoreboard, stacks

SETOSA = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


ALL = (len(badinput.CASES), len(badinput.CASES))  # every bad body sent, every one refused


def row(name, kind="framework", size=400e6, start=2.0, p50=0.003, rps=300.0, memory=150e6,
        same=True, uid=1000, hardened="yes", bad=ALL, features=None, protocol="records"):
    """A scoreboard row with the figures that matter here."""
    return {"name": name, "title": name.title(), "kind": kind, "protocol": protocol, "bytes": size, "times_bound": size / 200e6,
            "efficiency": 0.99, "packages": 100, "advisories": 0, "labels": [], "same_labels": same,
            "uid": uid, "hardened": hardened, "throughput": rps, "memory_idle": memory / 2,
            "memory_load": memory, "latency": {"p50": p50, "p99": 2 * p50},
            "starts": {"first 200": {"median": start}, "healthy": {"median": start + 1}},
            "bad_input": {str(i): 422 if i < bad[0] else 200 for i in range(bad[1])},
            "features": features or {"OpenAPI schema": None, "Prometheus metrics on the service port": None}}


BOARD = {"bound": 200e6, "rows": [
    row("production", "hand-written", size=450e6, start=1.5),
    row("traced", "floor", size=210e6, start=1.4, rps=280),
    row("fastapi", size=455e6, start=2.5, p50=0.002, rps=500, features={"OpenAPI schema": "/openapi.json",
                                                                          "Prometheus metrics on the service port": None}),
    row("mlserver", size=650e6, start=6.0, bad=(20, 30), protocol="v2",
        features={"OpenAPI schema": "/v2/docs/dataplane.json", "Prometheus metrics on the service port": "/metrics"}),
    row("wrong", size=100e6, start=0.5, same=False),
]}


def test_a_stack_with_other_labels_is_never_ranked():
    assert [r["name"] for r in scoreboard.ranked(BOARD)] == ["traced", "production", "fastapi", "mlserver"]
    assert [r["name"] for r in scoreboard.unranked(BOARD)] == ["wrong"]
    _, rows = scoreboard.table(BOARD)
    assert [r[0] for r in rows] == [1, 2, 3, 4, "—"] and "not ranked" in rows[-1][1]


def test_the_decision_table_is_computed_from_the_figures():
    table = {need: (title, kind, cost) for need, title, kind, cost in scoreboard.decisions(BOARD)}
    assert table["predictions only, smallest image"][0] == "Traced"  # never the unranked 100 MB one
    assert table["predictions only, quickest start"][0] == "Traced"
    assert table["most requests/s at 8 clients"][0] == "Fastapi"
    assert table["an OpenAPI schema served for you"][:2] == ("Fastapi", "framework")
    assert table["an OpenAPI schema served for you"][2] == "2.17× the size, 1.79× the start of traced"
    assert table["Prometheus metrics on the service port"][0] == "Mlserver"
    assert table["every bad body refused with a 4xx"][0] == "Traced"
    assert table["the V2 inference protocol (KServe, Triton clients)"][0] == "Mlserver"


def test_a_root_or_fragile_image_is_not_a_choice():
    board = {"bound": 1, "rows": [row("a", "hand-written", size=1), row("b", uid=0, size=2),
                                  row("c", hardened="no", size=3), row("d", size=4)]}
    picks = {need: title for need, title, _, _ in scoreboard.decisions(board)}
    assert picks["predictions only, smallest image"] == "A"
    assert picks["an OpenAPI schema served for you"] == "none of them"


@pytest.mark.parametrize("protocol", ["records", "wrapped", "v2"])
def test_not_json_is_sent_as_it_is(protocol):
    path, raw = stacks.bad_payload(protocol, b"{sepal_length: 5.1}")
    assert raw == b"{sepal_length: 5.1}" and path == stacks.payload(protocol, [])[0]


def test_bad_bodies_are_said_in_each_protocol():
    body = json.dumps({**SETOSA, "petal_length": -1.4}).encode()
    assert stacks.bad_payload("records", body) == ("/predict", body)
    assert json.loads(stacks.bad_payload("wrapped", body)[1]) == {"records": [{**SETOSA, "petal_length": -1.4}]}
    assert json.loads(stacks.bad_payload("wrapped", b"3")[1]) == {"records": 3}
    path, raw = stacks.bad_payload("v2", body)
    tensor = json.loads(raw)["inputs"][0]
    assert path == "/v2/models/iris/infer" and tensor["shape"] == [1, 4] and tensor["data"][2] == -1.4
    # a missing feature is a row too short; an unknown one has no place in a tensor
    short = json.loads(stacks.bad_payload("v2", json.dumps({"sepal_length": 5.1, "sepal_width": 3.5}).encode())[1])
    assert short["inputs"][0]["shape"] == [1, 2]
    assert stacks.bad_payload("v2", json.dumps({**SETOSA, "colour": "blue"}).encode()) is None


def test_the_30_flowers_are_ten_of_each_species():
    flowers = stacks.flowers()
    assert len(flowers) == 30 and list(flowers[0]) == stacks.FEATURES


def test_writes_are_the_folders_a_container_added_to():
    class Box:  # what docker-py's Container.diff() returns: Kind 0 changed, 1 added, 2 deleted
        def diff(self):
            return [{"Path": "/tmp", "Kind": 0}, {"Path": "/tmp/prometheus-x1", "Kind": 1},
                    {"Path": "/tmp/prometheus-x1/a.db", "Kind": 1}, {"Path": "/home/appuser/.cache", "Kind": 1},
                    {"Path": "/etc/hostname", "Kind": 0}, {"Path": "/app/old", "Kind": 2}]
    assert scoreboard.writes(Box()) == ["/home/appuser", "/tmp"]
