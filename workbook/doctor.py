"""The setup check: everything the notebooks need, each with a fix when it fails."""

import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from docker.errors import DockerException, ImageNotFound

from . import WorkbookError, bases, bundle, engine, images, wheelhouse


@dataclass
class Check:
    """One line of the doctor's table."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


def run_checks():
    """Run every check; never raises for a missing prerequisite (it becomes a failed check)."""
    checks = [Check("Python", sys.version_info[:2] >= (3, 10), sys.version.split()[0],
                    "Use Python 3.10 or newer.")]
    try:
        c = engine.client()
    except WorkbookError as exc:
        return checks + [Check("Docker engine", False, exc.problem, exc.fix)]
    version = c.version()
    checks.append(Check("Docker engine", True, engine.describe(c)))
    checks.append(Check("API version", _api_tuple(version["ApiVersion"]) >= (1, 41),
                        version["ApiVersion"], "Upgrade Docker to 20.10 or newer."))
    try:
        compose = engine.compose_cmd()
        out = _run(compose + ["version", "--short"])
        checks.append(Check("Compose v2", True, f"{' '.join(compose)} v{out.lstrip('v')}"))
    except WorkbookError as exc:
        checks.append(Check("Compose v2", False, exc.problem, exc.fix))
    try:
        free = engine.check_disk(c)
        shown = f"{free:.0f} GB" if free is not None else "not visible (remote engine)"
        checks.append(Check("free disk", True, shown))
    except WorkbookError as exc:
        checks.append(Check("free disk", False, exc.problem, exc.fix))
    online = registry_reachable(c)
    checks.append(Check("registry", True, "reachable (online mode)" if online
                        else "unreachable (offline mode: stand-in base images)", required=False))
    for key, base in bases.BASES.items():
        r = bases.present(c, key)
        checks.append(Check(f"base {base.official}", r is not None,
                            f"{r.ref} ({'official' if r.official else 'stand-in'})" if r else "not prepared",
                            "Run `make bases`."))
    checks += platform_checks(c)
    is_loaded, msg = bundle.loaded(c)
    checks.append(Check("classroom bundle", is_loaded or not images.MARKER.exists(), msg,
                        "Run `make load` again (or `make setup` online).", required=False))
    ready, msg = wheelhouse.status(wheelhouse.arch(c))
    checks.append(Check("wheelhouse", ready, msg, "Run `make wheelhouse`."))
    hadolint = Path(engine.venv_tool("hadolint"))
    checks.append(Check("hadolint", hadolint.exists(), _run([str(hadolint), "--version"]).split()[-1]
                        if hadolint.exists() else "missing", "Run `make install`."))
    return checks


def platform_checks(c):
    """The host's and the engine's architecture, and every workbook image built for another."""
    host, engine_arch = platform.machine(), c.version()["Arch"]
    same = wheelhouse.ARCHES.get(host.lower()) == wheelhouse.ARCHES.get(engine_arch.lower())
    checks = [Check("architecture", same, f"host {host}, engine {engine.platform(c)}",
                    "The engine emulates another CPU: builds and runs will be slow.", required=False)]
    foreign = foreign_images(c)
    checks.append(Check("image platforms", not foreign,
                        f"every workbook image is {engine.platform(c)}" if not foreign else
                        "; ".join(f"{ref} is {p}" for ref, p in foreign[:3])
                        + (f" (+{len(foreign) - 3} more)" if len(foreign) > 3 else ""),
                        "Rebuild them here (`make clean setup`), or load a bundle made on this "
                        "architecture.", required=False))
    return checks


def foreign_images(c, refs=None):
    """(ref, platform) of each image (default: every workbook/ image) not built for the engine's platform."""
    want = engine.platform(c)
    if refs is None:
        refs = sorted({t for img in c.api.images(filters={"label": "workbook"})  # raw: no inspect
                       for t in img.get("RepoTags") or [] if t.startswith("workbook/")})
    out = []
    for ref in refs:
        try:
            img = c.images.get(ref)
        except ImageNotFound:
            continue
        got = images.platform_of(img)
        if got.split("/")[:2] != want.split("/")[:2]:
            out.append((ref, got))
    return out


def registry_reachable(c):
    """True when the default registry answers a manifest query (nothing is pulled)."""
    try:
        c.api.inspect_distribution("python:3.11-slim")
        return True
    except DockerException:
        return False


def _api_tuple(v):
    return tuple(int(x) for x in v.split("."))


def _run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()


def all_ok(checks):
    """True when every required check passed."""
    return all(ch.ok for ch in checks if ch.required)


def rows(checks):
    """Table rows: check, status, detail, fix (only for failures)."""
    return [(ch.name, "ok" if ch.ok else ("FAIL" if ch.required else "warn"), ch.detail,
             "" if ch.ok else ch.fix) for ch in checks]


def as_text(checks):
    """The doctor's table for a terminal."""
    out = []
    for name, status, detail, fix in rows(checks):
        out.append(f"{status:>4}  {name:<26} {detail}" + (f"\n      -> {fix}" if fix else ""))
    return "\n".join(out)
