"""hadolint on a Dockerfile, with the repo's configuration, as data."""

import json
import subprocess

from . import ROOT
from .engine import venv_tool

CONFIG = ROOT / ".hadolint.yaml"


def hadolint(path):
    """hadolint's findings for a Dockerfile: [{'code', 'level', 'line', 'message'}, ...]."""
    out = subprocess.run([venv_tool("hadolint"), "--config", str(CONFIG), "--format", "json",
                          str(path)], capture_output=True, text=True)
    return json.loads(out.stdout or "[]")
