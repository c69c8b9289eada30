"""A small secret scanner for images: config, history, and every layer's files (deleted ones too).

`docker save` holds every layer as it was built, so a file a later step deleted is still in
the image: the scanner reads each layer on its own, as anyone who pulls the image can.
A handful of patterns, not a product (gitleaks and trufflehog know hundreds).
"""

import posixpath
import re
from dataclasses import dataclass

from . import imagefs

MAX_FILE = 1 << 20  # secrets are small; larger files are data, models, libraries
BINARY = (".so", ".pyc", ".a", ".o", ".gz", ".xz", ".zst", ".whl", ".zip", ".png", ".jpg")

# Formats that are secrets wherever they appear.
STRONG = [
    ("private-key", re.compile(rb"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----")),
    ("aws-key", re.compile(rb"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("token", re.compile(rb"\b(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{40,}"
                         rb"|xox[abposr]-[A-Za-z0-9-]{10,}|hf_[A-Za-z0-9]{34}"
                         rb"|sk-(?:proj-)?[A-Za-z0-9_-]{32,})")),
]
# NAME=value where the name says secret: looked for where settings live (image config,
# history, .env files), not in source code, where `token = next(tokens)` is no secret.
ASSIGNMENT = re.compile(
    r"(?i)\b([A-Z0-9_.-]*(?:API[_-]?KEY|SECRET|TOKEN|PASSWORD|PASSWD|ACCESS[_-]?KEY)"
    r"[A-Z0-9_]*)\s*[=:]\s*[\"']?([^\s\"']+)")
NOT_A_VALUE = re.compile(r"^(\$|/|<|\{\{)")  # $VAR, a path (*_FILE), <placeholder>, {{ template }}
# ARG/ENV names that point to where a secret is, not the secret itself.
POINTER = re.compile(r"(?i)_(FILE|PATH|DIR|URL|ENV)$")


@dataclass
class Finding:
    """One secret found: where, what kind, which file (None outside layers), a masked excerpt."""

    where: str  # "config Env", "history step 4", "layer 3"
    kind: str  # "api-key", "private-key", "aws-key", "token", ".env file"
    path: str | None
    excerpt: str  # masked: never the whole secret
    note: str = ""  # e.g. "deleted by layer 5: still in the image"


def mask(value):
    """The first characters of a secret, then stars: enough to recognise, not to use."""
    keep = 2 if len(value) < 12 else 4
    return value[:keep] + "*" * min(8, max(3, len(value) - keep))


def _assignments(text, where, path=None, kind="api-key"):
    found = []
    for m in ASSIGNMENT.finditer(text):
        name, value = m.group(1), m.group(2)
        if len(value) < 6 or NOT_A_VALUE.match(value) or POINTER.search(name):
            continue
        found.append(Finding(where, kind, path, f"{name}={mask(value)}"))
    return found


def _strong(data, where, path=None):
    found = []
    for kind, pattern in STRONG:
        for m in pattern.finditer(data):
            text = m.group().decode(errors="replace")
            found.append(Finding(where, kind, path, text if kind == "private-key" else mask(text)))
    return found


def scan_text(text, where, path=None):
    """Findings in one setting or command line (config, history)."""
    return _strong(text.encode(), where, path) + _assignments(text, where, path)


def is_env_file(path):
    """.env, .env.production, prod.env (not .env.example and other templates)."""
    name = posixpath.basename(path)
    if name.endswith((".example", ".sample", ".template", ".dist")):
        return False
    return name == ".env" or name.startswith(".env.") or name.endswith(".env")


def scan_file(path, data, where):
    """Findings in one file's bytes (path as in the layer, e.g. 'app/.env')."""
    if b"\0" in data[:8192]:
        return []  # binary
    found = _strong(data, where, path)
    if is_env_file(path):
        values = _assignments(data.decode(errors="replace"), where, path, kind=".env file")
        found += values or [Finding(where, ".env file", path, "(no secret-looking names)")]
    return found


def read_layers(client, image, visit):
    """Stream `docker save`: visit(layer, member, layer_tar) for each entry of each layer.

    Layer tars come in no useful order; returns (layer names bottom first, image config).
    """
    archive = imagefs.walk(client, image, visit)
    return archive.layers, archive.config


# Layers below the top one are named after their chain of contents, so a base shared by
# many images is read once per process.
_CACHE = {}


class Secrets:
    """An imagefs.read visitor: the findings in each layer's files, as `docker save` streams by."""

    def __init__(self):
        self.per_layer = {}  # layer name -> [Finding], paths without their leading '/'

    def __call__(self, entry, data):
        """Scan one entry of a layer (whiteouts, large and binary files skipped)."""
        if entry.whiteout or entry.layer in _CACHE:
            return
        found = self.per_layer.setdefault(entry.layer, [])
        if entry.type == "file" and entry.size <= MAX_FILE and not entry.path.endswith(BINARY):
            found += scan_file(entry.path[1:], data(), entry.layer)

    def findings(self, image, saved):
        """scan_image's findings, with the layers' as this visitor saw them in `saved`."""
        return _config_findings(image) + self._layer_findings(saved)

    def _layer_findings(self, saved):
        order = [layer.name for layer in saved.layers]
        for layer in order[:-1]:
            if layer in self.per_layer:
                _CACHE[layer] = self.per_layer[layer]
        touched = {layer.name: _touched(layer) for layer in saved.layers}
        findings = []
        for i, layer in enumerate(order):
            for f in self.per_layer.get(layer, _CACHE.get(layer, [])):
                findings.append(Finding(f"layer {i + 1}", f.kind, "/" + f.path, f.excerpt,
                                        _gone_later(f.path, i, order, touched)))
        return findings


def _touched(layer):
    """A layer's deletions, opaque directories and regular files, paths without the leading '/'."""
    return {"deleted": {e.deletes[1:] for e in layer.entries if e.deletes},
            "opaque": {posixpath.dirname(e.path)[1:] for e in layer.entries if e.opaque},
            "written": {e.path[1:] for e in layer.entries if e.type == "file" and not e.whiteout}}


def _gone_later(path, index, order, touched):
    """'deleted by layer N' / 'replaced by layer N' when a later layer hides this file."""
    for j in range(index + 1, len(order)):
        info = touched.get(order[j], {})
        parts = path.split("/")
        parents = {"/".join(parts[:k]) for k in range(1, len(parts) + 1)}
        if parents & info.get("deleted", set()) or parents & info.get("opaque", set()):
            return f"deleted by layer {j + 1}: still in the image, in layer {index + 1}"
        if path in info.get("written", set()):
            return f"replaced by layer {j + 1}: the old content is still in layer {index + 1}"
    return ""


def scan_image(client, image):
    """Secrets in an image: config (Env, Labels, Cmd, Entrypoint), history, every layer's files."""
    image = imagefs.image_of(client, image)
    secrets = Secrets()
    return secrets.findings(image, imagefs.read(client, image, secrets))


def _config_findings(image):
    """Findings in the image's config (Env, Cmd, Entrypoint, Labels) and history."""
    config = image.attrs.get("Config") or {}
    findings = []
    for key in ("Env", "Cmd", "Entrypoint"):
        for item in config.get(key) or []:
            findings += scan_text(item, f"config {key}")
    for name, value in (config.get("Labels") or {}).items():
        findings += scan_text(f"{name}={value}", "config Labels")
    rows = list(reversed(image.history()))  # oldest first: step 1 is the base's first
    for i, row in enumerate(rows, 1):
        findings += scan_text(row.get("CreatedBy") or "", f"history step {i}")
    return findings


def describe(findings):
    """One line per finding, or 'no secrets found'."""
    if not findings:
        return "no secrets found"
    lines = []
    for f in findings:
        where = f"{f.where} {f.path}" if f.path else f.where
        lines.append(f"{f.kind:12} {where}: {f.excerpt}" + (f"  ({f.note})" if f.note else ""))
    return "\n".join(lines)
