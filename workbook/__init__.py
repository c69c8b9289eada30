"""Helpers shared by the workbook's notebooks, labs and tests.

A map of the package, by purpose (each module's docstring says more; no module imports
another in a circle, tests/test_imports.py checks):

The engine and its resources
    engine      find, install or start the engine; the client; the docker CLI; its platform
    resources   labels, unique names, slugs, free ports, published ports, cleanup by label
    containers  wait until a container is running, healthy, answering, exited or settled
    images      build through docker-py with a live log; the build-cache marker, platforms
Bases and packages (offline too)
    bases       official base images, or Debian-built stand-ins when no registry answers
    wheelhouse  the pinned wheels, downloaded on the host, staged into build contexts
    bundle      the classroom kit: images and wheels in one tar, loaded and verified
    registry    a local registry on 127.0.0.1 for lesson 02
The model service and its stacks
    service     train, build the image ladder, run and call the model service
    stacks      the same model behind FastAPI, LitServe, BentoML and MLServer (own wheel sets)
    compose     Docker Compose v2 on docker/compose (lesson 05)
    swarm       Docker Swarm: deploy, update, roll back, watch tasks (lesson 06)
    traffic     requests in the background while something changes
    badinput    bodies the service must refuse with a clear 4xx (tests send them, and probes)
    broken      the tutorial's common issues, broken on purpose (lesson 09)
    diagnose    what is wrong with a container, in one paragraph
Looking inside images
    imagefs     one reading of `docker save`: layers, contents, the final filesystem
    layers      dive's efficiency figures
    scan        secrets in config, history and layers
    inventory   Debian and Python packages as CycloneDX, matched against advisories
    footprint   the files a running service really reads (the traced lower bound)
    floor       the traced image: only those files, FROM scratch, and its probe suites
    lint        hadolint as data
    audit       the tutorial's checklist on a real image (checklist: the items; shortrun:
                the short run of the image)
Measuring and showing
    measure     repeats, min/median, recorded figures
    bench       lesson 08 and `make bench`
    scoreboard  lesson 11: every image of the model measured side by side, the decision table
    show        tables and summaries in notebooks
    pictures    matplotlib pictures drawn from what the engine reports (an image's layers)
Notebooks and labs
    notebooks   execute notebooks, progress and the report (`make run`)
    labs        generate labs/ from solutions/
    checks      the labs' checks (a package: report, workspace, learner_image, one module
                per kind of lab)
    doctor      the setup check of lesson 00
    instructors INSTRUCTORS.md's timings table
"""

import contextlib
import fcntl
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("WORKBOOK_BUILD_DIR", ROOT / "build"))
LABEL = "workbook"


class WorkbookError(Exception):
    """A problem the learner can fix: shown as one short message, not a traceback."""

    def __init__(self, problem, fix=""):
        super().__init__(problem)
        self.problem, self.fix = problem, fix

    def __str__(self):
        return f"{self.problem}\n  -> {self.fix}" if self.fix else self.problem

    def _render_traceback_(self):
        # IPython calls this instead of printing a traceback.
        return [f"\x1b[31mWorkbookError:\x1b[0m {self}"]


@contextlib.contextmanager
def one_at_a_time(name):
    """A lock file build/.NAME.lock: one process at a time (make run, make test's workers)."""
    BUILD.mkdir(parents=True, exist_ok=True)
    with open(BUILD / f".{name}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # released when the file closes, even if the process dies
        yield
