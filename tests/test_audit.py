"""The checklist audit: every item passes on one real image and fails on another."""

import json
import subprocess
import sys
import textwrap

import pytest
from docker.api.client import APIClient

from workbook import ROOT, audit, bases, images, resources, service, wheelhouse

OWNER = "test_audit"

SERVER = """\
import json, http.server

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
        print(json.dumps({"event": "request", "path": self.path}))

    def log_message(self, *args):
        pass

print(json.dumps({"event": "listening", "port": 8000}))
http.server.HTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
"""

# Passes every item (with a compose file that sets limits).
GOOD = """\
# A tiny service that passes every item of the checklist (tests/test_audit.py).
ARG PYTHON_IMAGE=python:3.11-slim

# The builder makes a venv with the (one, tiny) dependency from the staged wheels.
# hadolint ignore=DL3057
FROM ${PYTHON_IMAGE} AS builder
COPY requirements.txt /build/
COPY wheels/ /build/wheels/
RUN python -m venv /opt/venv \\
 && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links=/build/wheels \\
      -r /build/requirements.txt

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="audit-good" \\
      org.opencontainers.image.description="a service that follows the checklist"
COPY --from=builder /opt/venv /opt/venv
COPY server.py /app/
USER 1000:1000
ENV PYTHONUNBUFFERED=1
EXPOSE 8000
HEALTHCHECK --interval=1s --timeout=2s --retries=3 \\
  CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/health', timeout=2)"]
CMD ["/opt/venv/bin/python", "/app/server.py"]
"""

# Fails every item it can: untagged base, code before dependencies, RUNs that waste,
# one stage, no .dockerignore (.git goes in), root, a secret in ENV, no HEALTHCHECK,
# logs to a file, nothing documented.
BAD = """\
FROM workbook/test-audit-base
WORKDIR /app
COPY . .
RUN pip install --no-index --find-links=wheels -r requirements.txt
RUN pip install --no-index --find-links=/usr/local/lib/python3.11/ensurepip/_bundled "setuptools<66"
RUN dd if=/dev/zero of=/app/blob bs=1M count=40
RUN rm /app/blob
ENV API_KEY=s3cr3t-value-baked-in
CMD ["python", "app.py"]
"""
LOGS_TO_FILE = """\
import logging, time
logging.basicConfig(filename="/tmp/app.log", level=logging.INFO)
logging.info("started")
time.sleep(600)
"""

# The good image with the tutorial's health check: requests is not installed (and would
# pass on HTTP 500 anyway).
SICK = """\
FROM workbook/test-audit:good
HEALTHCHECK --interval=30s --timeout=3s \\
  CMD python -c "import requests; requests.get('http://localhost:8000/health')"
"""
# The good image with a command that is not there: the container never starts.
NO_START = """\
FROM workbook/test-audit:good
CMD ["gunicorn", "app:app"]
"""

LIMITS = """\
services:
  api:
    build: .
    deploy:
      resources:
        limits: {cpus: "0.5", memory: 128M}
"""
NO_LIMITS = """\
services:
  api:
    build: .
"""


def _context(path, files):
    path.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(textwrap.dedent(text))
    (path / "requirements.txt").write_text("blinker==1.9.0\n")
    (path / ".git").mkdir(exist_ok=True)
    (path / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    wheelhouse.stage(path, path / "requirements.txt")
    return path


@pytest.fixture(scope="module")
def audit_images(client, tmp_path_factory):
    """The test images: good, bad, sick and no-start, with their Dockerfiles."""
    tmp = tmp_path_factory.mktemp("audit")
    args = bases.build_args(client)
    slim = args["PYTHON_IMAGE"]
    base = tmp / "base"
    base.mkdir()
    (base / "Dockerfile").write_text(f"FROM {slim}\nLABEL purpose=test\n")
    images.build(client, base, "workbook/test-audit-base", OWNER, log="none")
    good = _context(tmp / "good", {"Dockerfile": GOOD, "server.py": SERVER,
                                   ".dockerignore": ".git\n__pycache__/\n*.pyc\n",
                                   "compose.yaml": LIMITS})
    bad = _context(tmp / "bad", {"Dockerfile": BAD, "app.py": LOGS_TO_FILE,
                                 "compose.yaml": NO_LIMITS})
    sick = _context(tmp / "sick", {"Dockerfile": SICK})
    nostart = _context(tmp / "nostart", {"Dockerfile": NO_START})
    out = {}
    for name, ctx in [("good", good), ("bad", bad), ("sick", sick), ("nostart", nostart)]:
        images.build(client, ctx, f"workbook/test-audit:{name}", OWNER, buildargs=args, log="none")
        out[name] = ctx
    yield out
    resources.cleanup(client, OWNER)


@pytest.fixture(scope="module")
def good(client, audit_images):
    ctx = audit_images["good"]
    return audit.audit(ctx / "Dockerfile", "workbook/test-audit:good", client,
                       compose=ctx / "compose.yaml", owner=OWNER)


@pytest.fixture(scope="module")
def bad(client, audit_images):
    ctx = audit_images["bad"]
    return audit.audit(ctx / "Dockerfile", "workbook/test-audit:bad", client,
                       compose=ctx / "compose.yaml", owner=OWNER)


@pytest.mark.parametrize("key", list(audit.CHECKLIST))
def test_item_passes_on_the_good_image(good, key):
    item = good.item(key)
    assert item.status == "pass", item
    assert item.evidence


@pytest.mark.parametrize("key", list(audit.CHECKLIST))
def test_item_fails_on_the_bad_image(bad, key):
    item = bad.item(key)
    assert item.status == "fail", item
    assert item.evidence


def test_evidence_names_what_was_seen(good, bad):
    def text(a, key):
        return " ".join(a.item(key).evidence)
    assert "no tag" in text(bad, "base-tags") and "tag 3.11-slim" in text(good, "base-tags")
    assert "DL3059" in text(bad, "layers") and "/app/blob" in text(bad, "layers")
    assert "COPY . ." in text(bad, "build-cache")
    assert "1 stage" in text(bad, "multi-stage") and "/opt/venv from builder" in text(good, "multi-stage")
    assert "/app/.git" in text(bad, "dockerignore") and "no .dockerignore" in text(bad, "dockerignore")
    assert "uid 0" in text(bad, "non-root") and "uid 1000" in text(good, "non-root")
    assert "API_KEY" in text(bad, "secrets") and "s3cr3t-value-baked-in" not in text(bad, "secrets")
    assert "api: cpus unlimited, memory unlimited" in text(bad, "resource-limits")
    assert "healthy after" in text(good, "healthcheck") and "no HEALTHCHECK" in text(bad, "healthcheck")
    assert "/tmp/app.log" in text(bad, "logging") and "JSON" in text(good, "logging")
    assert "labels: none" in text(bad, "documented")
    assert good.run["uid"] == 1000 and good.run["health"] == "healthy"


def test_vulnerability_inventory(client, good, bad):
    # The bad image pins an old setuptools (CPython's own bundled wheel), which has a fix...
    item = bad.item("vulnerabilities")
    assert item.status == "fail" and item.severity == "high"
    assert "setuptools 65.5.0" in " ".join(item.evidence)
    # ...while tar's advisory has none: named as accepted, and the good image passes with it.
    assert "no fix exists, accepted: CVE-2005-2541 tar" in " ".join(good.item("vulnerabilities").evidence)
    # ...the ladder's minimal image has neither a package manager nor pip: nothing matches.
    service.build(client, "minimal", log="none")
    minimal = audit.audit(ROOT / "docker/app/Dockerfile.minimal", "workbook/app:minimal", client,
                          run=False)
    assert minimal.item("vulnerabilities").status == "pass"
    assert "no package matches" in " ".join(minimal.item("vulnerabilities").evidence)


def test_limits_not_applicable_without_compose_or_run_config(client, audit_images):
    ctx = audit_images["good"]
    a = audit.audit(ctx / "Dockerfile", "workbook/test-audit:good", client, run=False)
    assert a.item("resource-limits").status == "n/a"
    assert a.item("logging").status == "n/a"  # only a running container tells
    assert a.run == {}
    limited = audit.audit(ctx / "Dockerfile", "workbook/test-audit:good", client, owner=OWNER,
                          run_config={"mem_limit": "128m", "nano_cpus": 500_000_000})
    assert limited.item("resource-limits").status == "pass"
    assert limited.item("healthcheck").status == "pass"  # the short run used the limits


def test_a_failing_probe_is_unhealthy(client, audit_images):
    a = audit.audit(audit_images["sick"] / "Dockerfile", "workbook/test-audit:sick", client, owner=OWNER)
    item = a.item("healthcheck")
    assert item.status == "fail"
    evidence = " ".join(item.evidence)
    assert "does not raise on HTTP" in evidence
    assert "unhealthy" in evidence and "No module named 'requests'" in evidence
    assert "every 30 s" in evidence and a.run["health"] == "unhealthy"
    assert a.item("non-root").status == "pass"  # the rest of the good image still passes
    assert a.run["diagnosis"]  # diagnose() explained the unhealthy container


def test_a_probe_that_fails_before_the_service_speaks_still_hears_it(client, audit_images, tmp_path):
    # A busy machine can settle a failing probe before a slow service logs its first line
    # (lesson 10's tutorial API, ciE): the short run waits for that line, a second more.
    (tmp_path / "Dockerfile").write_text(
        f"FROM {bases.build_args(client)['PYTHON_IMAGE']}\n"
        'HEALTHCHECK --interval=1s --timeout=1s --retries=1 CMD ["false"]\n'
        'CMD ["python", "-c", "import time; time.sleep(5); print(\'{}\', flush=True); time.sleep(60)"]\n')
    images.build(client, tmp_path, "workbook/test-audit:quiet", OWNER, log="none")
    run = audit.short_run(client, client.images.get("workbook/test-audit:quiet"), OWNER, None, window=30)
    assert run["health"] == "unhealthy" and run["stdout"] == ["{}"]
    assert 5 <= run["seconds"] < 15


def test_a_container_that_cannot_start(client, audit_images):
    a = audit.audit(audit_images["nostart"] / "Dockerfile", "workbook/test-audit:nostart", client,
                    owner=OWNER)
    assert not a.run["started"] and "gunicorn" in a.run["error"]
    assert a.item("healthcheck").status == "fail"
    assert "did not start" in " ".join(a.item("healthcheck").evidence)
    assert a.item("logging").status == "n/a"
    assert a.item("non-root").status == "pass"  # judged by its configuration instead
    leftover = client.containers.list(all=True, filters={"label": f"workbook={OWNER}"})
    assert leftover == []  # the short run removes its container


def test_an_audit_reads_the_image_once(client, audit_images, monkeypatch):
    saves, get_image = [], APIClient.get_image  # what Image.save() calls, on every client

    def counted(self, image, *args, **kwargs):
        saves.append(image)
        return get_image(self, image, *args, **kwargs)

    monkeypatch.setattr(APIClient, "get_image", counted)
    ctx = audit_images["bad"]
    a = audit.audit(ctx / "Dockerfile", "workbook/test-audit:bad", client, run=False)
    assert len(saves) == 1  # dive's figures, the secret scan and the inventory share it
    assert [a.item(k).status for k in ("layers", "secrets", "vulnerabilities")] == ["fail"] * 3


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "workbook", "audit", *args],
                          capture_output=True, text=True, cwd=ROOT, check=False)


def test_cli_exit_code_follows_fail_on_and_json_is_json(audit_images):
    bad = ["--dockerfile", str(audit_images["bad"] / "Dockerfile"), "--compose",
           str(audit_images["bad"] / "compose.yaml"), "--no-run", "workbook/test-audit:bad"]
    done = _cli(*bad, "--json", "--fail-on", "critical")
    assert done.returncode == 1, done.stderr  # the secret in ENV is critical
    doc = json.loads(done.stdout)
    assert {i["key"] for i in doc["items"]} == set(audit.CHECKLIST)
    assert next(i for i in doc["items"] if i["key"] == "secrets")["status"] == "fail"
    # The sick image's worst failure is below critical: CI passes at critical, fails at its worst.
    sick = ["--dockerfile", str(audit_images["sick"] / "Dockerfile"), "--no-run", "workbook/test-audit:sick"]
    done = _cli(*sick, "--fail-on", "critical")
    assert done.returncode == 0, done.stderr
    assert "FAIL" in done.stdout and "Implement health checks" in done.stdout
    worst = max((ln.split()[1] for ln in done.stdout.splitlines() if ln.startswith("FAIL")),
                key=audit.SEVERITIES.index)
    assert worst != "critical" and _cli(*sick, "--fail-on", worst).returncode == 1


def test_cli_names_a_missing_image(client):  # the CLI asks the engine
    done = _cli("--dockerfile", str(ROOT / "docker/app/Dockerfile"), "workbook/no-such:image")
    assert done.returncode == 1 and "No image" in done.stderr and "Traceback" not in done.stderr


def test_exit_code_and_severities():
    items = [audit.Item("a", "A", "fail", "medium"), audit.Item("b", "B", "pass", "critical"),
             audit.Item("c", "C", "n/a", "high")]
    a = audit.Audit("img", "Dockerfile", items)
    assert a.exit_code("medium") == 1 and a.exit_code("high") == 0 and a.exit_code() == 0
    assert a.exit_code("never") == 0
    assert a.counts() == {"pass": 1, "fail": 1, "n/a": 1}
    assert json.loads(a.as_json())["items"][0]["status"] == "fail"
    assert a.markdown().count("\n") == 4
    with pytest.raises(audit.WorkbookError):
        a.exit_code("severe")
