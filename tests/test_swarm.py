"""Docker Swarm on the real engine: the stack of docker/swarm/stack.yaml, end to end.

One stack for the module (deploying takes seconds); the tests run in file order: deploy,
secret, scale, mistakes, then the teardown leaves nothing labelled tests-swarm (and leaves
the swarm only if this module started it). The rolling update under load, the rollback, the
failed update rolled back and the killed task replaced are proved end to end by lesson 06
and lab 07 under nbval (their committed outputs), so they are not repeated here.
"""

import json
import time

import pytest
import yaml

from workbook import WorkbookError, bases, engine, resources, service, swarm


OWNER = "tests-swarm"
STACK = "wbtests"
API, NGINX = f"{STACK}_api", f"{STACK}_nginx"
V1 = "workbook/app:production"
SECRET = f"{STACK}_api_token"


@pytest.fixture(scope="module")
def swarm_stack(client, production):
    """A deployed stack: 3 api replicas (v1) behind nginx on a free 127.0.0.1 port."""
    started = swarm.ensure_swarm(client)
    swarm.build_nginx(client, OWNER, "workbook/swarm-nginx:tests")
    _, token = swarm.create_secret(client, SECRET, OWNER)
    port = resources.free_port(8062, host="0.0.0.0")
    swarm.deploy(swarm.STACK_FILE, STACK, {
        "WORKBOOK_OWNER": OWNER, "API_IMAGE": V1, "NGINX_IMAGE": "workbook/swarm-nginx:tests",
        "NGINX_PORT": port, "API_TOKEN_SECRET": SECRET})
    swarm.wait_converged(client, API, 3)
    swarm.wait_converged(client, NGINX, 1)
    info = {"url": f"http://127.0.0.1:{port}/api/predict", "token": token, "started": started,
            "headers": {"Authorization": f"Bearer {token}"}}
    yield info
    teardown(client, started)


def teardown(client, started):
    swarm.remove_stack(client, STACK)
    resources.cleanup(client, OWNER)
    return swarm.leave_if_started(client, started, owners=(OWNER,))


def predict(swarm_stack, headers=None):
    return service.call(swarm_stack["url"], "", service.SAMPLES[0][0], timeout=5,
                        headers=swarm_stack["headers"] if headers is None else headers)


def answered_by(swarm_stack, want, seconds=15):
    """The replicas (hostnames) that answered, polling until `want` did or time runs out."""
    seen, deadline = set(), time.monotonic() + seconds
    while len(seen) < want and time.monotonic() < deadline:
        status, body = predict(swarm_stack)
        assert status == 200, body
        seen.add(body["served_by"])
    return seen


def test_stack_file_needs_no_ipvs_and_labels_everything():
    doc = yaml.safe_load(swarm.STACK_FILE.read_text())
    api, nginx = doc["services"]["api"], doc["services"]["nginx"]
    assert api["deploy"]["endpoint_mode"] == "dnsrr"
    assert nginx["deploy"]["endpoint_mode"] == "dnsrr"  # no VIP anywhere
    assert [p["mode"] for p in nginx["ports"]] == ["host"]
    assert "build" not in api and "build" not in nginx  # stack deploy ignores it
    update = api["deploy"]["update_config"]
    assert (update["order"], update["parallelism"], update["failure_action"]) == (
        "start-first", 1, "rollback")
    for svc in (api, nginx):
        assert "workbook" in svc["labels"] and "workbook" in svc["deploy"]["labels"]
    assert "workbook" in doc["networks"]["backend"]["labels"]


def test_deployed_services_containers_and_network_carry_the_label(client, swarm_stack):
    for name in (API, NGINX):
        svc = client.services.get(name)
        assert svc.attrs["Spec"]["Labels"]["workbook"] == OWNER
        assert svc.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Labels"]["workbook"] == OWNER
    assert client.services.get(API).attrs["Spec"]["EndpointSpec"]["Mode"] == "dnsrr"
    containers = client.containers.list(filters={"label": f"{swarm.NAMESPACE}={STACK}"})
    assert len(containers) == 4
    assert all(c.labels[resources.CREATED_BY] == OWNER for c in containers)
    (net,) = client.networks.list(filters={"label": f"{swarm.NAMESPACE}={STACK}"})
    assert net.attrs["Labels"]["workbook"] == OWNER and net.attrs["Attachable"]
    (secret,) = [s for s in client.secrets.list(filters={"label": f"workbook={OWNER}"})]
    assert secret.name == SECRET


def test_token_is_a_secret_file_not_an_environment_variable(client, swarm_stack):
    assert predict(swarm_stack, headers={})[0] == 401
    assert predict(swarm_stack, headers={"Authorization": "Bearer wrong"})[0] == 401
    assert predict(swarm_stack)[0] == 200
    svc = client.services.get(API)
    assert swarm_stack["token"] not in json.dumps(svc.attrs)
    env = svc.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]
    assert "API_TOKEN_FILE=/run/secrets/api_token" in env
    task = swarm.service_tasks(client, API)[0]
    container = client.containers.get(task["container"])
    assert swarm_stack["token"] not in json.dumps(container.attrs)  # not in its env or config
    code, out = container.exec_run(["cat", "/run/secrets/api_token"])
    assert code == 0 and out.decode() == swarm_stack["token"]
    code, out = container.exec_run(["stat", "-c", "%a %u", "/run/secrets/api_token"])
    assert out.decode().split() == ["400", "1000"]


def test_scale_to_five_and_every_replica_answers(client, swarm_stack):
    engine.docker_cli("service", "scale", "--detach", f"{API}=5")
    swarm.wait_converged(client, API, 5)
    assert len(answered_by(swarm_stack, 5)) == 5


def test_mistakes_give_short_messages(client, swarm_stack, tmp_path):
    with pytest.raises(WorkbookError, match="No service wbtests_nope"):
        swarm.service_tasks(client, f"{STACK}_nope")
    bad = tmp_path / "stack.yaml"
    bad.write_text("services:\n  api:\n    image: [not, a, string]\n")
    with pytest.raises(WorkbookError, match="docker stack"):
        swarm.deploy(bad, "wbtestsbad", {})


def test_an_image_that_was_never_built_is_named_at_once(client, swarm_stack):
    # A swarm never builds (stack deploy ignores `build:`): the task is rejected.
    from docker.types import EndpointSpec
    client.services.create("workbook/app:never-built", name=f"{STACK}_missing",
                           labels=resources.labels(OWNER),
                           endpoint_spec=EndpointSpec(mode="dnsrr"))
    start = time.monotonic()
    with pytest.raises(WorkbookError, match="No such image: workbook/app:never-built"):
        swarm.wait_converged(client, f"{STACK}_missing", 1, timeout=60)
    assert time.monotonic() - start < 30
    client.services.get(f"{STACK}_missing").remove()


def test_ipvs_detection_answers():
    assert swarm.ipvs_available() in (True, False, None)


def test_the_swarm_is_not_left_while_a_container_runs_on_a_user_defined_network(client, swarm_stack):
    # Leaving would wipe the container's DNS records (moby/moby#45144): its stack would break.
    net = client.networks.create(resources.unique_name(OWNER, "net"), labels=resources.labels(OWNER))
    box = client.containers.run(bases.build_args(client)["PYTHON_IMAGE"], ["sleep", "60"], detach=True, network=net.name,
                                name=resources.unique_name(OWNER), labels=resources.labels(OWNER))
    try:
        assert box.name in swarm.on_local_networks(client)
        note = swarm.leave_if_started(client, True, owners=(OWNER,))
        assert note.startswith("swarm left active: leaving would cut off the names of ") and box.name in note
        assert swarm.state(client) == "active"
    finally:
        box.remove(force=True)
        net.remove()
    assert box.name not in swarm.on_local_networks(client)


def test_teardown_leaves_nothing_labelled(client, swarm_stack):
    note = teardown(client, swarm_stack["started"])
    f = {"label": f"workbook={OWNER}"}
    assert not client.containers.list(all=True, filters=f)
    assert not client.networks.list(filters=f)
    if swarm.state(client) == "active":
        assert not client.services.list(filters=f)
        assert not client.secrets.list(filters=f)
    assert (swarm.state(client) == "inactive") == swarm_stack["started"], note
