"""Helpers shared by the workbook's notebooks, labs and tests."""

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
