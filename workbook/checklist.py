"""The Best Practices Checklist's items: the verdict of each, and the evidence it rests on."""

import json
import math
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from docker.utils.build import exclude_paths

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
            evidence.append(f"{label}: line {_line(whole)} `{shorten(whole['content'], 30)}` comes before "
                            f"line {_line(late[0])} `{shorten(late[0]['content'], 40)}`: "
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
    pkgs, found = f.inventory
    kinds = {t: sum(p.type == t for p in pkgs) for t in ("deb", "pypi")}
    # An advisory with no fixed version leaves nothing to update to: it is named, not failed
    # (what `trivy --ignore-unfixed` hides); one with a fix fails the item.
    fixable = [a for a in found if _get(a, "fixed")]
    evidence = [f"inventory: {kinds['deb']} Debian packages, {kinds['pypi']} Python packages",
                f"{len(fixable)} known advisories with a fix in the offline list" if fixable
                else "no package matches the offline advisory list" if not found
                else "no advisory with a fix matches the offline advisory list"]
    worst_first = sorted(fixable, key=lambda a: -_rank_or_0(_get(a, "severity")))
    for a in worst_first[:3]:
        evidence.append(shorten(_advisory_text(a), 90))
    for a in found:
        if not _get(a, "fixed"):
            evidence.append(shorten(f"no fix exists, accepted: {_advisory_text(a)}", 90))
    severity = _worst([_get(a, "severity") for a in fixable]) if fixable else None
    return _item("vulnerabilities", "fail" if fixable else "pass", evidence, severity)




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
    if not findings:
        return _item("secrets", "pass", [("no secret in the config, history or any layer's "
                                          "files (deleted ones included)")])
    evidence = [f"{len(findings)} found"] + [
        shorten(f"{x.kind} in {x.where}" + (f" {x.path}" if x.path else "") + f": {x.excerpt}", 90)
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
    evidence = [f"probe: {shorten(command, 80)}",
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
            evidence.append(f"the container did not start: {shorten(run['error'], 120)}")
        elif run.get("health") == "healthy":
            evidence.append(f"probed every 1 s for this audit: healthy after {run['seconds']:g} s")
        else:
            bad = True
            probe = run.get("probe") or {}
            what = run.get("health") or run.get("status")
            evidence.append(f"probed every 1 s for this audit: {what} after {run['seconds']:g} s"
                            + (f", last probe exit {probe['exit_code']}: {shorten(probe['output'], 90)}"
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



# ---------------------------------------------------------------- helpers

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


def shorten(text, n=70):
    text = " ".join(text.split())
    return text if len(text) <= n else text[:n - 3] + "..."



def _size(n):
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000

