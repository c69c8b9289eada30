"""The tutorial's Best Practices Checklist, evaluated on a real image and its Dockerfile.

Each checklist item gets pass / fail / n/a and the evidence it rests on, from three sources:
the Dockerfile's text (dockerfile-parse, hadolint), the image (config, history, and one
reading of `docker save` for the files of every layer, dive's efficiency figures, the secret
scanner and the package inventory), and a short run of the container (the uid it runs as,
its health status, what it writes to stdout and stderr). The items themselves are in
workbook/checklist.py, the short run in workbook/shortrun.py.

    python -m workbook audit --dockerfile docker/app/Dockerfile workbook/app:production
"""

import io
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from docker.errors import ImageNotFound
from dockerfile_parse import DockerfileParser

from . import WorkbookError, bases, engine, imagefs, inventory, layers, lint, scan
from .checklist import CHECKLIST, CHECKS, SEVERITIES, Item  # noqa: F401 (Item: audit.Item)
from .shortrun import short_run


@dataclass
class Audit:
    """Every checklist item for one image, plus what its short run showed."""

    image: str
    dockerfile: str
    items: list
    run: dict = field(default_factory=dict)

    def item(self, key):
        """The item called `key` (see CHECKLIST)."""
        return next(i for i in self.items if i.key == key)

    def failed(self, fail_on="info"):
        """The failed items of severity `fail_on` or above."""
        floor = _rank(fail_on)
        return [i for i in self.items if i.status == "fail" and _rank(i.severity) >= floor]

    def exit_code(self, fail_on="high"):
        """1 when an item of severity `fail_on` or above failed, else 0 (for CI)."""
        if fail_on == "never":
            return 0
        return 1 if self.failed(fail_on) else 0

    def counts(self):
        """{'pass': n, 'fail': n, 'n/a': n}."""
        return {s: sum(i.status == s for i in self.items) for s in ("pass", "fail", "n/a")}

    def as_dict(self):
        """Everything, as plain data."""
        return {"image": self.image, "dockerfile": self.dockerfile, "counts": self.counts(),
                "items": [asdict(i) for i in self.items], "run": self.run}

    def as_json(self):
        """The audit as a JSON document (for machines)."""
        return json.dumps(self.as_dict(), indent=2, default=str)

    def markdown(self):
        """The audit as a Markdown table (for humans, in a notebook)."""
        rows = ["| checklist item | result | severity | evidence |", "| --- | --- | --- | --- |"]
        for i in self.items:
            evidence = "; ".join(i.evidence).replace("|", "\\|")
            rows.append(f"| {i.title} | {_word(i.status)} | {i.severity} | {evidence} |")
        return "\n".join(rows)

    def text(self, width=100):
        """The audit as a plain-text table (for a terminal)."""
        out = [f"audit of {self.image} ({self.dockerfile})", ""]
        for i in self.items:
            out.append(f"{_word(i.status):<5} {i.severity:<8} {i.title}")
            for e in i.evidence:
                out.append(" " * 15 + (e if len(e) <= width else e[:width - 3] + "..."))
        c = self.counts()
        out += ["", f"{c['pass']} passed, {c['fail']} failed, {c['n/a']} not applicable"]
        return "\n".join(out)

    def _repr_markdown_(self):
        return self.markdown()


def _word(status):
    return {"pass": "pass", "fail": "FAIL", "n/a": "n/a"}[status]


def _rank(severity):
    if severity not in SEVERITIES:
        raise WorkbookError(f"No severity {severity!r}.", f"Use one of {', '.join(SEVERITIES)}.")
    return SEVERITIES.index(severity)


def side_by_side(audits):
    """(headers, rows) of several audits, one column each: {name: Audit}."""
    names = list(audits)
    rows = []
    for key, (title, _) in CHECKLIST.items():
        rows.append([title] + [_word(audits[n].item(key).status) for n in names])
    rows.append(["passed"] + [f"{audits[n].counts()['pass']} of {len(CHECKLIST)}" for n in names])
    return ["checklist item"] + names, rows


# ---------------------------------------------------------------- the Dockerfile's text

@dataclass
class Stage:
    """One FROM ... stage of a Dockerfile."""

    base: str  # resolved image reference, or an earlier stage's name
    name: str
    line: int  # 1-based
    from_stage: bool
    instructions: list = field(default_factory=list)  # dockerfile-parse dicts


def _stages(parser):
    """The Dockerfile's stages, with ARGs in FROM resolved."""
    stages, names = [], set()
    resolved = iter(parser.parent_images)
    for ins in parser.structure:
        if ins["instruction"] == "FROM":
            parts = [p for p in ins["value"].split() if not p.startswith("--")]
            raw, base = parts[0], next(resolved)
            name = parts[2] if len(parts) >= 3 and parts[1].lower() == "as" else ""
            stages.append(Stage(base, name, ins["startline"] + 1, raw in names))
            if name:
                names.add(name)
        elif stages:
            stages[-1].instructions.append(ins)
    return stages


@dataclass
class Facts:
    """Everything the checks read (gathered once, some of it in parallel)."""

    dockerfile: Path = None
    context: Path = None
    stages: list = None
    structure: list = None
    lint: list = None
    image: object = None
    base_layers: int = 0
    entries: list = None  # per layer, bottom first: [layers.Entry] (dive's view)
    files: dict = None  # {path: imagefs.Entry} of the final filesystem
    efficiency: object = None
    compose: Path = None
    run_config: dict = None
    run: dict = None
    secrets: list = None  # scan.scan_image's findings
    inventory: tuple = None  # (packages, advisories)

    def findings(self, *codes):
        """hadolint's findings with these codes."""
        return [f for f in self.lint if f["code"] in codes]

    @property
    def final(self):
        """The final stage: the one the image is."""
        return self.stages[-1]

    def own_entries(self):
        """The layer entries this Dockerfile added (the base image's left out)."""
        return [e for entries in self.entries[self.base_layers:] for e in entries]


# ---------------------------------------------------------------- the entry point

def audit(dockerfile, image, client=None, compose=None, run=True, *, owner="audit",
          buildargs=None, context=None, run_config=None, window=30):
    """Evaluate the tutorial's Best Practices Checklist on `image`, built from `dockerfile`.

    compose: a compose file whose limits apply to this image; run_config: docker-py run
    keyword arguments (environment, mem_limit, nano_cpus, ...) used for the short run and
    checked for limits; buildargs: for ARGs in FROM (default: this machine's base images).
    """
    client = client or engine.client()
    dockerfile = Path(dockerfile)
    if not dockerfile.is_file():
        raise WorkbookError(f"No Dockerfile at {dockerfile}.", "Give the path with --dockerfile.")
    try:
        img = image if hasattr(image, "attrs") else client.images.get(image)
    except ImageNotFound:
        raise WorkbookError(f"No image {image!r} on this engine.",
                            "Build it first (docker build -t NAME -f DOCKERFILE .).") from None
    args = {**bases.build_args(client), **(buildargs or {})}
    # fileobj: a path not named 'Dockerfile' would be taken for a directory
    parser = DockerfileParser(fileobj=io.BytesIO(dockerfile.read_bytes()), build_args=args)
    stages = _stages(parser)
    if not stages:
        raise WorkbookError(f"{dockerfile} has no FROM.", "Is it a Dockerfile?")
    # The one reading of `docker save` and the short run are independent: run them at once,
    # each on its own connection to the engine.
    clients = []

    def own(fn, *a):
        clients.append(engine.client())
        return pool.submit(fn, clients[-1], *a)

    with ThreadPoolExecutor(max_workers=2) as pool:
        saved = own(_read_image, img)
        ran = own(short_run, img, owner, run_config, window) if run else None
        facts = Facts(dockerfile=dockerfile, context=Path(context or dockerfile.parent),
                      stages=stages, structure=parser.structure, lint=lint.hadolint(dockerfile),
                      image=img, base_layers=_base_layers(client, img, stages), compose=compose,
                      run_config=run_config, run=ran.result() if ran else None,
                      **saved.result())
    for c in clients:
        c.close()
    facts.efficiency = layers.efficiency(facts.entries)
    name = image if isinstance(image, str) else (img.tags[0] if img.tags else img.short_id)
    return Audit(name, str(dockerfile), [check(facts) for check in CHECKS], facts.run or {})


def _read_image(client, image):
    """The Facts one reading of `docker save` gives: layers, final files, secrets, packages."""
    secrets, files = scan.Secrets(), inventory.Files()
    saved = imagefs.read(client, image, secrets, files)
    packages = files.packages(saved)
    return {"entries": layers.dive_layers(saved), "files": saved.files(),
            "secrets": secrets.findings(image, saved),
            "inventory": (packages, inventory.advisories(packages))}


def _base_layers(client, image, stages):
    """How many of the image's layers come from its final stage's base image."""
    st = stages[-1]
    while st.from_stage:  # FROM an earlier stage: that stage's base
        st = next(s for s in stages if s.name == st.base)
    if st.base == "scratch":
        return 0
    try:
        base = client.images.get(st.base).attrs["RootFS"]["Layers"]
    except ImageNotFound:
        return 0
    mine = image.attrs["RootFS"]["Layers"]
    return len(base) if mine[:len(base)] == base else 0
