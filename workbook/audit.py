"""The tutorial's Best Practices Checklist, evaluated on a real image and its Dockerfile.

Each checklist item gets pass / fail / n/a and the evidence it rests on, from three sources:
the Dockerfile's text (dockerfile-parse, hadolint), the image (config, history, the files
of every layer via `docker save`, dive's efficiency figures, the secret scanner and the
package inventory), and a short run of the container (the uid it runs as, its health
status, what it writes to stdout and stderr).

    python -m workbook audit --dockerfile docker/app/Dockerfile workbook/app:production
"""

import io
import json
import math
import posixpath
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.utils.build import exclude_paths
from dockerfile_parse import DockerfileParser

from . import WorkbookError, bases, engine, layers, lint
from .resources import labels, unique_name

SEVERITIES = ("info", "low", "medium", "high", "critical")

# key -> (the tutorial's checklist line, how much a failure matters)
CHECKLIST = {
    "base-tags": ("Use specific base image tags", "medium"),
    "layers": ("Minimize number of layers", "low"),
    "build-cache": ("Leverage build cache", "low"),
    "multi-stage": ("Use multi-stage builds", "medium"),
    "dockerignore": ("Create .dockerignore file", "low"),
    "non-root": ("Don't run as root", "high"),
    "vulnerabilities": ("Scan images for vulnerabilities", "high"),
    "secrets": ("Use secrets management", "critical"),
    "resource-limits": ("Set resource limits", "medium"),
    "healthcheck": ("Implement health checks", "medium"),
    "logging": ("Add logging and monitoring", "low"),
    "documented": ("Document your Dockerfile", "info"),
}

# dive --ci's default rules (dive 0.13): lowest efficiency 0.9, highest user-wasted ratio 0.1.
LOWEST_EFFICIENCY, HIGHEST_USER_WASTED = 0.9, 0.1
INSTALL = re.compile(r"\b(pip3?|python3? -m pip|bin/pip)\s+install\b|\bapt-get\s+(-\S+\s+)*install\b"
                     r"|\bapk add\b|\bconda install\b|\bnpm (ci|install)\b|\bpoetry install\b")
COMPILER = re.compile(r"^/usr/(local/)?bin/(\S+-)?(gcc|g\+\+|cc|c\+\+|clang)(-\d+)?$")
JUNK = {".git", ".pytest_cache", ".vscode", ".idea", ".DS_Store", ".env", ".venv", ".mypy_cache"}
OCI_DOC = ("org.opencontainers.image.title", "org.opencontainers.image.description",
           "description", "maintainer", "version")


@dataclass
class Item:
    """One checklist item: its verdict and what the verdict rests on."""

    key: str
    title: str
    status: str  # "pass", "fail" or "n/a"
    severity: str
    evidence: list = field(default_factory=list)


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


def _args(ins):
    """An instruction's arguments without its --flags (JSON form understood)."""
    value = ins["value"].strip()
    if value.startswith("["):
        try:
            return json.loads(value)
        except ValueError:
            pass
    return [p for p in value.split() if not p.startswith("--")]


def _flag(ins, name):
    m = re.search(rf"--{name}=(\S+)", ins["value"])
    return m.group(1) if m else None


def _copies_context(ins):
    """True for COPY/ADD from the build context (not --from another stage or image)."""
    return ins["instruction"] in ("COPY", "ADD") and _flag(ins, "from") is None


def _line(ins):
    return ins["startline"] + 1


def _short(text, n=70):
    text = " ".join(text.split())
    return text if len(text) <= n else text[:n - 3] + "..."


# ---------------------------------------------------------------- the image's files

def _final_files(layer_entries):
    """{path: Entry} of what the image's filesystem shows (whiteouts applied)."""
    seen, hidden, opaque = {}, set(), set()
    for entries in reversed(layer_entries):
        new_hidden, new_opaque = set(), set()
        for e in entries:
            parent, base = posixpath.split(e.path)
            if e.kind == "whiteout":
                new_hidden.add(posixpath.join(parent, base[len(layers.WHITEOUT):]))
            elif e.kind == "opaque":
                new_opaque.add(parent)
            elif e.path not in seen and not _covered(e.path, hidden, opaque):
                seen[e.path] = e
        hidden |= new_hidden
        opaque |= new_opaque
    return seen


def _covered(path, hidden, opaque):
    """True when an upper layer deleted `path` or one of its parents, or made a parent opaque."""
    if path in hidden:
        return True
    p = posixpath.dirname(path)
    while p != "/":
        if p in hidden or p in opaque:
            return True
        p = posixpath.dirname(p)
    return "/" in opaque


def _size(n):
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000


# ---------------------------------------------------------------- the short run

def _short_run(client, image, owner, run_config, window):
    """Run the image for a few seconds: uid, health status, output, files written."""
    config = image.attrs["Config"]
    kw = dict(run_config or {})
    hc = config.get("Healthcheck") or {}
    has_hc = bool(hc.get("Test")) and hc["Test"][0] != "NONE"
    if has_hc:
        # The image's own probe, run by Docker every second instead of every 30 s.
        kw.setdefault("healthcheck", {
            "test": hc["Test"], "interval": 1_000_000_000,
            "timeout": min(hc.get("Timeout") or 30_000_000_000, 5_000_000_000),
            "retries": hc.get("Retries") or 3,
            "start_period": min(hc.get("StartPeriod") or 0, 10_000_000_000)})
    run = {"started": False, "error": None}
    container = client.containers.create(image.id, name=unique_name(owner, "audit"),
                                         labels=labels(owner), detach=True, **kw)
    start = time.monotonic()
    try:
        try:
            container.start()
            run["started"] = True
        except APIError as exc:
            run["error"] = _short(str(exc.explanation or exc), 300)
        while run["started"] and time.monotonic() - start < window:
            container.reload()
            health = (container.attrs["State"].get("Health") or {}).get("Status")
            if container.status in ("exited", "dead") or health in ("healthy", "unhealthy"):
                break
            # No probe to wait for: stop a second after its first output, or after 15 s.
            if not has_hc and (time.monotonic() - start >= min(15, window) or (
                    time.monotonic() - start >= 1 and _said_something(container))):
                time.sleep(1)
                break
            time.sleep(0.2)
        run["seconds"] = round(time.monotonic() - start, 1)
        container.reload()
        state = container.attrs["State"]
        run.update(status=container.status, exit_code=state.get("ExitCode"),
                   health=(state.get("Health") or {}).get("Status"),
                   probe=_last_probe(state), uid=_uid(container))
        run["stdout"] = container.logs(stdout=True, stderr=False).decode(errors="replace").splitlines()
        run["stderr"] = container.logs(stdout=False, stderr=True).decode(errors="replace").splitlines()
        try:
            run["written"] = [d["Path"] for d in container.diff() or [] if d["Kind"] in (0, 1)]
        except APIError:
            run["written"] = []
        if run["error"] or run["status"] == "exited" or run["health"] in ("unhealthy", "starting"):
            run["diagnosis"] = _diagnose(container)
    finally:
        try:
            container.remove(force=True, v=True)
        except NotFound:
            pass
    return run


def _said_something(container):
    return bool(container.logs(tail=1))


def _last_probe(state):
    probes = (state.get("Health") or {}).get("Log") or []
    if not probes:
        return None
    last = probes[-1]
    lines = (last.get("Output") or "").strip().splitlines()
    return {"exit_code": last["ExitCode"], "output": lines[-1][:300] if lines else ""}


def _uid(container):
    """The uid of the container's first process, from `docker top` (None when not running)."""
    if container.status != "running":
        return None
    try:
        top = container.top(ps_args="-o pid,uid")
    except APIError:
        return None
    col = top["Titles"].index("UID")
    procs = sorted(top.get("Processes") or [], key=lambda p: int(p[0]))
    return int(procs[0][col]) if procs else None


def _diagnose(container):
    try:
        from .diagnose import diagnose
    except ImportError:
        return None
    try:
        return str(diagnose(container))
    except (DockerException, LookupError, ValueError, TypeError) as exc:  # extra evidence only
        return f"(diagnose failed: {exc})"


# ---------------------------------------------------------------- the checks

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
    entries: list = None  # per layer, bottom first: [Entry]
    files: dict = None
    efficiency: object = None
    compose: Path = None
    run_config: dict = None
    run: dict = None
    secrets: list = None  # scan.scan_image's findings (None: no scanner)
    inventory: tuple = None  # (packages, advisories) (None: no inventory module)

    def findings(self, *codes):
        return [f for f in self.lint if f["code"] in codes]

    @property
    def final(self):
        return self.stages[-1]

    def own_entries(self):
        return [e for entries in self.entries[self.base_layers:] for e in entries]


def _item(key, status, evidence, severity=None):
    title, default = CHECKLIST[key]
    return Item(key, title, status, severity or default, [e for e in evidence if e])


def check_base_tags(f):
    evidence, bad = [], []
    for st in f.stages:
        if st.from_stage:
            continue
        ref = st.base
        name, _, digest = ref.partition("@")
        tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else None
        if ref == "scratch":
            evidence.append(f"line {st.line}: FROM scratch (empty, nothing to pin)")
        elif digest:
            evidence.append(f"line {st.line}: {ref} is pinned by digest")
        elif tag in (None, "latest"):
            bad.append(st)
            evidence.append(f"line {st.line}: {ref} has {'no tag (so latest)' if tag is None else 'the tag latest'}: "
                            "it moves with every release")
        else:
            evidence.append(f"line {st.line}: {ref} (tag {tag})")
    codes = sorted({x["code"] for x in f.findings("DL3006", "DL3007")})
    if codes:
        evidence.append("hadolint " + ", ".join(codes))
    return _item("base-tags", "fail" if bad else "pass", evidence)


def check_layers(f):
    eff = f.efficiency
    total = len(f.entries)
    runs = sum(i["instruction"] == "RUN" for i in f.final.instructions)
    consecutive = [x["line"] for x in f.findings("DL3059")]
    user = 0.0 if math.isnan(eff.user_wasted_fraction) else eff.user_wasted_fraction
    dive_ok = eff.efficiency >= LOWEST_EFFICIENCY and user <= HIGHEST_USER_WASTED
    evidence = [(f"{total} layers: {f.base_layers} from the base, {total - f.base_layers} of its "
                 f"own ({runs} RUN in the final stage)"),
                (f"dive: efficiency {eff.efficiency:.2%}, wasted {_size(eff.wasted_bytes)} "
                 f"({user:.1%} of the layers above the first; dive --ci fails below "
                 f"{LOWEST_EFFICIENCY:.0%} or above {HIGHEST_USER_WASTED:.0%})")]
    if eff.inefficient and not dive_ok:
        top = eff.inefficient[0]
        evidence.append(f"most wasted: {top.path} ({top.count} copies, {_size(top.cumulative_bytes)})")
    if consecutive:
        evidence.append(f"consecutive RUN instructions at lines {', '.join(map(str, consecutive))} (hadolint DL3059)")
    return _item("layers", "pass" if dive_ok and not consecutive else "fail", evidence)


def check_build_cache(f):
    evidence, bad, installs_seen = [], False, False
    for st in f.stages:
        whole = next((i for i in st.instructions if _copies_context(i)
                      and any(s.rstrip("/") in (".", "") for s in _args(i)[:-1])), None)
        installs = [i for i in st.instructions if i["instruction"] == "RUN" and INSTALL.search(i["value"])]
        installs_seen |= bool(installs)
        label = f"stage {st.name or st.base}"
        late = [i for i in installs if whole and _line(i) > _line(whole)]
        if late:
            bad = True
            evidence.append(f"{label}: line {_line(whole)} `{_short(whole['content'], 30)}` comes before "
                            f"line {_line(late[0])} `{_short(late[0]['content'], 40)}`: "
                            "any code change reinstalls every dependency")
        elif installs:
            where = f"; the whole context is copied after them (line {_line(whole)})" if whole else ""
            evidence.append(f"{label}: dependencies installed at line {_line(installs[0])}, before "
                            f"the code is copied{where}")
    if not installs_seen:
        return _item("build-cache", "n/a", ["nothing is installed: no dependency layer to cache"])
    return _item("build-cache", "fail" if bad else "pass", evidence)


def check_multi_stage(f):
    copies = [i for i in f.final.instructions if i["instruction"] == "COPY" and _flag(i, "from")]
    compilers = sorted({posixpath.basename(p) for p in f.files if COMPILER.match(p)})
    # Wheels and pip's cache count where this Dockerfile added them (the base's are its own).
    added = {e.path for e in f.own_entries()}
    wheels = [e for p, e in f.files.items() if p.endswith(".whl") and p in added]
    pip_cache = any(p.startswith("/root/.cache/pip/") for p in f.files if p in added)
    found = []
    if compilers:
        found.append("compilers " + ", ".join(compilers[:4]))
    if wheels:
        found.append(f"{len(wheels)} .whl files ({_size(sum(e.size for e in wheels))})")
    if pip_cache:
        found.append("pip's cache (/root/.cache/pip)")
    names = ", ".join(st.name or st.base for st in f.stages)
    evidence = [f"{len(f.stages)} stage{'s' if len(f.stages) > 1 else ''} ({names})"]
    if copies:
        evidence.append("the final stage copies " + ", ".join(
            f"{_args(i)[0]} from {_flag(i, 'from')}" for i in copies[:3]))
    evidence.append("build-only files in the image: " + "; ".join(found) if found
                    else "no compiler, wheel files or pip cache in the image")
    ok = len(f.stages) > 1 and copies and not found
    return _item("multi-stage", "pass" if ok else "fail", evidence)


def check_dockerignore(f):
    sends = [i for st in f.stages for i in st.instructions if _copies_context(i)]
    if not sends:
        return _item("dockerignore", "n/a", ["nothing is copied from the build context"])
    ignore = f.context / ".dockerignore"
    ignore = ignore if ignore.exists() else None
    patterns = []
    if ignore:
        patterns = [ln.strip() for ln in ignore.read_text().splitlines()
                    if ln.strip() and not ln.strip().startswith("#")]
    everything = _context_size(f.context, [], f.dockerfile)
    kept = _context_size(f.context, patterns, f.dockerfile)
    junk = sorted({p for p in (e.path for e in f.own_entries()) if set(p.split("/")) & JUNK})
    evidence = [f".dockerignore with {len(patterns)} patterns" if ignore
                else "no .dockerignore in the build context",
                f"context sent: {kept[0]} files, {_size(kept[1])}"
                + (f" (without it: {everything[0]} files, {_size(everything[1])})" if ignore else "")]
    if junk:
        evidence.append("copied into the image: " + ", ".join(junk[:3]))
    return _item("dockerignore", "pass" if ignore and not junk else "fail", evidence)


def _context_size(context, patterns, dockerfile):
    paths = exclude_paths(str(context), patterns, dockerfile=str(dockerfile.name))
    files = [context / p for p in paths if (context / p).is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def check_non_root(f):
    user = f.image.attrs["Config"].get("User") or ""
    users = [i for i in f.final.instructions if i["instruction"] == "USER"]
    evidence = [f"Config.User {user!r}" + (f" (USER at line {_line(users[-1])})" if users
                                            else " (no USER instruction: root)")]
    run = f.run or {}
    if run.get("uid") is not None:
        evidence.append(f"the running container's first process: uid {run['uid']} (docker top)")
        root = run["uid"] == 0
    else:
        if f.run is not None:
            evidence.append("not running, so judged by its configuration")
        root = user.split(":")[0] in ("", "root", "0")
    if f.findings("DL3002"):
        evidence.append("hadolint DL3002 (last USER is root)")
    return _item("non-root", "fail" if root else "pass", evidence)


def check_vulnerabilities(f):
    if f.inventory is None:
        return _item("vulnerabilities", "n/a", ["inventory module missing"])
    pkgs, found = f.inventory
    kinds = {t: sum(p.type == t for p in pkgs) for t in ("deb", "pypi")}
    evidence = [f"inventory: {kinds['deb']} Debian packages, {kinds['pypi']} Python packages",
                f"{len(found)} known advisories in the offline list" if found
                else "no package matches the offline advisory list"]
    worst_first = sorted(found, key=lambda a: -_rank_or_0(_get(a, "severity")))
    for a in worst_first[:3]:
        evidence.append(_short(_advisory_text(a), 90))
    severity = _worst([_get(a, "severity") for a in found]) if found else None
    return _item("vulnerabilities", "fail" if found else "pass", evidence, severity)


def _inventory(client, image):
    """(packages, advisories that match them), or None without workbook.inventory."""
    try:
        from . import inventory
    except ImportError:
        return None
    pkgs = inventory.packages(client, image)
    return pkgs, inventory.advisories(pkgs)


def _secrets(client, image):
    """scan.scan_image's findings, or None without workbook.scan."""
    try:
        from . import scan
    except ImportError:
        return None
    return scan.scan_image(client, image)


def _get(obj, key):
    return obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)


def _advisory_text(a):
    parts = [_get(a, k) for k in ("id", "package", "installed", "severity")]
    return " ".join(str(p) for p in parts if p) or str(a)


def _rank_or_0(severity):
    return SEVERITIES.index(severity.lower()) if str(severity).lower() in SEVERITIES else 0


def _worst(severities):
    known = [s.lower() for s in severities if isinstance(s, str) and s.lower() in SEVERITIES]
    return max(known, key=SEVERITIES.index) if known else None


def check_secrets(f):
    findings = f.secrets
    if findings is None:
        return _item("secrets", "n/a", ["scan module missing"])
    if not findings:
        return _item("secrets", "pass", [("no secret in the config, history or any layer's "
                                          "files (deleted ones included)")])
    evidence = [f"{len(findings)} found"] + [
        _short(f"{x.kind} in {x.where}" + (f" {x.path}" if x.path else "") + f": {x.excerpt}", 90)
        for x in findings[:3]]
    return _item("secrets", "fail", evidence)


def check_resource_limits(f):
    if f.compose:
        return _limits_in_compose(f)
    if f.run_config is not None:
        rc = f.run_config
        cpu = rc.get("nano_cpus") or rc.get("cpu_quota") or rc.get("cpuset_cpus")
        mem = rc.get("mem_limit")
        evidence = [f"run config: memory {mem or 'unlimited'}, cpus "
                    + (f"{rc['nano_cpus'] / 1e9:g}" if rc.get("nano_cpus") else str(cpu or "unlimited"))]
        return _item("resource-limits", "pass" if cpu and mem else "fail", evidence)
    return _item("resource-limits", "n/a", [("no compose file or run config given: limits are "
                                             "set where the container runs, not in the image")])


def _limits_in_compose(f):
    spec = yaml.safe_load(Path(f.compose).read_text()) or {}
    services = spec.get("services") or {}
    here = f.context.resolve()
    tags = set(f.image.tags)

    def builds_this(svc):
        build = svc.get("build")
        ctx = build if isinstance(build, str) else (build or {}).get("context")
        if ctx and (Path(f.compose).parent / ctx).resolve() == here:
            return True
        return svc.get("image") in tags

    mine = {n: s for n, s in services.items() if builds_this(s or {})} or services
    evidence, bad = [], False
    for name, svc in mine.items():
        svc = svc or {}
        lim = ((svc.get("deploy") or {}).get("resources") or {}).get("limits") or {}
        cpus, mem = lim.get("cpus", svc.get("cpus")), lim.get("memory", svc.get("mem_limit"))
        bad |= not (cpus and mem)
        evidence.append(f"{name}: cpus {cpus or 'unlimited'}, memory {mem or 'unlimited'}")
    evidence.insert(0, f"{Path(f.compose).name}: {len(mine)} service(s) checked")
    return _item("resource-limits", "fail" if bad else "pass", evidence)


def check_healthcheck(f):
    hc = f.image.attrs["Config"].get("Healthcheck") or {}
    test = hc.get("Test") or []
    if not test or test[0] == "NONE":
        return _item("healthcheck", "fail", ["no HEALTHCHECK in the image"
                                             + (" (hadolint DL3057)" if f.findings("DL3057") else "")])
    command = " ".join(test[1:])
    interval = (hc.get("Interval") or 30_000_000_000) / 1e9
    evidence = [f"probe: {_short(command, 80)}",
                f"every {interval:g} s" + (" (Docker's default)" if not hc.get("Interval") else "")
                + (f": 'healthy' comes {interval:g} s after the start at the earliest"
                   if interval >= 10 else "")]
    bad = False
    if "requests.get(" in command and "raise_for_status" not in command:
        bad = True
        evidence.append("requests.get() does not raise on HTTP 4xx/5xx: the probe passes on errors")
    run = f.run
    if run is not None:
        if run.get("error"):
            bad = True
            evidence.append(f"the container did not start: {_short(run['error'], 120)}")
        elif run.get("health") == "healthy":
            evidence.append(f"probed every 1 s for this audit: healthy after {run['seconds']:g} s")
        else:
            bad = True
            probe = run.get("probe") or {}
            what = run.get("health") or run.get("status")
            evidence.append(f"probed every 1 s for this audit: {what} after {run['seconds']:g} s"
                            + (f", last probe exit {probe['exit_code']}: {_short(probe['output'], 90)}"
                               if probe else "")
                            + (f" (container {run['status']}, exit code {run['exit_code']})"
                               if run.get("status") == "exited" else ""))
    return _item("healthcheck", "fail" if bad else "pass", evidence)


def check_logging(f):
    run = f.run
    if run is None:
        return _item("logging", "n/a", ["not run (run=False)"])
    if run.get("error"):
        return _item("logging", "n/a", ["the container did not start, so it logged nothing"])
    out, err = run["stdout"], run["stderr"]
    as_json = sum(ln.lstrip().startswith("{") for ln in out + err)
    files = [p for p in run.get("written", []) if p.endswith(".log") or p.startswith("/var/log/")]
    evidence = [f"{len(out)} lines on stdout, {len(err)} on stderr in {run['seconds']:g} s"
                + (f" ({as_json} JSON)" if as_json else "")]
    if files:
        evidence.append("wrote log files inside the container: " + ", ".join(files[:3]))
    else:
        evidence.append("no log files written inside the container")
    env = dict(e.split("=", 1) for e in f.image.attrs["Config"].get("Env") or [] if "=" in e)
    if env.get("PYTHONUNBUFFERED"):
        evidence.append("PYTHONUNBUFFERED set: print() reaches the log at once")
    return _item("logging", "pass" if (out or err) and not files else "fail", evidence)


def check_documented(f):
    comments = [i for i in f.structure if i["instruction"] == "COMMENT"
                and not re.match(r"(hadolint|syntax|escape)\b", i["value"].strip())]
    instructions = [i for i in f.structure if i["instruction"] not in ("COMMENT",)]
    label_keys = [k for i in f.final.instructions if i["instruction"] == "LABEL"
                  for k in re.findall(r'([\w.-]+)=', i["value"])]
    doc = [k for k in label_keys if k in OCI_DOC]
    exposed = [i["value"] for i in f.final.instructions if i["instruction"] == "EXPOSE"]
    evidence = [f"{len(comments)} comment lines for {len(instructions)} instructions",
                "labels: " + (", ".join(label_keys[:4]) if label_keys else "none"),
                "EXPOSE " + ", ".join(exposed) if exposed else "no EXPOSE"]
    return _item("documented", "pass" if comments and doc else "fail", evidence)


CHECKS = [check_base_tags, check_layers, check_build_cache, check_multi_stage, check_dockerignore,
          check_non_root, check_vulnerabilities, check_secrets, check_resource_limits,
          check_healthcheck, check_logging, check_documented]


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
    # Three readings of `docker save` and the short run are independent: run them at once,
    # each on its own connection to the engine.
    clients = []

    def own(fn, *a):
        clients.append(engine.client())
        return pool.submit(fn, clients[-1], *a)

    with ThreadPoolExecutor(max_workers=4) as pool:
        entries = own(lambda c, ref: layers.layer_files(c, ref), img.id)
        secrets = own(_secrets, img)
        found = own(_inventory, img)
        ran = own(_short_run, img, owner, run_config, window) if run else None
        facts = Facts(dockerfile=dockerfile, context=Path(context or dockerfile.parent),
                      stages=stages, structure=parser.structure, lint=lint.hadolint(dockerfile),
                      image=img, base_layers=_base_layers(client, img, stages), compose=compose,
                      run_config=run_config, secrets=secrets.result(), inventory=found.result(),
                      run=ran.result() if ran else None, entries=entries.result())
    for c in clients:
        c.close()
    facts.files, facts.efficiency = _final_files(facts.entries), layers.efficiency(facts.entries)
    name = image if isinstance(image, str) else (img.tags[0] if img.tags else img.short_id)
    return Audit(name, str(dockerfile), [check(facts) for check in CHECKS], facts.run or {})


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
