"""A check's report: criteria in order, NotDone and Stop, and the `check` decorator."""

import functools
from dataclasses import dataclass, field

from docker.errors import DockerException

from .. import WorkbookError

PASS, FAIL = "✓", "✗"


class NotDone(Exception):
    """Raised by a check when what it needs does not exist yet (no Dockerfile, no image...)."""

    def __init__(self, what, todo):
        super().__init__(what)
        self.what, self.todo = what, todo


def given(todo, **answers):
    """NotDone while one of the learner's answers (by name) is still `...`."""
    if any(v is ... for v in answers.values()):
        raise NotDone(f"{' or '.join(answers)} is still ...", todo)


class Stop(Exception):
    """Raised by a check to end it early, after a failed criterion the others depend on."""


@dataclass
class Criterion:
    """One line of a report."""

    name: str
    passed: bool
    detail: str = ""  # shown when it failed: what was found
    hint: str = ""  # shown when it failed: the concept and the lesson section to revisit
    note: str = ""  # shown when it passed: what was measured
    optional: bool = False  # an extra the task offers: shown, never counted against the lab

    def __str__(self):
        if self.passed:
            return f"{PASS} {self.name}" + (f" ({self.note})" if self.note else "")
        line = f"{FAIL} {self.name}" + (" (optional, not counted)" if self.optional else "")
        line += f": {self.detail}" if self.detail else ""
        return line + (f"\n    hint: {self.hint}" if self.hint else "")


@dataclass
class Report:
    """What one check found: its criteria in order, or why it could not start."""

    title: str
    criteria: list = field(default_factory=list)
    not_done: str = None
    figures: dict = field(default_factory=dict)
    seen: dict = field(default_factory=dict)  # what the check recorded, for a notebook to draw

    def add(self, name, passed, detail="", hint="", note="", optional=False):
        """Record one criterion; return whether it passed."""
        self.criteria.append(Criterion(name, bool(passed), detail, hint, note, optional))
        return bool(passed)

    @property
    def required(self):
        """The criteria that count (the optional ones left out)."""
        return [c for c in self.criteria if not c.optional]

    @property
    def passed(self):
        """True when the check ran to the end and every required criterion passed."""
        return self.not_done is None and bool(self.required) and all(c.passed for c in self.required)

    @property
    def failed(self):
        """The names of the required criteria that failed."""
        return [c.name for c in self.required if not c.passed]

    def get(self, name):
        """The criterion called name (None if the check never reached it)."""
        return next((c for c in self.criteria if c.name == name), None)

    def verdict(self):
        """One line: done, not done yet, or how many criteria passed."""
        if self.not_done:
            return "not done yet"
        ok = sum(c.passed for c in self.required)
        return "done" if self.passed else f"{ok} of {len(self.required)} criteria passed"

    def _ipython_display_(self):
        """Show nothing more at the end of a cell: the check has printed the report already."""

    def __str__(self):
        lines = [self.title]
        lines += [str(c) for c in self.criteria]
        if self.not_done:
            lines.append(f"not done yet: {self.not_done}")
        elif self.passed:
            lines.append(f"done: all {len(self.required)} criteria passed")
        else:
            lines.append(f"{self.verdict()}: fix the ✗ lines and run this check again")
        return "\n".join(lines)


def check(title):
    """Decorator: run a check function with a fresh Report, print the report, return it."""
    def wrap(fn):
        @functools.wraps(fn)
        def run(*args, quiet=False, **kw):
            r = Report(title)
            try:
                fn(r, *args, **kw)
            except NotDone as exc:
                r.not_done = f"{exc.what} -> {exc.todo}"
            except Stop:
                pass
            except WorkbookError as exc:
                r.add("could not finish the check", False, exc.problem, exc.fix)
            except DockerException as exc:
                r.add("could not finish the check", False, f"Docker said: {exc}",
                      "read the message; fix what it names and run the check again")
            if not quiet:
                print(r)
            return r
        return run
    return wrap
