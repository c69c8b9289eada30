"""The classroom kit: one archive with the images and the wheelhouse, loaded and verified offline.

A bundle is an uncompressed tar: bundle.json (the manifest, first), images.tar (one
`docker save` of every image: shared layers stored once) and wheelhouse/*.whl. The manifest
records each image's reference, id (the sha256 of its configuration: the content) and
platform, and the sha256 of images.tar and of every wheel; `load` checks them all.
"""

import hashlib
import json
import os
import tarfile
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from docker.errors import ImageNotFound

from . import BUILD, WorkbookError, bases, engine, images, service, wheelhouse
from .resources import STAGE_REPO

FORMAT = 1
MANIFEST = "bundle.json"
IMAGES = "images.tar"
WHEELS = "wheelhouse/"
# load() writes images.MARKER: the doctor reports it, images.cache_from() reads it.
CHUNK = 1 << 20


class BundleError(WorkbookError):
    """A bundle that is damaged, incomplete or made for another machine."""


def default_path(client):
    """build/bundle/workbook-bundle-ARCH.tar."""
    return BUILD / "bundle" / f"workbook-bundle-{wheelhouse.arch(client)}.tar"


def default_refs(client):
    """The base images present, the workbook's shared images (ladder, ONNX, dashboard) and
    their builder stages (cache for rebuilding them offline)."""
    refs = [r.ref for r in (bases.present(client, k) for k in bases.BASES) if r]
    refs += sorted(t for img in client.api.images(name=f"{STAGE_REPO}/{service.LADDER_OWNER}")
                   for t in img.get("RepoTags") or [] if t.startswith(f"{STAGE_REPO}/{service.LADDER_OWNER}:"))
    for ref in [service.tag(v) for v in service.VARIANTS] + ["workbook/ui:latest"]:
        try:
            client.images.get(ref)
            refs.append(ref)
        except ImageNotFound:
            pass
    return refs


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def make(client, out=None, refs=None, wheels=True):
    """docker save REFS + the wheelhouse + a manifest into one tar; return the manifest."""
    refs = list(refs) if refs is not None else default_refs(client)
    out = Path(out or default_path(client))
    out.parent.mkdir(parents=True, exist_ok=True)
    entries = []
    for ref in refs:
        try:
            img = client.images.get(ref)
        except ImageNotFound:
            raise BundleError(f"{ref} is not on this engine.", "Run `make setup` (or build it) first.") from None
        entries.append({"ref": ref, "id": img.id, "platform": images.platform_of(img),
                        "size": img.attrs["Size"]})
    whls = sorted(wheelhouse.WHEELHOUSE.glob("*.whl")) if wheels else []
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".bundle-") as tmp:
        saved, h = Path(tmp) / IMAGES, hashlib.sha256()
        # One save for all: layers shared by several images are written once.
        # No time-out: the engine answers only once it has exported gigabytes of layers.
        api = client.api
        res = api._get(api._url("/images/get"), params={"names": refs}, stream=True, timeout=None)
        api._raise_for_status(res)
        with open(saved, "wb") as f:
            for block in res.iter_content(CHUNK):
                f.write(block)
                h.update(block)
        manifest = {
            "format": FORMAT,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "arch": wheelhouse.arch(client),
            "engine_platform": engine.platform(client),
            "images": entries,
            "files": {IMAGES: h.hexdigest(),
                      **{WHEELS + w.name: _sha256(w) for w in whls}},
            "wheelhouse_stamp": wheelhouse.STAMP.read_text() if whls and wheelhouse.STAMP.exists() else None,
        }
        part = Path(tmp) / out.name
        with tarfile.open(part, "w", format=tarfile.PAX_FORMAT) as tf:
            data = json.dumps(manifest, indent=1).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime = len(data), int(time.time())
            tf.addfile(info, _BytesReader(data))
            tf.add(saved, arcname=IMAGES)
            for w in whls:
                tf.add(w, arcname=WHEELS + w.name)
        os.replace(part, out)
    return manifest


class _BytesReader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def read(self, n=-1):
        n = len(self.data) - self.pos if n < 0 else n
        out = self.data[self.pos:self.pos + n]
        self.pos += len(out)
        return out


def _damaged(path, what, fix="Copy the bundle again from where it was made, or run `make bundle` there again."):
    return BundleError(f"The bundle {path} is damaged: {what}.", fix)


def read_manifest(path):
    """The manifest of a bundle (its first member), or a BundleError."""
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"No bundle at {path}.", "Copy it there (e.g. from the USB stick), or pass its path.")
    try:
        with tarfile.open(path, "r:") as tf:
            first = tf.next()
            if first is None or first.name != MANIFEST:
                raise BundleError(f"{path} is not a workbook bundle (no {MANIFEST} first).",
                                  "Make one with `make bundle`.")
            manifest = json.load(tf.extractfile(first))
    except (tarfile.TarError, ValueError, OSError) as exc:
        raise _damaged(path, f"cannot read it ({exc})") from None
    if manifest.get("format") != FORMAT:
        raise BundleError(f"{path} has bundle format {manifest.get('format')}, this workbook reads {FORMAT}.",
                          "Make the bundle with the same version of the workbook.")
    return manifest


def verify(path, client=None):
    """Check every file of the bundle against its manifest's sha256 (and the engine's
    architecture when a client is given); return the manifest."""
    manifest, seen = read_manifest(path), set()
    if client is not None and manifest["arch"] != wheelhouse.arch(client):
        raise BundleError(f"The bundle was made for {manifest['arch']} ({manifest['engine_platform']}); "
                          f"this engine runs {engine.platform(client)}.",
                          "Make the bundle on a machine of the same architecture.")
    want = manifest["files"]
    try:
        with tarfile.open(path, "r:") as tf:
            for member in tf:
                if member.name == MANIFEST:
                    continue
                if member.name not in want:
                    raise _damaged(path, f"{member.name} is not in its manifest")
                h, f = hashlib.sha256(), tf.extractfile(member)
                while block := f.read(CHUNK):
                    h.update(block)
                if h.hexdigest() != want[member.name]:
                    raise _damaged(path, f"{member.name} has sha256 {h.hexdigest()[:12]}…, "
                                         f"the manifest says {want[member.name][:12]}…")
                seen.add(member.name)
    except (tarfile.TarError, OSError) as exc:
        raise _damaged(path, f"cannot read it ({exc})") from None
    missing = sorted(set(want) - seen)
    if missing:
        raise _damaged(path, f"{len(missing)} file(s) missing, e.g. {missing[0]}")
    return manifest


def check_images(client, manifest):
    """(ref, problem) for every image of the manifest the engine lacks or holds with another id."""
    problems = []
    for entry in manifest["images"]:
        try:
            got = client.images.get(entry["ref"]).id
        except ImageNotFound:
            problems.append((entry["ref"], "missing"))
            continue
        if got != entry["id"]:
            problems.append((entry["ref"], f"id {got[7:19]}, the bundle says {entry['id'][7:19]}"))
    return problems


def load(client, path=None):
    """Verify a bundle, docker load its images, restore its wheels, check every image id."""
    path = Path(path or default_path(client))
    manifest = verify(path, client)
    with tarfile.open(path, "r:") as tf:
        for member in tf:
            if member.name == IMAGES:
                f = tf.extractfile(member)
                res = client.api._post(client.api._url("/images/load"), stream=True, timeout=None,
                                       data=iter(lambda f=f: f.read(CHUNK), b""))
                client.api._raise_for_status(res)
                for status in client.api._stream_helper(res, decode=True):
                    if "error" in status:
                        raise _damaged(path, f"docker load refused {IMAGES}: {status['error']}")
            elif member.name.startswith(WHEELS):
                _restore_wheel(tf, member, manifest["files"][member.name])
    if manifest.get("wheelhouse_stamp"):
        wheelhouse.STAMP.write_text(manifest["wheelhouse_stamp"])
    problems = check_images(client, manifest)
    if problems:
        raise _damaged(path, "after loading, " + "; ".join(f"{r}: {p}" for r, p in problems))
    summary = {"bundle": str(path), "created": manifest["created"],
               "loaded": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "images": [{"ref": e["ref"], "id": e["id"]} for e in manifest["images"]],
               "wheels": sum(1 for n in manifest["files"] if n.startswith(WHEELS))}
    images.MARKER.parent.mkdir(parents=True, exist_ok=True)
    images.MARKER.write_text(json.dumps(summary, indent=1))
    return summary


def _restore_wheel(tf, member, sha):
    """Put a wheel into the wheelhouse unless an identical one is there already."""
    dest = wheelhouse.WHEELHOUSE / Path(member.name).name
    if dest.exists() and _sha256(dest) == sha:
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".part")
    with open(tmp, "wb") as out:
        f = tf.extractfile(member)
        while block := f.read(CHUNK):
            out.write(block)
    os.replace(tmp, dest)


def loaded(client=None):
    """(loaded, text) for the doctor: was a bundle loaded here, and do its images still match?"""
    if not images.MARKER.exists():
        return False, "none loaded (not needed when `make setup` can reach the network)"
    try:
        info = json.loads(images.MARKER.read_text())
    except ValueError:
        return False, f"{images.MARKER} is unreadable"
    text = (f"loaded {info['loaded'][:10]} from {Path(info['bundle']).name}: "
            f"{len(info['images'])} images, {info['wheels']} wheels")
    if client is not None:
        problems = check_images(client, info)
        if problems:
            return False, text + f"; {len(problems)} changed since (e.g. {problems[0][0]}: {problems[0][1]})"
        text += ", every id as in the bundle"
    return True, text


def describe(manifest, path):
    """A few lines: what a bundle holds and how big it is."""
    size = Path(path).stat().st_size
    wheels = sum(1 for n in manifest["files"] if n.startswith(WHEELS))
    lines = [(f"{path}: {size / 1e9:.2f} GB, {len(manifest['images'])} images, {wheels} wheels, "
              f"{manifest['arch']} ({manifest['engine_platform']})")]
    lines += [f"  {e['ref']:<36} {e['id'][7:19]}  {e['platform']}" for e in manifest["images"]]
    return "\n".join(lines)
