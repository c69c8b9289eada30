"""The classroom kit: bundle a few images and wheels, remove one, load it back, verify, build offline."""

import hashlib
import io
import json
import shutil
import tarfile

import pytest
from docker.errors import ImageNotFound

from workbook import bases, bundle, doctor, engine, images, resources, wheelhouse

OWNER = "test_bundle"
TINY = "workbook/bundle-tiny:test"


@pytest.fixture(scope="module")
def kit(client, tmp_path_factory):
    """A bundle of the debian and python-slim stand-ins, a tiny image built here and two wheels."""
    tmp = tmp_path_factory.mktemp("bundle")
    ctx = tmp / "tiny"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("ARG DEBIAN_IMAGE\nFROM ${DEBIAN_IMAGE}\n"
                                    "RUN echo bundled > /message.txt\n")
    images.build(client, ctx, TINY, OWNER, buildargs=bases.build_args(client), log="none")
    src = tmp / "wheels-src"
    src.mkdir()
    for w in sorted(wheelhouse.WHEELHOUSE.glob("*.whl"), key=lambda w: w.stat().st_size)[:2]:
        shutil.copy2(w, src / w.name)
    (src / ".requirements.sha256").write_text("stamp")
    refs = [bases.resolve("debian-slim", client).ref, bases.resolve("python-slim", client).ref, TINY]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(wheelhouse, "WHEELHOUSE", src)
        mp.setattr(wheelhouse, "STAMP", src / ".requirements.sha256")
        mp.setattr(images, "MARKER", tmp / "bundle-loaded.json")
        manifest = bundle.make(client, tmp / "kit.tar", refs)
        yield {"tmp": tmp, "path": tmp / "kit.tar", "manifest": manifest, "refs": refs, "src": src, "mp": mp}
    resources.cleanup(client, OWNER)


def test_manifest_records_every_image_and_file(client, kit):
    m = kit["manifest"]
    assert [e["ref"] for e in m["images"]] == kit["refs"]
    for e in m["images"]:
        assert e["id"] == client.images.get(e["ref"]).id
        assert e["platform"] == engine.platform(client)
    wheels = sorted(p.name for p in kit["src"].glob("*.whl"))
    assert sorted(n[len(bundle.WHEELS):] for n in m["files"] if n.startswith(bundle.WHEELS)) == wheels
    for w in wheels:
        assert m["files"][bundle.WHEELS + w] == hashlib.sha256((kit["src"] / w).read_bytes()).hexdigest()
    assert m["arch"] == wheelhouse.arch(client)
    with tarfile.open(kit["path"]) as tf:
        assert tf.getnames()[0] == bundle.MANIFEST


def test_intact_bundle_verifies(client, kit):
    assert bundle.verify(kit["path"], client)["images"] == kit["manifest"]["images"]


def test_round_trip_remove_load_verify_build_offline(client, kit):
    tiny_id = client.images.get(TINY).id
    client.images.remove(TINY)
    with pytest.raises(ImageNotFound):
        client.images.get(TINY)
    assert bundle.check_images(client, kit["manifest"]) == [(TINY, "missing")]
    restored = kit["tmp"] / "wheels-restored"
    kit["mp"].setattr(wheelhouse, "WHEELHOUSE", restored)
    kit["mp"].setattr(wheelhouse, "STAMP", restored / ".requirements.sha256")
    assert bundle.loaded(client)[0] is False

    info = bundle.load(client, kit["path"])

    assert client.images.get(TINY).id == tiny_id
    assert bundle.check_images(client, kit["manifest"]) == []
    assert sorted(p.name for p in restored.glob("*.whl")) == sorted(p.name for p in kit["src"].glob("*.whl"))
    assert (restored / ".requirements.sha256").read_text() == "stamp"
    assert info["wheels"] == 2
    ok, text = bundle.loaded(client)
    assert ok and "3 images" in text and "every id as in the bundle" in text
    # docker load keeps no build cache; the loaded images serve as one (images.build: --cache-from).
    again = images.build(client, kit["tmp"] / "tiny", TINY, OWNER, buildargs=bases.build_args(client), log="none")
    assert again.id == tiny_id
    # Offline: a build FROM the loaded image, run with no network at all.
    ctx = kit["tmp"] / "offline"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {TINY}\nRUN cp /message.txt /copied.txt\n"
                                    'CMD ["cat", "/copied.txt"]\n')
    built = images.build(client, ctx, "workbook/bundle-offline:test", OWNER, log="none")
    out = client.containers.run(built.id, network_mode="none", remove=True, labels=resources.labels(OWNER))
    assert out.decode().strip() == "bundled"


def test_doctor_notices_an_image_changed_after_loading(client, kit, tmp_path):
    marker = tmp_path / "bundle-loaded.json"
    kit["mp"].setattr(images, "MARKER", marker)
    ok, text = bundle.loaded(client)
    assert not ok and "none loaded" in text
    wrong = {"bundle": str(kit["path"]), "loaded": "2026-01-01T00:00:00+00:00", "wheels": 0,
             "images": [{"ref": TINY, "id": "sha256:" + "0" * 64}]}
    marker.write_text(json.dumps(wrong))
    ok, text = bundle.loaded(client)
    assert not ok and "1 changed since" in text and TINY in text


def _rewrite(src, dest, change):
    """Copy a bundle, passing every member's (info, bytes) through change()."""
    with tarfile.open(src) as tin, tarfile.open(dest, "w") as tout:
        for member in tin:
            data = tin.extractfile(member).read()
            member, data = change(member, data)
            member.size = len(data)
            tout.addfile(member, io.BytesIO(data))
    return dest


def test_a_tampered_wheel_fails_verification(client, kit, tmp_path):
    def flip(member, data):
        if member.name.startswith(bundle.WHEELS) and member.name.endswith(".whl"):
            data = data[:100] + bytes([data[100] ^ 1]) + data[101:]
        return member, data
    bad = _rewrite(kit["path"], tmp_path / "bad.tar", flip)
    with pytest.raises(bundle.BundleError, match=r"damaged: wheelhouse/.*\.whl has sha256 .* the manifest says"):
        bundle.load(client, bad)


def test_a_tampered_image_archive_fails_before_anything_is_loaded(client, kit, tmp_path):
    def grow(member, data):
        return member, data + b"\0" * 512 if member.name == bundle.IMAGES else data
    bad = _rewrite(kit["path"], tmp_path / "bad.tar", grow)
    with pytest.raises(bundle.BundleError, match="images.tar has sha256"):
        bundle.verify(bad)


def test_a_bundle_for_another_architecture_is_refused(client, kit, tmp_path):
    other = "aarch64" if wheelhouse.arch(client) == "x86_64" else "x86_64"

    def rearch(member, data):
        if member.name == bundle.MANIFEST:
            data = json.dumps({**json.loads(data), "arch": other}).encode()
        return member, data
    bad = _rewrite(kit["path"], tmp_path / "other.tar", rearch)
    with pytest.raises(bundle.BundleError, match=f"made for {other}"):
        bundle.verify(bad, client)


def test_not_a_bundle(tmp_path):
    with pytest.raises(bundle.BundleError, match="No bundle at"):
        bundle.verify(tmp_path / "missing.tar")
    plain = tmp_path / "plain.tar"
    with tarfile.open(plain, "w") as tf:
        tf.addfile(tarfile.TarInfo("hello.txt"), io.BytesIO(b""))
    with pytest.raises(bundle.BundleError, match="not a workbook bundle"):
        bundle.verify(plain)


def _arm64_image(client):
    """A one-file image whose configuration says linux/arm64, made with docker load."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tf:
        info = tarfile.TarInfo("hello.txt")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"hi\n"))
    layer = layer.getvalue()
    config = json.dumps({"architecture": "arm64", "os": "linux",
                         "config": {"Labels": resources.image_labels(OWNER)},
                         "rootfs": {"type": "layers",
                                    "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]}}).encode()
    cid = hashlib.sha256(config).hexdigest()
    files = {f"{cid}.json": config, "layer.tar": layer,
             "manifest.json": json.dumps([{"Config": f"{cid}.json", "RepoTags": ["workbook/bundle-arm64:test"],
                                           "Layers": ["layer.tar"]}]).encode()}
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    client.images.load(out.getvalue())
    return "workbook/bundle-arm64:test"


def test_doctor_warns_about_an_image_of_another_platform(client, kit):
    assert doctor.foreign_images(client, kit["refs"]) == []
    ref = _arm64_image(client)
    try:
        assert doctor.foreign_images(client, [ref, *kit["refs"]]) == [(ref, "linux/arm64")]
        check = next(c for c in doctor.platform_checks(client) if c.name == "image platforms")
        assert not check.ok and not check.required and f"{ref} is linux/arm64" in check.detail
    finally:
        client.images.remove(ref)


def test_cache_from_only_for_images_a_loaded_bundle_brought(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "MARKER", tmp_path / "bundle-loaded.json")
    assert images.cache_from(TINY) is None  # no bundle loaded: the engine's own cache as always
    images.MARKER.write_text(json.dumps({"images": [{"ref": TINY, "id": "sha256:x"},
                                                    {"ref": "workbook/python:3.11-slim", "id": "sha256:y"}]}))
    assert images.cache_from(TINY) == [TINY, "workbook/python:3.11-slim"]
    assert images.cache_from("workbook/other:tag") is None
