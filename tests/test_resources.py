import urllib.request

import pytest

from workbook import bases, images, resources


def test_unique_names_do_not_collide():
    names = {resources.unique_name("01_containers_vs_vms") for _ in range(200)}
    assert len(names) == 200 and all(n.startswith("wb-01-c-") for n in names)


def test_cleanup_removes_only_what_is_labelled(client):
    ref = bases.resolve("debian-slim", client).ref
    mine = client.containers.create(ref, ["true"], labels=resources.labels("test-cleanup"))
    net = client.networks.create(resources.unique_name("test-cleanup", "n"),
                                 labels=resources.labels("test-cleanup"))
    vol = client.volumes.create(labels=resources.labels("test-cleanup"))
    other_owner = client.containers.create(ref, ["true"], labels=resources.labels("test-other"))
    learners = client.containers.create(ref, ["true"])  # no label: a learner's own container
    try:
        removed = resources.cleanup(client, "test-cleanup")
        assert removed["containers"] == [mine.name] and removed["networks"] == [net.name]
        assert removed["volumes"] == [vol.name]
        names = {c.name for c in client.containers.list(all=True)}
        assert mine.name not in names
        assert other_owner.name in names and learners.name in names
    finally:
        other_owner.remove(force=True)
        learners.remove(force=True)


def test_published_port_is_loopback_and_reachable(client):
    ref = bases.resolve("python-slim", client).ref
    c = client.containers.run(ref, ["python", "-m", "http.server", "8000"], detach=True,
                              ports={"8000/tcp": ("127.0.0.1", None)},
                              name=resources.unique_name("tests"), labels=resources.labels("tests"))
    try:
        port = resources.host_port(c, "8000/tcp")
        c.reload()
        assert all(b["HostIp"] == "127.0.0.1" for b in c.attrs["NetworkSettings"]["Ports"]["8000/tcp"])
        for _ in range(50):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
                    assert resp.status == 200
                    break
            except OSError:
                import time
                time.sleep(0.1)
        else:
            pytest.fail("the published port never answered")
    finally:
        c.remove(force=True)


def test_learners_container_from_a_workbook_image_survives_clean(client, tmp_path):
    """Containers inherit image labels: one a learner ran from a workbook image is theirs."""
    (tmp_path / "Dockerfile").write_text(
        "ARG DEBIAN_IMAGE=debian:bookworm-slim\nFROM ${DEBIAN_IMAGE}\nCMD [\"true\"]\n")
    img = images.build(client, tmp_path, "workbook/test-inherit:latest", "test-inherit",
                       buildargs=bases.build_args(client), log="none")
    learners = client.containers.create(img.id, name=resources.unique_name("learner"))
    assert learners.labels.get("workbook") == "test-inherit"  # inherited from the image
    try:
        removed = resources.cleanup(client, "test-inherit")
        assert learners.name not in removed["containers"]
        learners.reload()  # still there
        assert removed["kept (in use)"] == ["workbook/test-inherit:latest"]
    finally:
        learners.remove(force=True)
        resources.cleanup(client, "test-inherit")
    assert not client.images.list(filters={"label": "workbook=test-inherit"})


def test_learners_image_built_on_a_workbook_base_is_not_the_workbooks(client, tmp_path):
    """It inherits `workbook=bases` from its base; `make clean` must still leave it alone."""
    (tmp_path / "Dockerfile").write_text(f"FROM {bases.resolve('debian-slim', client).ref}\n"
                                         "RUN echo mine > /mine\n")
    img, _ = client.images.build(path=str(tmp_path), tag="learners-own-app:v1", rm=True, forcerm=True)
    try:
        assert img.labels.get("workbook") == "bases"  # inherited
        found = resources.find(client)  # what `make clean` would remove
        assert img.id not in {i.id for i in found["images"]}
        assert bases.resolve("debian-slim", client).ref in {t for i in found["images"] for t in i.tags}
    finally:
        client.images.remove(img.id)


def test_cleanup_removes_only_its_own_stage_tag(client, tmp_path):
    # Two owners whose builds share a builder stage tag the same image (which, like every
    # builder stage, carries its base's labels, not an owner's): one owner's cleanup takes only
    # its own name away and leaves the image to the other.
    (tmp_path / "Dockerfile").write_text("ARG DEBIAN_IMAGE\nFROM ${DEBIAN_IMAGE}\nRUN echo stage > /stage.txt\n")
    image, _ = client.images.build(path=str(tmp_path), buildargs=bases.build_args(client), rm=True)
    for owner in ("test-stage-a", "test-stage-b"):
        image.tag(f"{resources.STAGE_REPO}/{owner}", "shared-0")
    try:
        assert resources.cleanup(client, "test-stage-a")["stage images"]
        assert client.images.get(image.id).tags == [f"{resources.STAGE_REPO}/test-stage-b:shared-0"]
    finally:
        resources.cleanup(client, "test-stage-b")
    assert not client.images.list(filters={"reference": f"{resources.STAGE_REPO}/test-stage-*"})
