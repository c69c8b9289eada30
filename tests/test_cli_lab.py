"""Lab 00's checks on what the docker CLI really made: the commands are typed as a learner would
(another right way of typing each step passes; plausible wrong ones fail the right criterion
with the hint meant for them)."""

import pytest

from workbook import bases, checks, engine, registry, resources, service

OWNER = "test_cli_lab"
NAME = f"{OWNER}-api"  # the lab's lab.container


def docker(*args):
    """One `docker ...` command line, as the learner types it; its output."""
    return engine.docker_cli(*args, echo=False).stdout.strip()


def build(lab, *extra):
    """docker build with the lab's build args (and `extra` flags, e.g. the label)."""
    args = bases.cli_build_args(None, lab.path / "Dockerfile").split()
    docker("build", "-q", *args, *extra, "-t", lab.tag, str(lab.path))


@pytest.fixture(scope="module")
def cli_lab(client, production):
    """The lab prepared under a test tag and its registry; everything removed at the end."""
    # production: the ladder's layers make the lab's build take seconds
    lab = checks.prepare(client, "00", OWNER, given=(service.APP / "Dockerfile").read_text(),
                         tag="workbook/lab-00:test")
    with registry.start(client, OWNER) as reg:
        yield lab, reg
    resources.cleanup(client, OWNER)


def _run(lab, *publish):
    engine.docker_cli("rm", "-f", NAME, echo=False, check=False)
    docker("container", "run", "--detach", "--name", NAME, *resources.cli_labels(OWNER).split(),
           *publish, lab.tag)


def _failed(report, name, *hint_words):
    c = report.get(name)
    assert c is not None and not c.passed, report
    assert all(w in c.hint for w in hint_words), c.hint


def test_untouched_lab_is_not_done(client, cli_lab):
    lab, reg = cli_lab
    docker("rm", "-f", NAME)
    engine.docker_cli("rmi", lab.tag, echo=False, check=False)
    first = checks.cli_lab.built_and_running(client, lab, ..., quiet=True)
    assert first.not_done and "build it first" in first.not_done and not first.criteria
    assert checks.cli_lab.looked_inside(client, lab, ..., ..., quiet=True).not_done
    third = checks.cli_lab.shared_and_removed(client, lab, reg, quiet=True)
    assert third.not_done and "build it first" in third.not_done


def test_an_image_without_the_label_fails_on_it(client, cli_lab):
    lab, _ = cli_lab
    build(lab)
    report = checks.cli_lab.built_and_running(client, lab, ..., quiet=True)
    _failed(report, "the image carries the label workbook=test_cli_lab", "--label workbook=test_cli_lab",
            "docker build")


def test_published_on_every_interface_fails_and_nothing_is_asked(client, cli_lab):
    lab, _ = cli_lab
    build(lab, "--label", f"workbook={OWNER}")
    _run(lab, "-p", "5000")  # a free port on every interface: never asked, only inspected
    report = checks.cli_lab.built_and_running(client, lab, 5000, quiet=True)
    _failed(report, "port 5000 is published on 127.0.0.1 only", "-p 127.0.0.1::5000")
    _failed(report, "it answers GET /health")


def test_other_right_commands_pass_and_wrong_answers_fail_with_their_hints(client, cli_lab):
    lab, reg = cli_lab
    build(lab, "--label", f"workbook={OWNER}")
    _run(lab, "--publish", "127.0.0.1:0:5000")  # the long forms, and port 0: any free one
    port = docker("port", NAME, "5000").rsplit(":", 1)[1]  # a string, as copied from the output
    assert checks.cli_lab.built_and_running(client, lab, port, quiet=True).passed
    _failed(checks.cli_lab.built_and_running(client, lab, 5000, quiet=True),
            "`port` is its port on the host", "docker port NAME 5000")

    # Not restarted yet; the host's side of the mapping for `listening`; root for `uid`.
    report = checks.cli_lab.looked_inside(client, lab, f"127.0.0.1:{port}", 0, quiet=True)
    _failed(report, "`listening` is the address gunicorn says it listens at", "Listening at")
    _failed(report, "`uid` is the user id the service runs as", "id -u")
    _failed(report, "it was stopped and started again", "docker stop NAME")
    docker("restart", NAME)  # stop and start in one command
    assert checks.cli_lab.looked_inside(client, lab, "http://0.0.0.0:5000", "1000", quiet=True).passed

    pushed = reg.ref(checks.cli_lab.REPOSITORY, "v1")
    assert "registry has no" in checks.cli_lab.shared_and_removed(client, lab, reg, quiet=True).not_done
    docker("tag", "workbook/app:production", pushed)  # another image under the right name
    docker("image", "push", pushed)
    report = checks.cli_lab.shared_and_removed(client, lab, reg, quiet=True)
    _failed(report, "the registry's lab-00:v1 is your image", "tag the image you built")
    _failed(report, "the container is removed", "docker rm -f NAME")
    _failed(report, "the registry's name is untagged here", "docker rmi")

    docker("tag", lab.tag, pushed)
    docker("push", "-q", pushed)
    docker("rm", "-f", NAME)
    docker("rmi", lab.tag)  # the wrong name removed: the registry's stays
    report = checks.cli_lab.shared_and_removed(client, lab, reg, quiet=True)
    assert report.get("the registry's lab-00:v1 is your image").passed
    _failed(report, "the registry's name is untagged here", f"docker rmi {pushed}")
    _failed(report, "workbook/lab-00:test is still here", "remove only the registry's name")
    docker("tag", pushed, lab.tag)
    docker("image", "rm", pushed)
    assert checks.cli_lab.shared_and_removed(client, lab, reg, quiet=True).passed
