"""The labs' checks: inspect the learner's real Dockerfile, image, containers or stack.

Public API (every lab follows it; labs 05-07 have their own prepare, see below)

    lab = checks.prepare(client, "01", OWNER, given=None)
        Reset the lab: remove what OWNER labelled, make a fresh folder build/labs/OWNER/ holding
        docker/app's code, model and staged wheels (no Dockerfile; `given` text becomes one).
        A Lab has .number, .owner, .path, .dockerfile (a path relative to the notebook, for
        `%%writefile {lab.dockerfile}`), .tag ("workbook/lab-NN:latest").
    report = checks.first_container(client, lab)    # one function per lab (see the modules)
        Prints one line per criterion (passed or not, with a hint for each failure) and
        returns the Report; never raises for a learner's mistake.

Where things live (this package re-exports them all: notebooks and tests say `checks.NAME`)

    report.py               Report, Criterion, NotDone, Stop and the `check` decorator
    workspace.py            Lab, WORKSPACES (build/labs/), prepare(), prepare_folder() (labs 05-07),
                            reset_stack(), lab_file(), project_name(), stack_name(), _unfinished()
    learner_image.py        helpers for checks: build(), run_service(), probe(), in_image(),
                            cleanup_containers(), predictions_ok(), why_no_answer(), instructions();
                            for the lessons' exercises learner_image(), learner_container(),
                            built_on(), built_since(), running(), labelled(), published(), answers()
    stackfile.py            a compose or stack file read through `docker compose config`
    cli_lab.py              lab 00 (the docker CLI typed by the learner): built_and_running,
                            looked_inside, shared_and_removed
    image_labs.py           labs 01-04: first_container, cache_friendly, smaller_image,
                            hardened_image
    compose_lab.py          lab 05: compose_project, compose_stack
    troubleshooting_lab.py  lab 06: cases_for (a learner's three of docker/lab06), prepare_troubleshooting,
                            start_broken, case_file, troubleshooting
    rolling_lab.py          lab 07: prepare_rolling, rolling_images, rolling_update
    lessonNN.py             the exercises inside lesson NN (checks.lesson01.limits(...)); each
                            check cell is tagged `exercise`, see tests/test_exercises.py

A name with a leading underscore belongs to this package: its modules share it, notebooks do not.

Writing a check

    @check("Lab 01 · first container")
    def first_container(r, client, lab):        # r is the Report being filled
        image, seconds = build(r, client, lab)  # a build error: a failed line + its step, stop
        r.add("name", passed, detail="what was found", hint="concept (lesson NN §N)",
              note="shown when it passed")         # one criterion, shown in order
        r.figures["image size"] = "..."         # what the summary cell shows
        raise NotDone("no image yet", "run the build cell first")   # "not done yet: ..."
        raise Stop()                            # end after a failed criterion others need

`check` runs the function, turns NotDone, Stop and WorkbookError/Docker errors into report
lines (never a traceback), prints the report and returns it. Report.passed is True only
when every criterion passed; Report.not_done holds the "not done yet" message, if any.
Hints name the concept and the lesson section to revisit, e.g. "lesson 04 §3".
A new lab's check goes in a module of its own (or image_labs.py for one more image lab),
re-exported below.

A lab notebook (solutions/NN_name.ipynb; labs/ is generated from it, see workbook/labs.py)
sets OWNER in its `parameters` cell (tests inject their own), calls prepare() first, and tags
its check cells `check`: tests/test_labs.py runs each generated lab to its first check and
wants "not done yet" printed there, with no error on the way.
"""

from .compose_lab import COMPOSE_HINT, STACK_WAIT, compose_project, compose_stack
from .image_labs import (COMPILERS, FAST_REBUILD, HARDENED_RUN, HEALTH_WAIT, LEFTOVERS,
                         SIZE_BUDGET, cache_friendly, dependency_layer, first_container,
                         hardened_image, smaller_image, wait_health, writable_code)
from .learner_image import (BUILD_HINT, LOOPBACK, NotStarted, build, cleanup_containers,
                            in_image, instructions, predictions_ok, probe, run_service,
                            why_no_answer)
from .report import FAIL, PASS, Criterion, NotDone, Report, Stop, check
from . import (cli_lab, lesson01, lesson02, lesson03, lesson04, lesson05, lesson06, lesson07, lesson07b,
               lesson08, lesson09, lesson10, lesson11)
from .rolling_lab import ROLL_WAIT, prepare_rolling, rolling_images, rolling_update
from .troubleshooting_lab import (CAUSE_WORDS, DIAGNOSIS_HINTS, FIXED, POOLS, VARIANTS,
                                  case_file, cases_for, classify, prepare_troubleshooting,
                                  start_broken, troubleshooting)
from .workspace import (WORKSPACES, Lab, _unfinished, lab_file, prepare, prepare_folder,
                        project_name, reset_stack, stack_name)

__all__ = [
    "BUILD_HINT", "CAUSE_WORDS", "COMPILERS", "COMPOSE_HINT",
    "Criterion", "DIAGNOSIS_HINTS", "FAIL", "FAST_REBUILD", "FIXED", "HARDENED_RUN",
    "HEALTH_WAIT", "LEFTOVERS", "LOOPBACK", "Lab", "NotDone", "NotStarted", "PASS", "ROLL_WAIT",
    "Report", "SIZE_BUDGET", "STACK_WAIT", "Stop", "WORKSPACES", "_unfinished", "build",
    "POOLS", "VARIANTS", "cache_friendly", "case_file", "cases_for", "check", "classify", "cleanup_containers", "compose_project",
    "compose_stack", "dependency_layer", "first_container", "hardened_image", "in_image",
    "instructions", "lab_file", "lesson01", "lesson02", "lesson03", "lesson04", "lesson05", "lesson06",
    "lesson07", "lesson07b", "lesson08", "lesson09", "lesson10", "lesson11",
    "predictions_ok",
    "prepare", "prepare_folder", "prepare_rolling",
    "prepare_troubleshooting", "probe", "project_name", "reset_stack", "rolling_images",
    "rolling_update", "run_service", "smaller_image", "stack_name", "start_broken",
    "troubleshooting", "wait_health", "why_no_answer", "writable_code",
]
