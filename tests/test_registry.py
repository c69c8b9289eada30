"""The local registry: push, pull by tag and by digest, a moving tag, delete, and clean stops."""

import shutil
import subprocess
import urllib.request

import pytest
from docker.errors import NotFound

from workbook import WorkbookError, images, registry, resources

OWNER = "test_registry"


def _scratch_image(client, tmp_path, text):
    """A one-file FROM scratch image: tiny, so pushing it takes milliseconds."""
    ctx = tmp_path / text
    ctx.mkdir()
    (ctx / "message.txt").write_text(text)
    (ctx / "Dockerfile").write_text(f"FROM scratch\nCOPY message.txt /\nLABEL message={text}\n")
    return images.build(client, ctx, f"workbook/registry-{text}:test", OWNER, log="none")


@pytest.fixture(scope="module", autouse=True)
def cleanup(client):
    yield
    resources.cleanup(client, OWNER)


def test_push_pull_by_tag_and_digest_a_moving_tag_and_delete(client, tmp_path):
    v1, v2 = _scratch_image(client, tmp_path, "one"), _scratch_image(client, tmp_path, "two")
    with registry.start(client, OWNER) as reg:
        assert reg.address.startswith("127.0.0.1:") and reg.proc is not None
        first = reg.push(v1, "workbook/hello", "latest")
        d1 = first.digest
        assert first.sent == 1 and first.skipped == 0
        assert d1.startswith("sha256:") and reg.digest("workbook/hello", "latest") == d1
        again = reg.push(v1, "workbook/hello", "same")  # same content: nothing sent, same digest
        assert again == (d1, 0, 1)
        assert reg.catalog() == ["workbook/hello"] and sorted(reg.tags("workbook/hello")) == ["latest", "same"]
        d2 = reg.push(v2, "workbook/hello", "latest").digest  # the tag moves; d1 stays
        assert d2 != d1 and reg.digest("workbook/hello", "latest") == d2
        client.images.remove(reg.ref("workbook/hello", "latest"))
        assert reg.pull("workbook/hello", tag="latest").id == v2.id
        assert reg.pull("workbook/hello", digest=d1).id == v1.id
        assert reg.delete("workbook/hello", d1) and not reg.has("workbook/hello", d1)
        assert reg.has("workbook/hello", d2)
        with pytest.raises(WorkbookError, match="docker pull .* failed: .*manifest unknown"):
            reg.pull("workbook/hello", digest="sha256:" + "0" * 64)
        storage, address = reg.storage, reg.address
        assert (storage / "data").is_dir()
    assert reg.proc is None and not storage.exists()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://{address}/v2/", timeout=2)
    left = [t for img in client.images.list() for t in img.tags + (img.attrs.get("RepoDigests") or [])
            if t.startswith(address)]
    assert left == []
    client.images.get(v1.id) and client.images.get(v2.id)  # the images themselves stay


def test_a_fresh_registry_is_empty_and_a_missing_digest_is_not_there(client):
    with registry.start(client, OWNER) as reg:
        assert reg.catalog() == []
        assert not reg.has("workbook/hello", "sha256:" + "0" * 64)


def test_registry_in_a_container(client, tmp_path):
    """The path for the official registry:2 image, with an image made from Debian's binary."""
    ctx = tmp_path / "image"
    ctx.mkdir()
    shutil.copy2(registry.binary(), ctx / "docker-registry")
    (ctx / "config.yml").write_text(registry.CONFIG.format(root="/var/lib/registry", port=5000)
                                    .replace("127.0.0.1:5000", ":5000"))
    from workbook import bases
    (ctx / "Dockerfile").write_text(
        "ARG DEBIAN_IMAGE\nFROM ${DEBIAN_IMAGE}\nCOPY docker-registry /usr/bin/\n"
        "COPY config.yml /etc/docker/registry/config.yml\nEXPOSE 5000\n"
        'CMD ["docker-registry", "serve", "/etc/docker/registry/config.yml"]\n')
    image = images.build(client, ctx, "workbook/registry-image:test", OWNER,
                         buildargs=bases.build_args(client), log="none")
    v1 = _scratch_image(client, tmp_path, "three")
    with registry.start(client, OWNER, image=image.id) as reg:
        assert reg.container is not None and reg.proc is None
        digest = reg.push(v1, "workbook/hello", "v1").digest
        client.images.remove(reg.ref("workbook/hello", "v1"))
        assert reg.pull("workbook/hello", digest=digest).id == v1.id
        container = reg.container
    with pytest.raises(NotFound):
        container.reload()


def test_a_clear_error_when_no_registry_can_be_had(client, monkeypatch):
    monkeypatch.setattr(registry, "binary", lambda: None)
    monkeypatch.setattr(registry, "_installable", lambda: False)
    monkeypatch.setattr(registry, "OFFICIAL", "workbook/no-such-registry:none")
    from workbook import bases, engine
    monkeypatch.setattr(bases, "_registry_down", True)
    monkeypatch.setattr(engine, "_can_self_install", lambda: False)
    with pytest.raises(WorkbookError) as exc:
        registry.start(client, OWNER)
    assert "docker-registry is not installed" in exc.value.problem
    assert "apt-get install docker-registry" in exc.value.fix


def test_the_debian_package_serves_only_on_loopback(client):
    with registry.start(client, OWNER) as reg:
        listening = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True, check=True).stdout
        port = reg.address.split(":")[1]
        lines = [ln for ln in listening.splitlines() if f":{port} " in ln]
        assert lines and all("127.0.0.1:" + port in ln for ln in lines)
