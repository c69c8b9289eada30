"""make test's two processes: what shares the swarm, an owner or an image name runs in one (conftest.group)."""

import ast
import json
import re

import pytest

from conftest import BESIDE_SWARM, FIRST, group
from workbook import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]*_*.ipynb")) + sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))


def code_of(path):
    return "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")


def node(path, name="Cell 0"):
    return f"{path.relative_to(ROOT)}::{name}"


@pytest.mark.parametrize("nodeid, expected", [
    ("notebooks/06_orchestration.ipynb::Cell 3", "swarm"),
    ("solutions/07_rolling_update.ipynb::Cell 1", "swarm"),
    ("tests/test_swarm.py::test_anything", "swarm"),
    ("tests/test_checks_stack.py::test_lab07_accepts_another_correct_policy", "swarm"),
    ("tests/test_exercises.py::test_exercise_is_graded_right[06.2]", "swarm"),
    ("tests/test_exercises.py::test_exercise_is_graded_right[02.1]", "tests/test_exercises.py[02]"),
    ("tests/test_exercises.py::test_every_exercise_is_whole", "tests/test_exercises.py"),
    ("tests/test_checks.py::test_lab03_accepts_a_prefix_install", "tests/test_checks.py[lab03]"),
    ("tests/test_checks.py::test_report_lines_and_verdicts", "tests/test_checks.py"),
    ("tests/test_browser.py::test_setup_check_runs_from_the_ui", "notebooks/00_setup_check.ipynb"),
    ("tests/test_checks_stack.py::test_lab05_solution_passes", "solutions/05_compose_stack.ipynb"),
    ("tests/test_labs.py::test_generated_lab_runs_to_its_first_check_and_says_not_done[03_smaller_image]",
     "solutions/03_smaller_image.ipynb"),
    ("tests/test_labs.py::test_generated_lab_runs_to_its_first_check_and_says_not_done[07_rolling_update]", "swarm"),
    ("tests/test_app.py::test_health[1]", "tests/test_app.py"),
    ("solutions/00_docker_cli.ipynb::Cell 4", "notebooks/00_setup_check.ipynb"),
    ("tests/test_labs.py::test_generated_lab_runs_to_its_first_check_and_says_not_done[00_docker_cli]",
     "notebooks/00_setup_check.ipynb"),
])
def test_group_of_a_node(nodeid, expected):
    assert group(nodeid) == expected


def test_every_notebook_that_joins_the_swarm_is_in_its_group():
    joins = [p for p in NOTEBOOKS if re.search(r"ensure_swarm|swarm init", code_of(p))]
    assert joins, "no notebook joins a swarm: the pattern is out of date"
    assert [p.name for p in joins if group(node(p)) != "swarm"] == []


def test_every_test_of_the_swarm_fixtures_is_in_its_group():
    tree = ast.parse((ROOT / "tests" / "test_checks_stack.py").read_text())
    for fn in (n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")):
        if "lab07" in {a.arg for a in fn.args.args}:
            assert group(f"tests/test_checks_stack.py::{fn.name}") == "swarm", fn.name


def test_a_test_that_uses_a_notebook_s_owner_runs_with_that_notebook():
    owners = {m[1]: p for p in NOTEBOOKS if (m := re.search(r'^OWNER = "([^"]+)"', code_of(p), re.M))}
    for module in (ROOT / "tests").glob("test_*.py"):
        m = re.search(r'^OWNER = "([^"]+)"', module.read_text(), re.M)
        if m and m[1] in owners:
            assert group(f"tests/{module.name}::test_x") == group(node(owners[m[1]])), module.name


def test_the_first_groups_exist():
    known = {group(node(p)) for p in NOTEBOOKS} | {"tests/test_compose.py"}
    known |= {f"tests/test_exercises.py[{p.name.split('_')[0]}]" for p in NOTEBOOKS} | {"tests/test_checks.py[lab02]"}
    assert set(FIRST) <= known


def test_the_groups_beside_swarm_exist():
    known = {group(node(p)) for p in NOTEBOOKS} | {f"tests/{m.name}" for m in (ROOT / "tests").glob("test_*.py")}
    known |= {f"tests/test_exercises.py[{p.name.split('_')[0]}]" for p in NOTEBOOKS}
    known |= {f"tests/test_checks.py[{m}]" for m in re.findall(r"def test_(lab\d\d)_", (ROOT / "tests" / "test_checks.py").read_text())}
    assert BESIDE_SWARM - known == set()


# What puts a container on a user-defined network: a network made or joined, a Compose stack up,
# lesson 09's broken scenarios, the bench's network, the checks of lessons 03, 05 and 07b.
NETWORK = re.compile(r"networks\.create|network=|--network|network (?:create|connect)|compose\.(?:project|Project)\(|"
                     r"\bup\b[^\n]*--detach|broken\.|bench\.network|lesson0(?:3|5|7b)\b")


def code_of_group(name):
    """The code a group of BESIDE_SWARM runs: a notebook's, a module's, a lesson's answers and checks."""
    from test_exercises import ANSWERS
    if m := re.fullmatch(r"tests/test_exercises\.py\[(\w+)\]", name):
        return (repr({k: v for k, v in ANSWERS.items() if k.startswith(f"{m[1]}.")})
                + (ROOT / "workbook" / "checks" / f"lesson{m[1]}.py").read_text())
    if name == "tests/test_exercises.py":
        return ""  # its other tests run no exercise
    if name.endswith(".ipynb"):
        return code_of(ROOT / name)
    return (ROOT / name.split("[")[0]).read_text()  # tests/test_checks.py[labNN]: the module


def test_what_runs_beside_swarm_puts_no_container_on_a_user_defined_network():
    for name in sorted(BESIDE_SWARM):
        found = NETWORK.search(code_of_group(name))
        assert not found, f"{name}: {found[0]!r} (then it is not BESIDE_SWARM)"
