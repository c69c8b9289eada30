"""Every Dockerfile in the repo is hadolint-clean, and every ignore says why."""

import json
import re
import subprocess

import pytest

from workbook import ROOT, engine

# Dockerfiles that exist to be flagged, with the findings they must produce.
MEANT_TO_FAIL = {}
DOCKERFILES = sorted(p for p in (ROOT / "docker").rglob("Dockerfile*") if "wheels" not in p.parts)


def hadolint(path):
    out = subprocess.run([engine.venv_tool("hadolint"), "--config", str(ROOT / ".hadolint.yaml"),
                          "--format", "json", str(path)], capture_output=True, text=True)
    return json.loads(out.stdout or "[]")


def test_there_are_dockerfiles():
    assert DOCKERFILES


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_hadolint_clean(path):
    rel = str(path.relative_to(ROOT))
    codes = sorted({f["code"] for f in hadolint(path)})
    assert codes == MEANT_TO_FAIL.get(rel, []), f"hadolint findings in {rel}: {codes}"


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_ignore_carries_a_reason(path):
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(r"#\s*hadolint (global )?ignore=", line.strip()):
            before = lines[i - 1].strip() if i else ""
            assert before.startswith("#") and "hadolint" not in before and len(before) > 10, (
                f"{path.name}:{i + 1}: put the reason for the ignore on the comment line above it")


def test_hadolint_really_flags(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install flask\n")
    codes = {f["code"] for f in hadolint(bad)}
    assert {"DL3006", "DL3013", "DL3042", "DL3057"} <= codes
