"""Every Dockerfile in the repo is hadolint-clean, and every ignore says why."""

import re

import pytest

from workbook import ROOT
from workbook.lint import hadolint

# Dockerfiles that exist to be flagged, with the findings they must produce: the tutorial's
# bad practices, all in the ladder's first rung.
BAD_PRACTICES = ["DL3008", "DL3009", "DL3013", "DL3015", "DL3042", "DL3057", "DL3059"]
MEANT_TO_FAIL = {"docker/app/Dockerfile.naive": BAD_PRACTICES,
                 # lesson 07: hadolint's security rules on purpose, and the tutorial's ENV secret
                 "docker/security/Dockerfile.insecure": ["DL3002", "DL3004", "DL3008", "DL3020",
                                                         "DL3025", "DL3066", "DL4006"],
                 "docker/security/secrets/Dockerfile.env-secret": ["DL3064"],
                 # lesson 10: the tutorial's Real-World Examples as written
                 "docker/tutorial/flask-api/Dockerfile": ["DL3057"],
                 "docker/tutorial/multi-service/api/Dockerfile": ["DL3008", "DL3013", "DL3015",
                                                                  "DL3025", "DL3066"],
                 "docker/tutorial/multi-service/ui/Dockerfile": ["DL3057"],
                 "docker/tutorial/production/Dockerfile": ["DL3025", "DL3057", "DL3066"]}
DOCKERFILES = sorted(p for p in (ROOT / "docker").rglob("Dockerfile*") if "wheels" not in p.parts)


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


def test_slim_rung_keeps_exactly_the_naive_mistakes(tmp_path):
    """Rung 2 silences its findings with one reasoned pragma; without it, they are naive's."""
    slim = (ROOT / "docker/app/Dockerfile.slim").read_text()
    assert "hadolint global ignore=" in slim
    bare = tmp_path / "Dockerfile"
    bare.write_text("\n".join(ln for ln in slim.splitlines() if "hadolint global ignore" not in ln))
    codes = sorted({f["code"] for f in hadolint(bare)})
    assert codes == BAD_PRACTICES
