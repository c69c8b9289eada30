"""The dashboard image (docker/ui): builds offline, turns healthy without an API, runs lean."""

import urllib.request

import pytest

from workbook import resources, service


HEALTHY_WITHIN = 60  # seconds


@pytest.fixture(scope="module")
def image(client):
    """The dashboard image, shared with the lessons (built once per run, label ladder)."""
    return service.build_ui(client, log="none")


@pytest.fixture(scope="module")
def container(client, image):
    """The dashboard, pointed at an API that does not exist, published on 127.0.0.1."""
    c = client.containers.run(
        image.id, detach=True, name=resources.unique_name("tests", "ui"),
        environment={"API_URL": "http://no-such-api.invalid:5000"},
        labels=resources.labels("tests"), ports={"8501/tcp": ("127.0.0.1", None)})
    try:
        yield c
    finally:
        c.remove(force=True)


def wait_healthy(container):
    return service.wait_healthy(container, timeout=HEALTHY_WITHIN)


def get(container, path):
    url = f"http://127.0.0.1:{resources.host_port(container, '8501/tcp')}{path}"
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode()


def test_turns_healthy_without_an_api(container):
    """The API is only called when someone uses the page, so its absence is not unhealthy."""
    print(f"healthy after {wait_healthy(container):.1f} s")
    assert get(container, "/_stcore/health") == (200, "ok")
    status, page = get(container, "/")
    assert status == 200 and "<html" in page.lower()


def test_runs_as_uid_1000(container):
    wait_healthy(container)
    code, out = container.exec_run("id -u")
    assert code == 0 and out.decode().strip() == "1000"


def test_no_compiler_no_pip_cache_no_wheels(container):
    """The final stage got only the venv: no build tools, no caches, no wheelhouse."""
    wait_healthy(container)
    code, out = container.exec_run(
        ["sh", "-c", "for tool in gcc cc c++ g++ make; do command -v $tool; done"])
    assert out.decode().strip() == "", f"compilers in the image: {out.decode()}"
    code, out = container.exec_run(
        ["sh", "-c", "ls -d /root/.cache/pip /home/*/.cache/pip /build /wheels 2>/dev/null"],
        user="root")
    assert out.decode().strip() == "", f"left in the image: {out.decode()}"
