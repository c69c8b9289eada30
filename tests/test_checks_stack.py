"""The checks of labs 05-07 (workbook/checks/*_lab.py) on the real engine.

Each check accepts a correct answer that differs from the official solution and rejects
plausible wrong ones with the hint that names the concept. Wrong answers a file inspection
catches cost no run; the ones only behaviour shows (a cache that errors, a stop-first update
that drops requests, a memory limit still too low) are run for real.
"""

import pytest

from workbook import ROOT, checks, resources, swarm

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


def test_lab06_draws_one_case_of_each_pool_for_each_learner():
    draws = [checks.cases_for(f"learner {i}") for i in range(60)]
    assert checks.cases_for("ann") == checks.cases_for("ann")
    assert len({tuple(d.values()) for d in draws}) >= 30  # cases and their order vary
    for d in draws:
        assert list(d) == ["case1", "case2", "case3"]
        assert all(sum(v in pool for v in d.values()) == 1 for pool in checks.POOLS)
    assert sorted(v for pool in checks.POOLS for v in pool) == sorted(checks.VARIANTS)
    assert {v.cause for v in checks.VARIANTS.values()} == set(checks.DIAGNOSIS_HINTS)
    assert not {"case1", "case2", "case3"} & set(checks.CAUSE_WORDS)


def test_lab06_given_files_say_nothing_of_why(tmp_path):
    lab = checks.troubleshooting_lab
    for name, variant in checks.VARIANTS.items():
        lab._copy_case(lab.VARIANTS_DIR / name, tmp_path / name, "case1")
        files = {f.name: f.read_text() for f in (tmp_path / name).iterdir()}
        assert variant.file in files and "compose.yaml" in files
        for fname in ("Dockerfile", "compose.yaml"):
            assert "#" not in files.get(fname, ""), (name, fname)
        telling = [name, "broken", "fixed", "wrong", "forgot", "missing", "oom", "todo"]
        assert not [w for text in files.values() for w in telling if w in text.lower()], name
        fixed = lab.fixed_file(name)
        assert fixed.exists(), fixed


def test_lab06_fixes_are_not_in_lesson_09s_output():
    """Lesson 09 prints its 13 cases' fixes; the lab's must not be among them."""
    import difflib
    import json

    nb = json.loads((ROOT / "notebooks" / "09_troubleshooting.ipynb").read_text())
    shown = "\n".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                      for c in nb["cells"] if c["cell_type"] == "code" for o in c["outputs"])
    lab = checks.troubleshooting_lab
    for name, variant in checks.VARIANTS.items():
        folder = lab.VARIANTS_DIR / name
        broken = (folder / variant.file).read_text().splitlines()
        fixed = lab.fixed_file(name).read_text().splitlines()
        added = [ln[1:].strip() for ln in difflib.unified_diff(broken, fixed, lineterm="", n=0)
                 if ln.startswith("+") and not ln.startswith("+++") and not ln[1:].lstrip().startswith("#")]
        assert not [ln for ln in added if len(ln) > 8 and ln in shown], name


# ---------------------------------------------------------------- lab 05


@pytest.fixture(scope="module")
def lab05(client):
    lab = checks.prepare_folder(client, "05", "test-checks-05")  # compose TAG test-checks-05: its own images
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


# One lab holding every variant once, so that a single start and two check runs cover them all.
EVERY = {f"case{i}": name for i, name in enumerate(checks.VARIANTS, 1)}
BY_NAME = {name: case for case, name in EVERY.items()}


@pytest.fixture(scope="module")
def lab06(client):
    lab = checks.prepare_troubleshooting(client, "06", "test_checks_06", cases=EVERY)
    yield lab
    checks.reset_stack(client, lab.owner)
    resources.cleanup(client, lab.owner)
    assert resources.find(client, lab.owner)["containers"] == []


def given(lab, name, file=None):
    return (lab.path / "given" / BY_NAME[name] / (file or checks.VARIANTS[name].file)).read_text()


def write(lab, name, text, file=None):
    (lab.path / BY_NAME[name] / (file or checks.VARIANTS[name].file)).write_text(text)


def test_lab06_given_cases_show_the_cause_docker_records(client, lab06):
    from workbook.diagnose import diagnose

    boxes = checks.start_broken(client, lab06)
    assert {case: diagnose(box).cause for case, box in boxes.items()} == {
        case: checks.VARIANTS[name].cause for case, name in EVERY.items()}


def test_lab06_not_done_before_anything_is_recorded(client, lab06):
    report = checks.troubleshooting(client, lab06, {c: "" for c in EVERY}, quiet=True)
    assert report.not_done and not report.criteria


def restore(lab):
    for case in EVERY:
        for f in (lab.path / "given" / case).iterdir():
            (lab.path / case / f.name).write_text(f.read_text())
            (lab.path / case / f.name).chmod(0o644)


def test_lab06_solution_fixes_and_diagnoses_pass(client, lab06):
    lab = checks.troubleshooting_lab
    for case, name in EVERY.items():  # each reference fix as the lab would hand it out
        write(lab06, name, lab._as_given(lab.fixed_file(name), case))
    words = {"probe-path": "the health check calls /healthz, which answers 404",
             "missing-schema": "No module named 'schema': schema.py is not copied",
             "model-file-env": "KeyError: the environment variable MODEL_FILE is not set",
             "oom-24m": "out of memory: OOMKilled, exit code 137",
             "entrypoint-mode": "entrypoint.sh has no execute bit: permission denied, 126"}
    report = checks.troubleshooting(client, lab06, {
        case: words.get(name, checks.VARIANTS[name].cause) for case, name in EVERY.items()},
        quiet=True)
    restore(lab06)
    assert report.passed, str(report)
    assert report.figures == {"diagnoses right": "9 of 9", "cases fixed": "9 of 9"}


def test_lab06_other_fixes_pass_and_wrong_ones_fail_with_their_hints(client, lab06):
    """Right fixes other than the solution's, fixes that remove what fails, fixes that do not
    fix, a symptom or another cause as the diagnosis, and a given container removed."""
    probe = "HEALTHCHECK --interval=2s CMD python -c \"import urllib.request as r; r.urlopen('http://localhost:5000/health')\"\n"
    write(lab06, "probe-path", given(lab06, "probe-path").split("HEALTHCHECK")[0] + probe)
    write(lab06, "model-file-env", given(lab06, "model-file-env", "Dockerfile").replace(
        "COPY wsgi.py /app/", "COPY wsgi.py /app/\nENV MODEL_FILE=model.skops"), "Dockerfile")
    (lab06.path / BY_NAME["entrypoint-mode"] / "entrypoint.sh").chmod(0o755)  # on the host
    write(lab06, "other-server", given(lab06, "other-server").replace(
        '"waitress-serve", "--port=5000", "--call", "app:create_app"',
        '"gunicorn", "--bind", "0.0.0.0:5000", "app:create_app()"'))
    write(lab06, "entry-module", given(lab06, "entry-module").replace("server:app", "app:create_app()"))
    # wrong: a port still wrong, no health check, no published port, no memory limit
    write(lab06, "probe-port", given(lab06, "probe-port").replace(":8000/", ":8080/"))
    write(lab06, "probe-predict", given(lab06, "probe-predict").split("HEALTHCHECK")[0] + "HEALTHCHECK NONE\n")
    write(lab06, "missing-schema", given(lab06, "missing-schema").replace(
        "COPY wsgi.py /app/", "COPY wsgi.py schema.py /app/"))
    write(lab06, "missing-schema", given(lab06, "missing-schema", "compose.yaml").replace(
        '    ports: ["127.0.0.1::5000"]\n', ""), "compose.yaml")
    write(lab06, "oom-24m", "".join(ln for ln in given(lab06, "oom-24m").splitlines(keepends=True)
                                    if "mem_limit" not in ln and "memswap_limit" not in ln))
    checks.troubleshooting_lab._case_project(client, lab06, BY_NAME["entry-module"], "given")(
        "down", "--timeout", "1")
    report = checks.troubleshooting(client, lab06, {
        BY_NAME["probe-path"]: "the probe's path is wrong",
        BY_NAME["probe-port"]: "connection refused: a network problem",  # the probe's, not the app's
        BY_NAME["probe-predict"]: "unhealthy",
        BY_NAME["missing-schema"]: "missing-module",
        BY_NAME["model-file-env"]: "missing-env",
        BY_NAME["entry-module"]: "missing-module",
        BY_NAME["oom-24m"]: "oom",
        BY_NAME["entrypoint-mode"]: "permission-denied",
        BY_NAME["other-server"]: "crashed",  # a symptom
    }, quiet=True)
    restore(lab06)
    fixed = {name: f"{BY_NAME[name]}: {checks.FIXED}" for name in EVERY.values()}
    diagnosis = {name: f"{BY_NAME[name]}: diagnosis" for name in EVERY.values()}
    assert sorted(report.failed) == sorted(
        [diagnosis[n] for n in ("probe-port", "other-server", "entry-module")]
        + [fixed[n] for n in ("probe-port", "probe-predict", "missing-schema", "oom-24m")]), str(report)
    assert "health check" in report.get(diagnosis["probe-port"]).hint
    assert "State.Error" in report.get(diagnosis["other-server"]).hint
    assert report.get(diagnosis["entry-module"]).detail == "the given container is gone"
    assert "Start cell" in report.get(diagnosis["entry-module"]).hint
    assert "Connection refused" in report.get(fixed["probe-port"]).detail  # the probe's
    assert "the health check" in report.get(fixed["probe-predict"]).detail
    assert "the published port" in report.get(fixed["missing-schema"]).detail
    assert "the memory limit" in report.get(fixed["oom-24m"]).detail
    assert all("keeps the rest" in report.get(fixed[n]).hint
               for n in ("probe-predict", "missing-schema", "oom-24m"))


def test_unfinished_files_are_not_done_but_optional_todos_are_fine(tmp_path):
    path = tmp_path / "compose.yaml"
    with pytest.raises(checks.NotDone, match="does not exist yet"):
        checks._unfinished(path)
    path.write_text("services:\n  api:\n    # TODO: a health check\n")
    with pytest.raises(checks.NotDone, match="1 TODO line"):
        checks._unfinished(path)
    path.write_text("services:\n  api: {}\n  # TODO: optional: the dashboard\n")
    checks._unfinished(path)  # no exception: an optional part may stay a TODO
