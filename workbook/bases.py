"""Resolve the base images: the official ones when available, stand-ins built from Debian offline."""

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from docker.errors import DockerException, ImageNotFound

from . import BUILD, LABEL, ROOT, WorkbookError, engine, images, wheelhouse

SUITE = os.environ.get("WORKBOOK_DEBIAN_SUITE", "bookworm")  # bookworm ships Python 3.11
OWNER = "bases"

# Trimmed from the root filesystem before import, as the official slim images do.
TRIM = ["usr/share/doc/*", "usr/share/man/*", "usr/share/info/*", "usr/share/locale/*",
        "usr/share/lintian/*", "var/lib/apt/lists/*", "var/cache/apt/*", "var/cache/debconf/*-old",
        "var/log/*.log", "var/log/apt/*", "etc/hostname", "etc/resolv.conf"]
DPKG_EXCLUDES = """\
# As in the official Debian slim images: later apt installs skip docs too.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
"""
APT_CLEAN = 'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };\n'


@dataclass(frozen=True)
class Base:
    """A base image the workbook's Dockerfiles build FROM."""

    key: str
    official: str
    standin: str
    build_arg: str
    recipe: str = ""  # folder with the stand-in's Dockerfile ('' = the debootstrap import)
    parent: str = ""
    service: bool = False  # run as it is (compose's redis, nginx), not a base to build FROM


BASES = {b.key: b for b in [
    Base("debian-slim", "debian:bookworm-slim", "workbook/debian:bookworm-slim", "DEBIAN_IMAGE"),
    Base("python-slim", "python:3.11-slim", "workbook/python:3.11-slim", "PYTHON_IMAGE",
         "docker/bases/python-slim", "debian-slim"),
    Base("python", "python:3.11", "workbook/python:3.11", "PYTHON_BUILD_IMAGE",
         "docker/bases/python", "python-slim"),
    # The multi-service stack's other images; their stand-ins are Debian bookworm's packages.
    Base("redis", "redis:7.0-bookworm", "workbook/redis:7.0-bookworm", "REDIS_IMAGE",
         "docker/bases/redis", "debian-slim", service=True),
    Base("nginx", "nginx:1.22", "workbook/nginx:1.22", "NGINX_IMAGE",
         "docker/bases/nginx", "debian-slim", service=True),
]}


PYTHON_FAMILY = ("python-slim", "python")


def _official_available(client, key):
    """'found locally' or 'pulled' when the official image of `key` can be had, else ''."""
    ref = BASES[key].official
    if images.exists(client, ref):
        return "found locally"
    return "pulled" if _try_pull(client, ref) else ""


@dataclass(frozen=True)
class Resolved:
    """What a base resolved to: the image reference and how it was obtained."""

    key: str
    ref: str
    official: bool
    how: str


def describe(r):
    """One line: which image stands for which base, and how it came to be."""
    base = BASES[r.key]
    kind = "official image" if r.official else "stand-in"
    return f"base {base.official:<22} -> {r.ref} ({kind}, {r.how})"


def mode():
    """WORKBOOK_BASES: 'auto' (official if available), 'standin' (offline) or 'official'."""
    m = os.environ.get("WORKBOOK_BASES", "auto")
    if m not in ("auto", "standin", "official"):
        raise WorkbookError(f"WORKBOOK_BASES={m!r} is not a mode.", "Use auto, standin or official.")
    return m


_registry_down = False


def _try_pull(client, ref):
    """Pull ref; False at once when no registry answers (remembered for this process)."""
    global _registry_down
    if _registry_down:
        return False
    try:
        client.images.pull(ref)
        return True
    except DockerException:
        _registry_down = True
        return False


def recipe_hash(key):
    """A hash of everything that makes a stand-in: its Dockerfile folder and its parents'."""
    base, h = BASES[key], hashlib.sha256()
    h.update(f"{SUITE}\n{TRIM}\n{DPKG_EXCLUDES}\n{APT_CLEAN}".encode())
    if base.recipe:
        for f in sorted((ROOT / base.recipe).rglob("*")):
            if f.is_file():  # comments and blank lines do not change an image
                lines = [ln for ln in f.read_text().splitlines()
                         if ln.strip() and not ln.lstrip().startswith("#")]
                h.update(f.name.encode() + "\n".join(lines).encode())
    if base.parent:
        h.update(recipe_hash(base.parent).encode())
    return h.hexdigest()[:16]


def present(client, key):
    """What base `key` resolves to without building or pulling anything, or None."""
    base = BASES[key]
    for ref, official in ((base.official, True), (base.standin, False)):
        try:
            img = client.images.get(ref)
        except ImageNotFound:
            continue
        if official or img.labels.get("workbook.recipe-hash") == recipe_hash(key):
            return Resolved(key, ref, official, "present")
    return None


def resolve(key, client=None, rebuild=False):
    """The image to use for base `key`, building the stand-in if no official one is available."""
    client = client or engine.client()
    base, m = BASES[key], mode()
    if m != "standin" and not rebuild:
        # A builder stage's venv only works in a final stage with the same Python install:
        # official and stand-in Python images are never mixed.
        family = PYTHON_FAMILY if key in PYTHON_FAMILY else (key,)
        found = [_official_available(client, k) for k in family]
        if all(found):
            return Resolved(key, base.official, True, found[family.index(key)])
        if m == "official":
            raise WorkbookError(f"{base.official} (or its family: {', '.join(family)}) is "
                                "neither local nor pullable.",
                                "Connect to a registry, or use WORKBOOK_BASES=auto.")
    if rebuild:
        _build_args.clear()
    ref, built_now = _standin(client, key, rebuild)
    how = f"built {'now' if built_now else 'earlier'} from {_made_from(key)}"
    return Resolved(key, ref, False, how)


def standin_names(client, keys):
    """Tag each resolved base with its stand-in's name (workbook/...), so that an exercise can
    say `FROM workbook/python:3.11-slim` whether this machine uses the official image or not."""
    for key in keys:
        found = resolve(key, client)
        if found.ref != BASES[key].standin:
            repo, tag = BASES[key].standin.rsplit(":", 1)
            client.images.get(found.ref).tag(repo, tag)  # docker tag OFFICIAL workbook/...

def resolve_all(client=None):
    """Resolve every base; return {key: Resolved}."""
    return {k: resolve(k, client) for k in BASES}


_build_args = {}  # mode -> build args: resolved once per process (every build asks for them)


def build_args(client=None):
    """Build arguments that point the workbook's Python Dockerfiles at the resolved bases."""
    m = mode()
    if m not in _build_args:
        _build_args[m] = {BASES[k].build_arg: resolve(k, client).ref
                          for k in BASES if not BASES[k].service}
    return dict(_build_args[m])


def cli_build_args(client=None, dockerfile=None):
    """build_args() as `--build-arg NAME=REF` flags for a typed docker build (only the ARGs `dockerfile` declares)."""
    declared = re.findall(r"^\s*ARG\s+(\w+)", Path(dockerfile).read_text(), re.M) if dockerfile else None
    return " ".join(f"--build-arg {k}={v}" for k, v in build_args(client).items()
                    if declared is None or k in declared)


def image_vars(client=None):
    """Every base as NAME_IMAGE=ref: the variables the compose files take (see .env.example)."""
    return {b.build_arg: r.ref for b, r in ((BASES[k], r) for k, r in resolve_all(client).items())}


def _made_from(key):
    """What a stand-in is made from, in a few words."""
    if key in PYTHON_FAMILY:  # CPython from source into /usr/local, as the official images
        return f"Debian {SUITE}'s python3.11 source"
    return "Debian packages"


def _standin_labels(base, want):
    return {
        "workbook.standin-for": base.official,
        "workbook.recipe-hash": want,
        "workbook.recipe": (f"debootstrap --variant=minbase {SUITE}, trimmed, docker import"
                            + (f"; then {base.recipe}/Dockerfile" if base.recipe else "")),
        "org.opencontainers.image.description":
            f"Offline stand-in for {base.official}, built from {_made_from(base.key)}. Not the official image.",
    }


def _standin(client, key, rebuild=False):
    """The stand-in of `key`, built (with any stale parents) when missing or out of date."""
    base, want = BASES[key], recipe_hash(key)
    try:
        old = client.images.get(base.standin)
        if old.labels.get("workbook.recipe-hash") == want and not rebuild:
            return base.standin, False
    except ImageNotFound:
        old = None
    # The debootstrap root comes first when nothing is built yet: say how long all of them take.
    usual = ("; all stand-ins usually take about 3-4 min, most of it compiling CPython"
             if not base.recipe else "")
    print(f"Building the stand-in {base.standin} for {base.official} (offline, from "
          f"{_made_from(key)}{usual}) ...", flush=True)
    if not base.recipe:
        _import_rootfs(client, base, want)
    else:  # stand-ins build on stand-ins: the same Debian mirror all the way down
        parent_ref, _ = _standin(client, base.parent)
        with _context(base) as context:
            images.build(client, context, base.standin, OWNER,
                         buildargs={BASES[base.parent].build_arg: parent_ref},
                         labels=_standin_labels(base, want), log="steps")
    if old is not None:  # earlier builds lost their tags: do not leave them dangling
        client.images.prune(filters={"dangling": True, "label": f"{LABEL}={OWNER}"})
    return base.standin, True


@contextlib.contextmanager
def _context(base):
    """The recipe folder as a build context, with the wheels its requirements.txt pins."""
    recipe = ROOT / base.recipe
    if not (recipe / "requirements.txt").exists():
        yield recipe
        return
    BUILD.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=BUILD, prefix="base-context-") as tmp:
        context = Path(tmp) / "context"
        shutil.copytree(recipe, context)
        wheelhouse.stage(context, recipe / "requirements.txt")
        yield context


def debian_mirror():
    """The Debian mirror: WORKBOOK_DEBIAN_MIRROR, else the host's own apt sources."""
    if os.environ.get("WORKBOOK_DEBIAN_MIRROR"):
        return os.environ["WORKBOOK_DEBIAN_MIRROR"]
    found = mirrors_from_sources(_read_sources())
    if found and _host_is_debian():
        return found[0]
    raise WorkbookError(
        "No Debian mirror known to build the offline base images from.",
        "Set WORKBOOK_DEBIAN_MIRROR to a Debian mirror URL (e.g. your organisation's), "
        "or make an official python:3.11-slim image available (`docker pull` or `docker load`).")


def _host_is_debian():
    try:
        return re.search(r"^ID=\"?debian", Path("/etc/os-release").read_text(), re.M) is not None
    except OSError:
        return False


def _read_sources():
    texts = []
    for p in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if p.suffix in (".list", ".sources") and p.is_file():
            texts.append((p.suffix, p.read_text()))
    return texts


def mirrors_from_sources(texts):
    """Main-archive mirror URLs from apt sources ((suffix, text) pairs), security ones left out."""
    urls = []
    for suffix, text in texts:
        if suffix == ".sources":  # deb822 stanzas
            for stanza in re.split(r"\n\s*\n", text):
                fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, re.M))
                if "deb" in fields.get("Types", "").split() and "Enabled: no" not in stanza:
                    urls += fields.get("URIs", "").split()
        else:
            for line in text.splitlines():
                m = re.match(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
                if m:
                    urls.append(m.group(1))
    out = []
    for u in urls:
        if "security" not in u and u.startswith(("http://", "https://", "file:/")) and u not in out:
            out.append(u)
    return out


def _import_rootfs(client, base, want):
    """debootstrap a minimal Debian, trim it, and `docker import` it as the slim stand-in."""
    if not shutil.which("debootstrap"):
        if os.geteuid() == 0 and shutil.which("apt-get"):
            subprocess.run(["apt-get", "install", "-y", "debootstrap"], check=True,
                           stdout=subprocess.DEVNULL)
        else:
            raise WorkbookError("debootstrap is needed to build the offline base images.",
                                "Install it (`sudo apt-get install debootstrap`) or make the "
                                "official images available, then run `make bases` again.")
    if os.geteuid() != 0:
        raise WorkbookError("Building the offline base images needs root (debootstrap).",
                            "Run `sudo make bases` once, or make the official images available.")
    mirror = debian_mirror()
    BUILD.mkdir(parents=True, exist_ok=True)
    log = BUILD / "debootstrap.log"
    with tempfile.TemporaryDirectory(dir=BUILD, prefix="rootfs-") as tmp:
        rootfs, tar = Path(tmp) / "rootfs", Path(tmp) / "rootfs.tar"
        print(f"  debootstrap --variant=minbase {SUITE} from {mirror} (log: {log})", flush=True)
        with open(log, "w") as fh:
            done = subprocess.run(["debootstrap", "--variant=minbase", SUITE, str(rootfs), mirror],
                                  stdout=fh, stderr=subprocess.STDOUT)
        if done.returncode != 0:
            raise WorkbookError(f"debootstrap failed (exit {done.returncode}).", f"Read {log}.")
        _trim(rootfs)
        subprocess.run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(tar), "."], check=True)
        changes = ['CMD ["bash"]', "ENV LANG=C.UTF-8"] + [
            f"LABEL {k}={json.dumps(v)}" for k, v in
            {LABEL: OWNER, **_standin_labels(base, want)}.items()]
        repo, tag = base.standin.split(":")
        client.api.import_image_from_file(str(tar), repository=repo, tag=tag, changes=changes)
    print(f"  imported {base.standin}", flush=True)


def _trim(rootfs):
    for pattern in TRIM:
        for p in rootfs.glob(pattern):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
    (rootfs / "etc/dpkg/dpkg.cfg.d/docker-slim").write_text(DPKG_EXCLUDES)
    (rootfs / "etc/apt/apt.conf.d/docker-clean").write_text(APT_CLEAN)
