"""The multi-service stack (docker/compose) on the real engine, through Compose v2.

One stack is brought up for the module: api (x3), dashboard, Redis, nginx. Requests go
through nginx's port on 127.0.0.1 only. Faults (a typo, a taken port, a service that never
becomes healthy) get short messages. The kill-a-replica figure goes to build/bench/.
"""

import json
import shutil
import socket
import threading
import time
from collections import Counter
from urllib.parse import urlparse

import pytest
import yaml

from workbook import WorkbookError, compose, measure, resources, service
from workbook.load import Load

OWNER = "tests-compose"
FLOWER = dict(service.SAMPLES[0][0])


# --- without the engine -------------------------------------------------------------------

def test_short_error_keeps_what_compose_says_is_wrong():
    stderr = ("time=\"2026-11-27T12:00:00Z\" level=warning msg=\"x\"\n"
              f"validating {compose.FILE}: services.api additional properties 'imagee' not allowed\n")
    assert compose.short_error(stderr) == ("validating docker/compose/compose.yaml: services.api "
                                           "additional properties 'imagee' not allowed")
    assert compose.short_error("") == "(no message)"


def test_a_taken_port_is_replaced_by_a_free_one():
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        assert not compose.port_free(taken)
        port, note = compose.pick_port(taken)
        assert port != taken and compose.port_free(port)
        assert note == (f"127.0.0.1:{taken} is taken (bind: address in use), "
                        f"using 127.0.0.1:{port} instead")
    assert compose.pick_port(port) == (port, f"127.0.0.1:{port} is free")


def test_the_stack_publishes_only_nginx_and_only_on_127_0_0_1():
    spec = yaml.safe_load(compose.FILE.read_text())
    published = {name: s["ports"] for name, s in spec["services"].items() if "ports" in s}
    assert list(published) == ["nginx"]
    assert all(p.startswith("127.0.0.1:") for p in published["nginx"])
    assert spec["networks"]["backend"]["internal"] is True
    assert "version" not in spec and not any("container_name" in s for s in spec["services"].values())


# --- the running stack --------------------------------------------------------------------

@pytest.fixture(scope="module")
def stack(client):
    """The stack up and healthy, api scaled to 3; torn down (volumes too) afterwards."""
    compose.prepare()
    project = compose.project(OWNER, client=client, echo=False)
    try:
        project("up", "--detach", "--build", "--scale", "api=3")
        project.wait_healthy(timeout=120, client=client)
        yield project
    finally:
        project.down()
        resources.cleanup(client, OWNER)


def predict(project, flower=FLOWER, timeout=5):
    return service.request(project.url("/api"), "/predict", flower, timeout=timeout)


@pytest.mark.engine
def test_every_service_is_healthy_and_limited(stack, client):
    rows = stack.ps()
    assert sorted(r["Service"] for r in rows) == ["api"] * 3 + ["dashboard", "nginx", "redis"]
    assert {r["Health"] for r in rows} == {"healthy"}
    api = stack.containers("api", client)[0]
    assert api.attrs["HostConfig"]["Memory"] == 512 * 2**20
    assert api.attrs["HostConfig"]["NanoCpus"] == 10**9
    assert api.attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert api.labels["workbook"] == OWNER and api.labels[resources.CREATED_BY] == OWNER


@pytest.mark.engine
def test_nginx_routes_the_api_and_the_dashboard(stack):
    status, body, headers = predict(stack)
    assert status == 200 and body["predictions"][0]["label"] == "setosa"
    assert headers["X-Upstream"].endswith(":5000")
    assert service.call(stack.url("/api"), "/health")[0] == 200
    status, page = service.call(stack.url(), "/")
    assert status == 200 and "<title>streamlit</title>" in page.lower()
    assert service.call(stack.url(), "/_stcore/health") == (200, "ok")


@pytest.mark.engine
def test_logs_follow_shows_new_lines_then_stops(stack):
    flower = dict(FLOWER, petal_length=1.9)
    timer = threading.Timer(1.0, predict, args=(stack, flower))
    timer.start()
    lines = stack.follow("--no-log-prefix", "--tail", "0", "api", seconds=3)
    timer.join()
    assert any('"path": "/predict"' in ln for ln in lines), lines


@pytest.mark.engine
def test_requests_spread_over_all_three_replicas(stack, client):
    hosts = Counter(predict(stack, dict(FLOWER, sepal_length=4.5 + i / 100))[1]["served_by"]
                    for i in range(36))
    replicas = {c.attrs["Config"]["Hostname"] for c in stack.containers("api", client)}
    assert set(hosts) == replicas and len(replicas) == 3


@pytest.mark.engine
def test_a_repeated_request_is_served_from_redis(stack):
    flower = dict(FLOWER, petal_width=0.3)
    first, second = predict(stack, flower), predict(stack, flower)
    assert (first[2]["X-Cache"], second[2]["X-Cache"]) == ("miss", "hit")
    assert first[1]["predictions"] == second[1]["predictions"]


@pytest.mark.engine
def test_the_cache_survives_a_redis_restart(stack):
    flower = dict(FLOWER, petal_width=0.4)
    assert predict(stack, flower)[2]["X-Cache"] in ("miss", "hit")
    stack("restart", "redis")
    stack.wait_healthy(timeout=60)
    assert predict(stack, flower)[2]["X-Cache"] == "hit"  # the append-only file on the volume


@pytest.mark.engine
def test_the_backend_has_no_way_out(stack, client):
    api = stack.containers("api", client)[0]
    backend = client.networks.get(f"{stack.name}_backend")
    assert backend.attrs["Internal"] is True
    assert list(api.attrs["NetworkSettings"]["Networks"]) == [f"{stack.name}_backend"]
    # From inside the containers (never from the host): the Debian mirror apt uses is
    # reachable from the dashboard (frontend too), not from the api (backend only).
    mirror = urlparse(compose.bases.debian_mirror()).hostname
    probe = ["python", "-c", f"import socket; socket.create_connection(({mirror!r}, 80), "
                             "timeout=3); print('connected')"]
    assert stack.containers("dashboard", client)[0].exec_run(probe).output.strip() == b"connected"
    code, out = api.exec_run(probe)
    assert code != 0 and b"connected" not in out


@pytest.mark.engine
def test_killing_a_replica_under_load_fails_no_request(stack, client):
    with Load(stack.url("/api/predict")) as load:
        time.sleep(1.5)
        stack.containers("api", client)[0].kill()
        time.sleep(4)
    out = measure.record("compose_failover", {"requests": load.sent, "failed": load.failed,
                                              "replicas": 3, "killed": 1,
                                              "seconds_under_load": round(load.seconds, 1)},
                         client.version()["Version"])
    assert json.loads(out.read_text())["figures"]["failed"] == load.failed
    assert load.sent > 50 and load.failed == 0, load.errors
    assert len(load.served_by) == 3  # all three answered before the kill
    stack("up", "--detach", "--no-build", "--scale", "api=3")  # bring the replica back
    stack.wait_healthy(timeout=60)


# --- faults ------------------------------------------------------------------------------

@pytest.mark.engine
def test_a_typo_gives_compose_s_message_in_short(tmp_path):
    broken = tmp_path / "compose.yaml"
    broken.write_text(compose.FILE.read_text().replace("    healthcheck:\n      test: [\"CMD\", \"redis",
                                                       "    healtcheck:\n      test: [\"CMD\", \"redis", 1))
    with pytest.raises(WorkbookError) as caught:
        compose.Project("workbook-tests-typo", OWNER, [broken], echo=False)("config", "--quiet")
    assert "healtcheck" in str(caught.value) and "not allowed" in str(caught.value)
    assert "Traceback" not in str(caught.value) and len(str(caught.value).splitlines()) <= 3


@pytest.mark.engine
def test_a_service_that_never_gets_healthy_ends_the_wait_with_its_probe_and_logs(client, tmp_path):
    spec = {"services": {"sick": {
        "image": compose.bases.resolve("redis", client).ref,
        "healthcheck": {"test": ["CMD-SHELL", "echo probe says: nothing on port 9999; exit 1"],
                        "interval": "1s", "timeout": "1s", "retries": 2},
        "labels": resources.labels(OWNER)}}}
    (tmp_path / "compose.yaml").write_text(yaml.safe_dump(spec))
    project = compose.Project("workbook-tests-sick", OWNER, [tmp_path / "compose.yaml"], echo=False)
    try:
        project("up", "--detach")
        start = time.monotonic()
        with pytest.raises(WorkbookError) as caught:
            project.wait_healthy(timeout=30, client=client)
        assert time.monotonic() - start < 30
        message = str(caught.value)
        assert "unhealthy" in message and "probe says: nothing on port 9999" in message
        assert "Ready to accept connections" in message  # its last log lines
    finally:
        project.down()


@pytest.mark.engine
def test_the_dev_override_reloads_edited_code(client, tmp_path):
    root = tmp_path / "docker"
    for part in ("app", "compose"):
        shutil.copytree(compose.ROOT / "docker" / part, root / part, symlinks=True)
    files = [root / "compose" / "compose.yaml", root / "compose" / "compose.dev.yaml"]
    api_port = compose.pick_port(5000)[0]
    project = compose.project(OWNER + "-dev", files, client, API_PORT=api_port)
    project.echo = False
    try:
        project("up", "--detach", "--build", "api")
        project.wait_healthy(timeout=90, client=client)
        base = f"http://127.0.0.1:{api_port}"
        assert service.call(base, "/health")[1]["status"] == "ok"
        app = root / "app" / "app.py"
        app.write_text(app.read_text().replace('jsonify(status="ok"', 'jsonify(status="edited"'))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if service.call(base, "/health", timeout=2)[1].get("status") == "edited":
                    break
            except (OSError, AttributeError):
                pass
            time.sleep(0.5)
        assert service.call(base, "/health")[1]["status"] == "edited"
    finally:
        project.down()
        resources.cleanup(client, OWNER + "-dev")


@pytest.mark.engine
def test_compose_env_prints_the_stack_s_base_images(capsys):
    from workbook.__main__ import main
    assert main(["compose-env"]) == 0
    lines = dict(ln.split("=", 1) for ln in capsys.readouterr().out.splitlines() if "=" in ln)
    assert {"PYTHON_IMAGE", "PYTHON_BUILD_IMAGE", "REDIS_IMAGE", "NGINX_IMAGE"} <= set(lines)
    spec = compose.FILE.read_text()
    assert all("${" + name + ":-" in spec for name in ("PYTHON_IMAGE", "REDIS_IMAGE", "NGINX_IMAGE"))
