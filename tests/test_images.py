import pytest

from workbook import bases, images


@pytest.fixture()
def context(tmp_path):
    return tmp_path


def test_build_labels_the_image_and_streams_steps(client, context, capsys):
    (context / "Dockerfile").write_text("ARG DEBIAN_IMAGE=debian:bookworm-slim\nFROM ${DEBIAN_IMAGE}\n"
                                        "RUN echo built > /built.txt\n")
    img = images.build(client, context, "workbook/test-build:ok", "tests",
                       buildargs=bases.build_args(client))
    assert img.labels["workbook"] == "tests"
    out = capsys.readouterr().out
    assert "Step 3/4 : RUN echo built > /built.txt" in out  # 4th step: docker-py's LABEL


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
