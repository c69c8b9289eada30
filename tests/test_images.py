import re
import secrets

import pytest

from workbook import bases, images


@pytest.fixture()
def context(tmp_path):
    return tmp_path


def test_build_labels_the_image_and_streams_steps(client, context, capsys):
    token = secrets.token_hex(4)  # a step no earlier build has cached
    (context / "Dockerfile").write_text("ARG DEBIAN_IMAGE=debian:bookworm-slim\nFROM ${DEBIAN_IMAGE}\n"
                                        f"RUN echo {token} > /built.txt\n")
    outs = []
    for _ in range(2):
        img = images.build(client, context, "workbook/test-build:ok", "tests",
                           buildargs=bases.build_args(client))
        outs.append(capsys.readouterr().out.splitlines())
    assert img.labels["workbook"] == "tests"
    cold, warm = outs
    step = f"Step 3/4 : RUN echo {token} > /built.txt"  # 4th step: docker-py's LABEL
    assert step in cold and step + images.CACHE_MARK in warm
    assert re.fullmatch(r"4 steps, 0 from cache, \d+\.\d s", cold[-1]), cold[-1]
    assert re.fullmatch(r"4 steps, 2 from cache, \d+\.\d s", warm[-1]), warm[-1]  # RUN, LABEL
    images.build(client, context, "workbook/test-build:ok", "tests",
                 buildargs=bases.build_args(client), log="summary")
    assert capsys.readouterr().out.startswith("4 steps, 2 from cache, ")
    with pytest.raises(ValueError, match="pick one of"):
        images.build(client, context, "workbook/test-build:ok", "tests", log="progress")


def test_failed_build_names_the_step_and_its_output(client, context):
    (context / "Dockerfile").write_text("ARG DEBIAN_IMAGE=debian:bookworm-slim\nFROM ${DEBIAN_IMAGE}\n"
                                        "RUN echo about to fail && exit 3\n")
    with pytest.raises(images.BuildFailed) as err:
        images.build(client, context, "workbook/test-build:fails", "tests",
                     buildargs=bases.build_args(client), log="none")
    text = str(err.value)
    assert "RUN echo about to fail && exit 3" in text  # the failing step
    assert "about to fail" in text.split("failed at:")[1]  # its output
    assert "returned a non-zero code: 3" in text
    assert len(err.value._render_traceback_()) == 1  # one message in a notebook, no traceback


def test_exists(client):
    assert images.exists(client, bases.resolve("debian-slim", client).ref)
    assert not images.exists(client, "workbook/does-not-exist:never")


def test_builder_stage_result_is_owned_then_cleaned(client, context):
    """The classic builder keeps a builder stage's result untagged; we tag it for cleanup."""
    from docker.errors import ImageNotFound
    from workbook import resources
    base = bases.resolve("debian-slim", client).ref
    (context / "Dockerfile").write_text(
        "ARG DEBIAN_IMAGE=debian:bookworm-slim\n"
        "FROM ${DEBIAN_IMAGE} AS builder\nRUN echo from-builder > /x\n"
        "FROM ${DEBIAN_IMAGE}\nCOPY --from=builder /x /x\n")
    final = images.build(client, context, "workbook/test-stages:latest", "test-stages",
                         buildargs=bases.build_args(client), log="none")
    (stage,) = client.images.list(filters={"reference": "workbook-stage/test-stages"})
    assert stage.id != final.id
    assert client.containers.run(stage.id, ["cat", "/x"], remove=True,
                                 labels=resources.labels("test-stages")) == b"from-builder\n"
    removed = resources.cleanup(client, "test-stages")
    assert removed["images"] == ["workbook/test-stages:latest"] and len(removed["stage images"]) == 1
    with pytest.raises(ImageNotFound):
        client.images.get(stage.id)  # untagged and childless: gone, not left dangling
    assert base in client.images.get(base).tags  # the base kept its own tag


def test_failed_build_keeps_its_layers_owned(client, context):
    (context / "Dockerfile").write_text("ARG DEBIAN_IMAGE=debian:bookworm-slim\nFROM ${DEBIAN_IMAGE}\n"
                                        "RUN echo step-ok > /ok\nRUN exit 1\n")
    with pytest.raises(images.BuildFailed):
        images.build(client, context, "workbook/test-fails:x", "test-fails",
                     buildargs=bases.build_args(client), log="none")
    from workbook import resources
    (kept,) = client.images.list(filters={"reference": "workbook-stage/test-fails"})
    resources.cleanup(client, "test-fails")
    assert not client.images.list(filters={"reference": "workbook-stage/test-fails"})
    from docker.errors import ImageNotFound
    with pytest.raises(ImageNotFound):
        client.images.get(kept.id)



def vanishing(monkeypatch, client, failures, error='unable to find image "sha256:50fb62fa8db9"'):
    """Make the client's first `failures` builds fail with `error`, as when a cached layer is
    removed mid-build (images.cache_vanished); returns the list of calls made."""
    monkeypatch.undo()  # the real build again, under the next fake
    real, calls = client.api.build, []

    def build(**kwargs):
        calls.append(kwargs["tag"])
        if len(calls) <= failures:
            return iter([{"stream": "Step 1/4 : ARG DEBIAN_IMAGE=debian:bookworm-slim\n"}, {"error": error}])
        return real(**kwargs)
    monkeypatch.setattr(client.api, "build", build)
    return calls


def test_a_cached_layer_removed_mid_build_is_built_again_once(client, context, capsys, monkeypatch):
    (context / "Dockerfile").write_text("ARG DEBIAN_IMAGE=debian:bookworm-slim\nFROM ${DEBIAN_IMAGE}\n"
                                        "RUN echo again > /built.txt\n")
    calls = vanishing(monkeypatch, client, 1)
    img = images.build(client, context, "workbook/test-build:ok", "tests", buildargs=bases.build_args(client))
    assert len(calls) == 2 and img.labels["workbook"] == "tests"
    assert "a cached layer was removed during the build; building again" in capsys.readouterr().out
    # Only that message is retried, and only once.
    for failures, error in ((1, "The command '/bin/sh -c exit 3' returned a non-zero code: 3"),
                            (2, 'unable to find image "sha256:50fb62fa8db9"')):
        calls = vanishing(monkeypatch, client, failures, error)
        with pytest.raises(images.BuildFailed, match=error.split()[0]):
            images.build(client, context, "workbook/test-build:ok", "tests",
                         buildargs=bases.build_args(client), log="none")
        assert len(calls) == failures
