"""The checks of labs 05-07 (workbook/checks/*_lab.py) on the real engine.

Each check accepts a correct answer that differs from the official solution and rejects
plausible wrong ones with the hint that names the concept. Wrong answers a file inspection
catches cost no run; the ones only behaviour shows (a cache that errors, a stop-first update
that drops requests, a memory limit still too low) are run for real.
"""

import pytest

from workbook import checks, resources, swarm

COMPOSE_OK = """
services:
  api:
    image: workbook/app:production
    environment: [REDIS_URL=redis://cache:6379]   # another service name, no db number
    ports:
      - {target: 5000, host_ip: 127.0.0.1}       # long syntax; the image's own HEALTHCHECK
    depends_on:
      cache: {condition: service_healthy, restart: true}
  cache:
    image: ${REDIS_IMAGE}
    command: redis-server --protected-mode no --save ""
    healthcheck:
      test: redis-cli ping | grep -q PONG
      interval: 1s
"""


def lab_with(lab, name, text):
    (lab.path / name).write_text(text)
    return lab


# ---------------------------------------------------------------- no engine needed


@pytest.mark.parametrize("text, cause", [
    ("oom", "oom"), ("  OOM ", "oom"), ("killed: out of memory (exit code 137)", "oom"),
    ("the health check imports requests, which the image lacks", "unhealthy"),
    ("features.py is never copied into the image", "missing-module"),
    ("unhealthy", "unhealthy"), ("missing-module", "missing-module"), ("crashed", "crashed"),
    ("ModuleNotFoundError: No module named 'requests'", None),  # module or probe? name one
    ("it crashed with exit code 137", None), ("", None), ("no idea", None),
])
def test_classify_reads_a_cause_from_a_key_or_words(text, cause):
    assert checks.classify(text) == cause


def test_case_names_do_not_give_the_cause_away():
    assert not set(checks.CASES) & set(checks.CAUSE_WORDS)
    assert set(checks.CASES.values()) == set(checks.DIAGNOSIS_HINTS) == set(checks.FIX_HINTS)


# ---------------------------------------------------------------- lab 05


@pytest.fixture(scope="module")
def lab05(client):
    lab = checks.prepare_folder(client, "05", "test_checks_05")
    yield lab
    checks.reset_stack(client, lab.owner)
    resources.cleanup(client, lab.owner)
    assert resources.find(client, lab.owner)["containers"] == []


def test_lab05_not_done_while_the_file_has_todos(client, lab05):
    lab_with(lab05, "compose.yaml", "services:\n  api:\n    image: workbook/app:production\n"
                                    "    # TODO: REDIS_URL, ports, depends_on\n")
    report = checks.compose_stack(client, lab05, quiet=True)
    assert report.not_done and "TODO" in report.not_done and not report.criteria


def test_lab05_accepts_another_correct_stack(client, lab05):
    report = checks.compose_stack(client, lab_with(lab05, "compose.yaml", COMPOSE_OK), quiet=True)
    assert report.passed, str(report)
    assert report.get("api has a health check").note == "the image's"
    assert report.figures["X-Cache, same request twice"] == "miss then hit"
    assert not checks.compose_project(client, lab05).containers(client=client)  # down after


@pytest.mark.parametrize("change, failed, hint", [
    (("depends_on:\n      cache: {condition: service_healthy, restart: true}",
      "depends_on: [cache]"),
     "api starts once cache is healthy (depends_on)", "service_healthy"),
    (("redis://cache:6379", "redis://localhost:6379"),
     "the api reaches Redis by its service name (REDIS_URL)", "localhost is the api container"),
    (("- {target: 5000, host_ip: 127.0.0.1}", "- \"5000\""),
     "the api's port 5000 is published on 127.0.0.1 only", "127.0.0.1::5000"),
    (("    healthcheck:\n      test: redis-cli ping | grep -q PONG\n      interval: 1s\n", ""),
     "cache has a health check", "redis-cli ping"),
    (("test: redis-cli ping | grep -q PONG", 'test: ["CMD", "true"]'),
     "cache's health check fails while cache is not running", "redis-cli ping"),
])
def test_lab05_rejects_a_file_mistake_without_running_it(client, lab05, change, failed, hint):
    text = COMPOSE_OK.replace(*change)
    assert text != COMPOSE_OK
    report = checks.compose_stack(client, lab_with(lab05, "compose.yaml", text), quiet=True)
    assert report.failed == [failed], str(report)
    assert hint in report.get(failed).hint
    assert report.get("docker compose up starts every service") is None  # nothing ran


def test_lab05_accepts_a_network_alias_for_redis(client, lab05):
    text = COMPOSE_OK.replace("redis://cache:6379", "redis://kv:6379").replace(
        "    image: ${REDIS_IMAGE}\n", "    image: ${REDIS_IMAGE}\n    networks: {default: {aliases: [kv]}}\n")
    report = checks.compose_stack(client, lab_with(lab05, "compose.yaml", text), quiet=True)
    assert report.passed, str(report)
    assert report.figures["X-Cache, same request twice"] == "miss then hit"


def test_lab05_rejects_an_invalid_file(client, lab05):
    report = checks.compose_stack(client, lab_with(lab05, "compose.yaml", COMPOSE_OK.replace(
        "    image: ${REDIS_IMAGE}", "    image: ${REDIS_IMAGE}\n    image: redis")), quiet=True)
    assert report.failed == ["compose.yaml is valid (docker compose config)"], str(report)
    assert "already defined" in report.criteria[0].detail


def test_lab05_a_redis_that_refuses_shows_in_the_cache_header(client, lab05):
    """Behaviour only: the file is right but Redis refuses other containers (protected mode)."""
    text = COMPOSE_OK.replace('    command: redis-server --protected-mode no --save ""\n', "")
    report = checks.compose_stack(client, lab_with(lab05, "compose.yaml", text), quiet=True)
    name = "a repeated request is served from the cache (X-Cache: miss, then hit)"
    assert report.failed == [name], str(report)
    assert "error then error" in report.get(name).detail
    assert "protected mode" in report.get(name).hint


# ---------------------------------------------------------------- lab 07


def stack_file(update, rollback, healthcheck="", replicas=1):
    """The lab's stack file with the learner's part filled in."""
    return f"""
x-labels: &labels
  workbook: ${{WORKBOOK_OWNER}}
  workbook.created-by: ${{WORKBOOK_OWNER}}
services:
  api:
    image: ${{API_IMAGE}}
    environment: {{WORKERS: "1"}}
    networks: [backend]
    labels: *labels
{healthcheck}
    deploy:
      labels: *labels
      replicas: {replicas}
      endpoint_mode: dnsrr
      update_config: {update}
      rollback_config: {rollback}
  nginx:
    image: ${{NGINX_IMAGE}}
    ports:
      - target: 80
        published: ${{NGINX_PORT}}
        mode: host
    networks: [backend]
    labels: *labels
    deploy: {{labels: *labels, endpoint_mode: dnsrr}}
networks:
  backend: {{driver: overlay, labels: *labels}}
"""


@pytest.fixture(scope="module")
def lab07(client):
    started = swarm.ensure_swarm(client)
    lab = checks.prepare_rolling(client, "07", "test_checks_07", tag="workbook/lab-07:test-v2")
    yield lab
    checks.reset_stack(client, lab.owner)
    resources.cleanup(client, lab.owner)
    swarm.leave_if_started(client, started, owners=(lab.owner,))


def test_lab07_not_done_without_a_stack_file(client, lab07):
    (lab07.path / "stack.yaml").unlink(missing_ok=True)
    report = checks.rolling_update(client, lab07, quiet=True)
    assert report.not_done and "does not exist yet" in report.not_done


def test_lab07_accepts_another_correct_policy(client, lab07):
    """Two replicas replaced together, no delay, the image's own health check."""
    policy = "{parallelism: 2, order: start-first, failure_action: rollback, monitor: 2s}"
    lab_with(lab07, "stack.yaml", stack_file(policy, "{parallelism: 2, order: start-first}",
                                             replicas=2))
    report = checks.rolling_update(client, lab07, quiet=True)
    assert report.passed, str(report)
    assert report.get("api tasks have a health check").note == "the image's"
    assert report.figures["update to v2: failed requests"].startswith("0 of ")


@pytest.mark.parametrize("update, healthcheck, failed, hint", [
    ("{order: start-first}", "",
     "a failed update rolls itself back (update_config.failure_action: rollback)", "pause"),
    ("{order: start-first, failure_action: rollback}", "    healthcheck: {disable: true}",
     "api tasks have a health check", "healthy"),
])
def test_lab07_rejects_a_policy_mistake_without_deploying(client, lab07, update, healthcheck,
                                                          failed, hint):
    lab_with(lab07, "stack.yaml", stack_file(update, "{order: start-first}", healthcheck))
    report = checks.rolling_update(client, lab07, quiet=True)
    assert report.failed == [failed], str(report)
    assert hint in report.get(failed).hint
    assert report.get("v1 deployed behind nginx") is None


def test_lab07_a_stop_first_update_drops_requests(client, lab07):
    """Behaviour: one replica, stop-first: requests fail while no task answers."""
    lab_with(lab07, "stack.yaml", stack_file(
        "{order: stop-first, failure_action: rollback}", "{order: start-first}"))
    report = checks.rolling_update(client, lab07, quiet=True)
    name = "update to v2 under load: no failed request"
    assert name in report.failed, str(report)
    assert "update_config.order is stop-first" in report.get(name).hint
    assert report.get("rollback to v1 under load: no failed request").passed
    order = "updates and rollbacks start the new task first (order: start-first)"
    assert order in report.failed and "update_config.order: stop-first" in report.get(order).detail


def test_lab07_stop_first_is_caught_with_three_replicas(client, lab07):
    """Three replicas would let nginx retry another one: the check runs one, and reads the order."""
    lab_with(lab07, "stack.yaml", stack_file(
        "{order: start-first, failure_action: rollback}", "{order: stop-first}", replicas=3))
    report = checks.rolling_update(client, lab07, quiet=True)
    order = "updates and rollbacks start the new task first (order: start-first)"
    assert order in report.failed and "start-first in both" in report.get(order).hint
    assert report.get("v1 deployed behind nginx").note == "deployed with 3 api replica(s), checked with 1"
    assert report.get("update to v2 under load: no failed request").passed
    name = "rollback to v1 under load: no failed request"
    assert name in report.failed and "rollback_config.order is stop-first" in report.get(name).hint


# ---------------------------------------------------------------- lab 06


@pytest.fixture(scope="module")
def lab06(client):
    lab = checks.prepare_troubleshooting(client, "06", "test_checks_06")
    yield lab
    checks.reset_stack(client, lab.owner)
    resources.cleanup(client, lab.owner)
    assert resources.find(client, lab.owner)["containers"] == []


def given(lab, case):
    return (lab.path / "given" / case / checks.CASE_FILES[checks.CASES[case]]).read_text()


def test_lab06_given_cases_are_broken_and_say_nothing_of_why(client, lab06):
    for case, name in checks.CASES.items():
        assert name not in given(lab06, case) and "#" not in given(lab06, case)
    boxes = checks.start_broken(client, lab06)
    states = {case: box.attrs["State"] for case, box in boxes.items()}
    assert states["case1"]["Health"]["Status"] == "unhealthy"  # the unhealthy case
    assert states["case2"]["Status"] == "exited"  # the missing module
    assert states["case3"]["OOMKilled"] and states["case3"]["ExitCode"] == 137


def test_lab06_not_done_before_anything_is_recorded(client, lab06):
    report = checks.troubleshooting(client, lab06, {c: "" for c in checks.CASES}, quiet=True)
    assert report.not_done and not report.criteria


def test_lab06_accepts_other_words_and_other_fixes(client, lab06):
    (lab06.path / "case1" / "Dockerfile").write_text(given(lab06, "case1").split("HEALTHCHECK")[0]
        + "HEALTHCHECK --interval=2s CMD python -c \"import urllib.request as r; "
          "r.urlopen('http://localhost:5000/health')\"\n")
    (lab06.path / "case2" / "Dockerfile").write_text(
        given(lab06, "case2").replace("COPY wsgi.py /app/", "COPY wsgi.py /app/\nCOPY features.py /app/"))
    (lab06.path / "case3" / "compose.yaml").write_text(
        given(lab06, "case3").replace("48m", "1g"))
    report = checks.troubleshooting(client, lab06, {
        "case1": "the probe fails: the health check imports requests",
        "case2": "wsgi.py imports features, a module the image does not have",
        "case3": "Out of memory: the kernel killed it (OOMKilled, exit code 137)"}, quiet=True)
    assert report.passed, str(report)
    assert report.figures == {"diagnoses right": "3 of 3", "cases fixed": "3 of 3"}


def test_lab06_rejects_symptoms_and_fixes_that_do_not_fix(client, lab06):
    """'crashed' names no cause; the probe's ModuleNotFoundError is not the app's; a limit
    still too low is still OOM; a probe with curl, which the image lacks, stays unhealthy."""
    probe = "\"python\", \"-c\", \"import requests; requests.get('http://localhost:5000/health')\""
    assert probe in given(lab06, "case1")
    (lab06.path / "case1" / "Dockerfile").write_text(given(lab06, "case1").replace(
        probe, '"curl", "-f", "http://localhost:5000/health"'))
    (lab06.path / "case2" / "Dockerfile").write_text(
        given(lab06, "case2").replace("COPY wsgi.py /app/", "COPY wsgi.py features.py /app/"))
    (lab06.path / "case3" / "compose.yaml").write_text(given(lab06, "case3").replace("48m", "64m"))
    report = checks.troubleshooting(client, lab06, {
        "case1": "missing-module", "case2": "missing-module", "case3": "crashed"}, quiet=True)
    assert report.failed == ["case1: diagnosis", "case3: diagnosis",
                             "case1: fixed (the container does its job)",
                             "case3: fixed (the container does its job)"], str(report)
    assert "health check" in report.get("case1: diagnosis").hint
    assert "OOMKilled" in report.get("case3: diagnosis").hint
    assert "curl" in report.get("case1: fixed (the container does its job)").detail
    assert "OOMKilled" in report.get("case3: fixed (the container does its job)").detail
    assert "docker stats" in report.get("case3: fixed (the container does its job)").hint


def test_lab06_removing_what_fails_is_not_a_fix(client, lab06):
    """No health check, no published port, no memory limit: each "works", none is a fix."""
    (lab06.path / "case1" / "Dockerfile").write_text(
        given(lab06, "case1").split("HEALTHCHECK")[0] + "HEALTHCHECK NONE\n")
    (lab06.path / "case2" / "Dockerfile").write_text(
        given(lab06, "case2").replace("COPY wsgi.py /app/", "COPY wsgi.py features.py /app/"))
    compose2 = lab06.path / "case2" / "compose.yaml"
    assert '["127.0.0.1::5000"]' in compose2.read_text()
    compose2.write_text(compose2.read_text().replace('    ports: ["127.0.0.1::5000"]\n', ""))
    case3 = "".join(ln for ln in given(lab06, "case3").splitlines(keepends=True)
                    if "mem_limit" not in ln and "memswap_limit" not in ln)
    (lab06.path / "case3" / "compose.yaml").write_text(case3)
    report = checks.troubleshooting(client, lab06, {
        "case1": "unhealthy", "case2": "missing-module", "case3": "oom"}, quiet=True)
    fixed = [f"{c}: fixed (the container does its job)" for c in checks.CASES]
    assert report.failed == fixed, str(report)
    assert "the health check" in report.get(fixed[0]).detail
    assert "the published port" in report.get(fixed[1]).detail
    assert "the memory limit" in report.get(fixed[2]).detail
    assert all("keeps the rest" in report.get(f).hint for f in fixed)
    compose2.write_text((lab06.path / "given" / "case2" / "compose.yaml").read_text())


def test_unfinished_files_are_not_done_but_optional_todos_are_fine(tmp_path):
    path = tmp_path / "compose.yaml"
    with pytest.raises(checks.NotDone, match="does not exist yet"):
        checks._unfinished(path)
    path.write_text("services:\n  api:\n    # TODO: a health check\n")
    with pytest.raises(checks.NotDone, match="1 TODO line"):
        checks._unfinished(path)
    path.write_text("services:\n  api: {}\n  # TODO: optional: the dashboard\n")
    checks._unfinished(path)  # no exception: an optional part may stay a TODO
