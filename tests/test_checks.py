"""The labs' checks (labs 01-04) on real builds: a correct answer that is not the official
solution passes; plausible wrong answers fail the right criterion with the right hint."""

import dataclasses
import time

import pytest

from workbook import bases, checks, engine, images, resources

OWNER = "test_checks"

HEAD = """\
ARG PYTHON_BUILD_IMAGE=python:3.11
ARG PYTHON_IMAGE=python:3.11-slim
"""
# The single-stage start the lab 01-02 answers share (one cached pip install for all).
SINGLE = HEAD + """\
FROM ${PYTHON_IMAGE}
WORKDIR /app
COPY requirements.txt .
COPY wheels/ wheels/
RUN pip install --no-cache-dir --no-index --find-links=wheels -r requirements.txt
"""
# The builder stage of labs 03-04 (the ladder's own: cached).
BUILDER = HEAD + """\
FROM ${PYTHON_BUILD_IMAGE} AS builder
COPY requirements.txt /build/
COPY wheels/ /build/wheels/
RUN python -m venv /opt/venv \\
 && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links=/build/wheels \\
      -r /build/requirements.txt
"""
GUNICORN = 'CMD ["gunicorn", "--config", "gunicorn.conf.py", "app:create_app()"]\n'
PROBE = ('CMD ["python", "-c", "import urllib.request as u; '
         "u.urlopen('http://127.0.0.1:5000/health', timeout=2)\"]\n")


@pytest.fixture(scope="module")
def workspaces(client):
    """One lab folder per lab number for the whole module; everything removed at the end."""
    made = {}

    def get(number):
        if number not in made:
            made[number] = checks.prepare(client, number, f"{OWNER}_{number}")
        return made[number]

    yield get
    for lab in made.values():
        resources.cleanup(client, lab.owner)


CHECKS = {"01": checks.first_container, "02": checks.cache_friendly, "03": checks.smaller_image,
          "04": checks.hardened_image}


def learner_builds_and_runs(lab, dockerfile):
    """Write the Dockerfile, then type the lab's build cell: docker build, and a fresh docker run
    when it built. Returns the build's CompletedProcess."""
    (lab.path / "Dockerfile").write_text(dockerfile)
    for _ in range(2):  # again if another test removed a cached layer mid-build (images.cache_vanished)
        built = engine.docker_cli("build", "-q", *bases.cli_build_args().split(), "--label",
                                  f"workbook={lab.owner}", "-t", lab.tag, str(lab.path), echo=False, check=False)
        if not images.cache_vanished(built.stdout + built.stderr):
            break
    if built.returncode == 0:
        engine.docker_cli("rm", "-f", lab.container, echo=False, check=False)
        engine.docker_cli("run", "-d", "--name", lab.container, *resources.cli_labels(lab.owner).split(),
                          "-p", "127.0.0.1::5000", "--pull", "never", lab.tag, echo=False,
                          check=False)  # a command that is not in the image: the check says why
    return built


def attempt(client, workspaces, number, case, dockerfile):
    """Write a Dockerfile into lab `number`'s folder, build and run it as the learner does, and
    run that lab's check."""
    lab = dataclasses.replace(workspaces(number), tag=f"workbook/lab-{number}:{case}")
    assert learner_builds_and_runs(lab, dockerfile).returncode == 0
    report = CHECKS[number](client, lab)
    assert report.not_done is None, report
    return report


def failed_with(report, name, *hint_words):
    """The criterion `name` failed, and its hint names the concept."""
    crit = report.get(name)
    assert crit is not None and not crit.passed, str(report)
    for word in hint_words:
        assert word in crit.hint, f"{word!r} not in the hint of {name!r}: {crit.hint}"
    assert not report.passed


# ---------------------------------------------------------------- the framework


def test_an_optional_criterion_is_shown_but_not_counted():
    r = checks.Report("Lab 99 · example")
    r.add("required", True)
    r.add("extra", False, "found nothing", "do it this way (lesson 05 §2)", optional=True)
    assert r.passed and r.failed == [] and r.verdict() == "done"
    assert "✗ extra (optional, not counted): found nothing" in str(r)
    assert str(r).endswith("done: all 1 criteria passed")
    r.add("another", False)
    assert not r.passed and r.failed == ["another"] and r.verdict() == "1 of 2 criteria passed"


def test_report_lines_and_verdicts():
    r = checks.Report("Lab 99 · example")
    r.add("passes", True, note="1.0 s")
    r.add("fails", False, "found 2", "do it this way (lesson 04 §3)")
    text = str(r)
    assert "✓ passes (1.0 s)" in text and "✗ fails: found 2" in text
    assert "hint: do it this way (lesson 04 §3)" in text
    assert r.failed == ["fails"] and not r.passed and r.verdict() == "1 of 2 criteria passed"
    assert not checks.Report("empty").passed  # nothing checked is not done


def test_check_turns_learner_errors_into_lines(capsys):
    from workbook import WorkbookError

    @checks.check("Lab 99")
    def missing(r):
        raise checks.NotDone("no image yet", "build it first")

    @checks.check("Lab 99")
    def broken(r):
        r.add("first", True)
        raise WorkbookError("engine said no", "start it")

    assert missing().not_done == "no image yet -> build it first"
    assert "not done yet: no image yet -> build it first" in capsys.readouterr().out
    report = broken()
    assert report.failed == ["could not finish the check"] and "start it" in str(report)


def test_instructions_ignores_comments_and_joins_continuations():
    assert checks.instructions("# TODO: write it\n\n   # more\n") == []
    assert checks.instructions("FROM x\nRUN a \\\n && b\n# c\n") == ["FROM x", "RUN a   && b"]


def test_lab01_an_empty_dockerfile_is_not_done_yet(client, workspaces):
    lab = workspaces("01")
    (lab.path / "Dockerfile").write_text("# TODO: write the Dockerfile here\n")
    report = checks.first_container(client, lab)
    assert report.not_done and "no instructions yet" in report.not_done and not report.criteria


def test_lab01_a_build_error_leaves_no_image_then_an_old_image_is_caught(client, workspaces):
    lab = dataclasses.replace(workspaces("01"), tag="workbook/lab-01:build-error")
    broken = SINGLE + "COPY no-such-file.py ./\n"
    failed = learner_builds_and_runs(lab, broken)
    assert failed.returncode and "no-such-file.py" in failed.stderr  # the build's own output names it
    report = checks.first_container(client, lab)
    assert report.not_done and "build it first" in report.not_done and not report.criteria
    # A build that worked, then a change that fails to build: the old image is still the tag.
    assert learner_builds_and_runs(lab, SINGLE + "COPY . .\n" + GUNICORN).returncode == 0
    time.sleep(1.5)  # a learner takes longer than the check's 1 s of slack for the two clocks
    assert learner_builds_and_runs(lab, broken).returncode
    report = checks.first_container(client, lab)
    failed_with(report, "your image is built from the Dockerfile as it is now", "failing step")
    assert len(report.criteria) == 1  # nothing else is checked on an old image


def test_lab01_a_container_of_an_older_build_is_caught(client, workspaces):
    lab = dataclasses.replace(workspaces("01"), tag="workbook/lab-01:old-container")
    learner_builds_and_runs(lab, SINGLE + "COPY . .\n" + GUNICORN)
    (lab.path / "Dockerfile").write_text(SINGLE + "COPY . .\nENV WORKERS=1\n" + GUNICORN)
    engine.docker_cli("build", "-q", *bases.cli_build_args().split(), "--label", f"workbook={lab.owner}",
                      "-t", lab.tag, str(lab.path), echo=False)  # built, but not run again
    report = checks.first_container(client, lab)
    failed_with(report, "your container runs that image", "again after each build")


# ---------------------------------------------------------------- lab 01


def test_lab01_accepts_another_valid_dockerfile(client, workspaces):
    # Everything copied at once, another workdir, the bind address on the command line.
    report = attempt(client, workspaces, "01", "alt", SINGLE.replace("/app", "/srv") + """\
COPY . .
ENV MODEL_PATH=/srv/models/model.skops
CMD gunicorn --bind 0.0.0.0:5000 --workers 1 'app:create_app()'
""")
    assert report.passed, report


def test_lab01_model_not_copied(client, workspaces):
    report = attempt(client, workspaces, "01", "no-model",
                     SINGLE + "COPY app.py gunicorn.conf.py ./\n" + GUNICORN)
    failed_with(report, "/health answers 200", "COPY models/", "lesson 03")


def test_lab01_listens_on_loopback_only(client, workspaces):
    report = attempt(client, workspaces, "01", "loopback", SINGLE + """\
COPY app.py gunicorn.conf.py ./
COPY models/ models/
CMD ["gunicorn", "--bind", "127.0.0.1:5000", "app:create_app()"]
""")
    failed_with(report, "/health answers 200", "0.0.0.0", "lesson 03")



def test_lab01_shell_form_cmd_with_parentheses(client, workspaces):
    report = attempt(client, workspaces, "01", "shell-form", SINGLE + """\
COPY app.py gunicorn.conf.py ./
COPY models/ models/
CMD gunicorn --config gunicorn.conf.py app:create_app()
""")
    failed_with(report, "/health answers 200", "exec form", "lesson 03 §2")


# ---------------------------------------------------------------- lab 02


def test_lab02_accepts_a_multi_stage_answer(client, workspaces):
    report = attempt(client, workspaces, "02", "alt", BUILDER + """\
FROM ${PYTHON_IMAGE}
WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY models/ models/
COPY app.py gunicorn.conf.py ./
""" + GUNICORN)
    assert report.passed, report


def test_lab02_code_copied_first(client, workspaces):
    report = attempt(client, workspaces, "02", "copy-all", HEAD + """\
FROM ${PYTHON_IMAGE}
WORKDIR /app
COPY . .
RUN pip install --no-cache-dir --no-index --find-links=wheels -r requirements.txt
""" + GUNICORN)
    failed_with(report, "the dependency layer is reused", "lesson 04 §3")


def test_lab02_code_copied_with_the_requirements(client, workspaces):
    report = attempt(client, workspaces, "02", "copy-together", HEAD + """\
FROM ${PYTHON_IMAGE}
WORKDIR /app
COPY requirements.txt app.py gunicorn.conf.py ./
COPY wheels/ wheels/
RUN pip install --no-cache-dir --no-index --find-links=wheels -r requirements.txt
COPY models/ models/
""" + GUNICORN)
    failed_with(report, "the dependency layer is reused", "lesson 04 §3")


# ---------------------------------------------------------------- lab 03


def test_lab03_accepts_a_target_install(client, workspaces):
    # pip install --target into a plain folder, found through PYTHONPATH; python -m gunicorn.
    report = attempt(client, workspaces, "03", "alt", HEAD + """\
FROM ${PYTHON_BUILD_IMAGE} AS builder
COPY requirements.txt wheels/ /src/
RUN pip install --no-cache-dir --no-index --find-links=/src --target=/deps -r /src/requirements.txt

FROM ${PYTHON_IMAGE}
COPY --from=builder /deps /deps
ENV PYTHONPATH=/deps
WORKDIR /srv/app
COPY app.py gunicorn.conf.py ./
COPY models/ models/
CMD ["python", "-m", "gunicorn", "--config", "gunicorn.conf.py", "app:create_app()"]
""")
    assert report.passed, report


def test_lab03_accepts_a_prefix_install(client, workspaces, production):
    # pip install --prefix in the builder, the prefix copied over the final stage's /usr/local.
    report = attempt(client, workspaces, "03", "prefix", HEAD + """\
FROM ${PYTHON_BUILD_IMAGE} AS builder
COPY requirements.txt /build/
COPY wheels/ /build/wheels/
RUN pip install --no-cache-dir --no-index --find-links=/build/wheels --prefix=/install \\
      -r /build/requirements.txt

FROM ${PYTHON_IMAGE}
COPY --from=builder /install /usr/local
WORKDIR /app
COPY app.py gunicorn.conf.py ./
COPY models/ models/
""" + GUNICORN)
    assert report.passed, report


def test_lab03_final_stage_on_the_full_base(client, workspaces):
    report = attempt(client, workspaces, "03", "full-base", BUILDER + """\
FROM ${PYTHON_BUILD_IMAGE}
WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY app.py gunicorn.conf.py ./
COPY models/ models/
""" + GUNICORN)
    failed_with(report, "no compiler in the final image", "builder stage", "lesson 04 §4")
    failed_with(report, "size within 1.1× the production image", "lesson 04 §4")


def test_lab03_wheels_installed_in_the_final_stage(client, workspaces):
    report = attempt(client, workspaces, "03", "wheels-copied", BUILDER + """\
FROM ${PYTHON_IMAGE}
WORKDIR /app
COPY --from=builder /build /build
RUN pip install --no-index --find-links=/build/wheels -r /build/requirements.txt
COPY app.py gunicorn.conf.py ./
COPY models/ models/
""" + GUNICORN)
    failed_with(report, "no pip cache or wheel files in the final image", "not the wheels",
                "lesson 04 §4")



def test_lab03_venv_not_on_the_path(client, workspaces):
    report = attempt(client, workspaces, "03", "no-path", BUILDER + """\
FROM ${PYTHON_IMAGE}
WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
COPY app.py gunicorn.conf.py ./
COPY models/ models/
""" + GUNICORN)
    failed_with(report, "/health answers 200", "ENV PATH=/opt/venv/bin:$PATH")


# ---------------------------------------------------------------- lab 04


FINAL4 = """\
FROM ${PYTHON_IMAGE}
WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY app.py gunicorn.conf.py ./
COPY models/ models/
"""


def test_lab04_accepts_another_hardened_dockerfile(client, workspaces):
    # No user created: the existing `nobody`; a shell-form probe with its own port variable.
    report = attempt(client, workspaces, "04", "alt", BUILDER + FINAL4 + """\
USER nobody
HEALTHCHECK --interval=1s --timeout=2s --retries=5 \\
  CMD python -c "import os, urllib.request as u; u.urlopen('http://localhost:%s/health' % os.environ.get('PORT', '5000'))"
""" + GUNICORN)
    assert report.passed, report


def test_lab04_secret_deleted_in_a_later_step(client, workspaces):
    report = attempt(client, workspaces, "04", "secret-deleted", BUILDER + FINAL4 + """\
RUN echo "HF_TOKEN=hf_WorkbookLab04FakeTokenNotARealOne1" > /app/.env \\
 && echo "token written"
RUN rm /app/.env
USER 1000:1000
HEALTHCHECK --interval=2s --timeout=2s """ + PROBE + GUNICORN)
    failed_with(report, "no secret in config, history or layers", "later step", "lesson 06 §4")
    crit = report.get("no secret in config, history or layers")
    assert "history" in crit.detail and "hf_W" in crit.detail and "NotARealOne1" not in crit.detail


def test_lab04_healthcheck_with_curl(client, workspaces):
    report = attempt(client, workspaces, "04", "curl", BUILDER + FINAL4 + """\
USER 1000:1000
HEALTHCHECK --interval=1s --timeout=2s --retries=3 CMD curl -f http://localhost:5000/health || exit 1
""" + GUNICORN)
    failed_with(report, "HEALTHCHECK reports healthy", "curl", "lesson 04 §6")
    assert "not found" in report.get("HEALTHCHECK reports healthy").detail


def test_lab04_user_created_but_not_used(client, workspaces):
    report = attempt(client, workspaces, "04", "root", BUILDER + FINAL4.replace(
        "WORKDIR /app", "RUN useradd --uid 1000 appuser\nWORKDIR /app") + """\
HEALTHCHECK --interval=2s --timeout=2s """ + PROBE + GUNICORN)
    failed_with(report, "runs as a non-root user (uid of the container's first process)", "USER 1000",
                "lesson 04 §6")
    failed_with(report, "the service cannot rewrite its own code or model", "owned by root")


def test_lab04_code_owned_by_the_service_user(client, workspaces):
    # Non-root, but the code and the model belong to the user the service runs as.
    report = attempt(client, workspaces, "04", "chown", BUILDER + FINAL4.replace(
        "WORKDIR /app", "RUN useradd --uid 1000 appuser\nWORKDIR /app").replace(
        "COPY app.py", "COPY --chown=1000:1000 app.py").replace(
        "COPY models/", "COPY --chown=1000:1000 models/") + """\
USER 1000:1000
HEALTHCHECK --interval=2s --timeout=2s """ + PROBE + GUNICORN)
    failed_with(report, "the service cannot rewrite its own code or model", "--chown", "lesson 04 §6")
    assert "/app/app.py" in report.get("the service cannot rewrite its own code or model").detail
    assert report.get("runs as a non-root user (uid of the container's first process)").passed
