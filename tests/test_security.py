"""Lesson 07b's run-time protections on the real engine: least privilege, limits, isolation."""

import hashlib
import time

import pytest

from workbook import ROOT, bases, images, resources, service


OWNER = "test_security"
LEAST_PRIVILEGE = {"read_only": True, "tmpfs": {"/tmp": "size=16m"}, "cap_drop": ["ALL"],
                   "security_opt": ["no-new-privileges:true"]}


@pytest.fixture(scope="module")
def app(client, production):
    yield production.tags[0]
    resources.cleanup(client, OWNER)


@pytest.fixture(scope="module")
def python(client):
    return bases.resolve("python-slim", client).ref


def run(client, image, command, **kw):
    """Run to the end: (exit code, output, State from inspect)."""
    c = client.containers.run(image, command, detach=True, labels=resources.labels(OWNER),
                              name=resources.unique_name(OWNER, "t"), **kw)
    try:
        code = c.wait(timeout=120)["StatusCode"]
        c.reload()
        return code, c.logs().decode(), c.attrs["State"]
    finally:
        c.remove(force=True)


def test_the_service_answers_under_least_privilege(client, app):
    digest = hashlib.sha256(service.MODEL.read_bytes()).hexdigest()
    c = service.run(client, app, OWNER, env={"MODEL_SHA256": digest}, **LEAST_PRIVILEGE)
    try:
        service.wait_ready(c)
        labels, _ = service.predictions(c)
        assert labels == [want for _, want in service.SAMPLES]
        host = c.attrs["HostConfig"]
        assert host["ReadonlyRootfs"] and host["CapDrop"] == ["ALL"]
        assert host["SecurityOpt"] == ["no-new-privileges:true"] and "/tmp" in host["Tmpfs"]
        status = c.exec_run(["cat", "/proc/1/status"]).output.decode()
        assert "CapEff:\t0000000000000000" in status and "NoNewPrivs:\t1" in status
        assert c.exec_run(["touch", "/tmp/ok"]).exit_code == 0  # the tmpfs is writable
        denied = c.exec_run(["sh", "-c", "touch /opt/venv/new || touch /new"], user="root")
        assert denied.exit_code != 0 and b"Read-only file system" in denied.output
    finally:
        c.remove(force=True)


def test_read_only_without_a_tmpfs_stops_gunicorn_with_a_clear_line(client, app):
    code, logs, _ = run(client, app, None, read_only=True)
    assert code != 0 and "No usable temporary directory found" in logs


def test_a_memory_hog_is_oom_killed(client, python):
    hog = "blocks = []\nwhile True:\n    blocks.append(bytearray(8 * 2**20))"
    code, _, state = run(client, python, ["python", "-c", hog], mem_limit="64m", memswap_limit="64m")
    assert code == 137 and state["OOMKilled"] is True


def test_within_the_memory_limit_nothing_is_killed(client, python):
    code, _, state = run(client, python, ["python", "-c", "x = bytearray(16 * 2**20)"],
                         mem_limit="64m", memswap_limit="64m")
    assert code == 0 and state["OOMKilled"] is False


def test_a_fork_bomb_stays_inside_its_pids_limit(client, python):
    bomb = ("import os, time\nwhile True:\n    try:\n        os.fork()\n"
            "    except OSError as e:\n        os.getpid() == 1 and print('refused', e.errno, flush=True)\n"
            "        time.sleep(0.1)\n")
    c = client.containers.run(python, ["python", "-c", bomb], detach=True, pids_limit=32,
                              nano_cpus=500_000_000, mem_limit="512m", labels=resources.labels(OWNER),
                              name=resources.unique_name(OWNER, "bomb"))
    try:
        deadline = time.monotonic() + 20
        while "refused" not in c.logs().decode():
            assert time.monotonic() < deadline, "the bomb was never refused a fork"
            time.sleep(0.2)
        assert len(c.top()["Processes"]) <= 32
        assert "refused 11" in c.logs().decode()  # EAGAIN
    finally:
        c.remove(force=True)


def test_cap_drop_all_takes_chown_away_from_root(client):
    debian = bases.build_args(client)["DEBIAN_IMAGE"]
    script = ["sh", "-c", "touch /tmp/f && chown 1000 /tmp/f"]
    assert run(client, debian, script, user="root")[0] == 0
    code, logs, _ = run(client, debian, script, user="root", cap_drop=["ALL"])
    assert code != 0 and "Operation not permitted" in logs


def test_no_new_privileges_ignores_the_setuid_bit(client):
    image = images.build(client, ROOT / "docker" / "security", "workbook/test-security:setuid", OWNER,
                         dockerfile="Dockerfile.setuid",
                         buildargs={"DEBIAN_IMAGE": bases.build_args(client)["DEBIAN_IMAGE"]}, log="none")
    assert "euid=0(root)" in run(client, image.id, None)[1]
    code, out, _ = run(client, image.id, None, security_opt=["no-new-privileges:true"])
    assert code == 0 and "uid=1000" in out and "euid" not in out


def test_networks_are_isolated_and_internal_has_no_way_out(client, python):
    nets = [client.networks.create(resources.unique_name(OWNER, "net"), labels=resources.labels(OWNER),
                                   internal=internal) for internal in (False, False, True)]
    web = client.containers.run(python, ["python", "-m", "http.server", "8000"], detach=True,
                                network=nets[0].name, labels=resources.labels(OWNER),
                                name=resources.unique_name(OWNER, "web"))
    probe = ("import socket, sys\nfor t in sys.argv[1:]:\n    h, p = t.rsplit(':', 1)\n    try:\n"
             "        socket.create_connection((h, int(p)), timeout=1).close(); print('connected')\n"
             "    except OSError as e:\n        print(type(e).__name__)\n")
    try:
        web.reload()
        ip = web.attrs["NetworkSettings"]["Networks"][nets[0].name]["IPAddress"]
        targets = [f"{web.name}:8000", f"{ip}:8000"]
        deadline = time.monotonic() + 20
        while (same := run(client, python, ["python", "-c", probe, *targets], network=nets[0].name)[1].split()) != ["connected"] * 2:
            assert time.monotonic() < deadline, same
        assert run(client, python, ["python", "-c", probe, *targets], network=nets[1].name)[1].split() == [
            "gaierror", "TimeoutError"]
        out = run(client, python, ["python", "-c", probe, "192.0.2.1:80", "pypi.org:443"], network=nets[2].name)[1]
        assert "connected" not in out and "gaierror" in out
    finally:
        web.remove(force=True)
        for net in nets:
            net.remove()
