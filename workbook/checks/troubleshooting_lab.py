"""The check of lab 06: diagnose and fix three broken containers, drawn for each learner."""

import getpass
import hashlib
import random
import re
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone

from .. import ROOT, WorkbookError, broken, compose, containers, engine, images, resources, service
from ..diagnose import CAUSES, diagnose, read
from .report import NotDone, check
from .workspace import _unfinished, lab_file, prepare_folder, project_name

VARIANTS_DIR = ROOT / "docker" / "lab06"
FIXED = "fixed (the container does its job)"
LEARNER_FILE = ".learner"  # in the lab folder: whose cases these are (the check draws them again)


@dataclass(frozen=True)
class Variant:
    """One broken case of the lab: the cause Docker's record shows, the file a fix changes."""

    cause: str
    file: str
    fix_hint: str


# docker/lab06/NAME: cases lesson 09 does not solve in its output (other paths, ports, modules,
# variables, limits, scripts). Each learner gets one of each pool, i.e. one of each place to
# look: the health check's own output, the log's last lines, how Docker says it ended.
VARIANTS = {
    "probe-path": Variant("unhealthy", "Dockerfile",
                          "the probe must call a path the service answers with 200: app.py's "
                          "routes, or `curl` it from the host (lesson 03 §2, lesson 09 §7)"),
    "probe-port": Variant("unhealthy", "Dockerfile",
                          "the probe runs inside the container: it must call the port the service "
                          "listens on there (PORT, 5000), not another (lesson 03 §2, lesson 09 §7)"),
    "probe-predict": Variant("unhealthy", "Dockerfile",
                             "a probe sends GET: call an endpoint made for it, /health, not one "
                             "that only takes POST (lesson 03 §2, lesson 09 §7)"),
    "missing-schema": Variant("missing-module", "Dockerfile",
                              "COPY every module the entry point imports into /app (lesson 03 §2)"),
    "model-file-env": Variant("missing-env", "compose.yaml",
                              "set the variable where the container is defined (`environment:`), "
                              "to a file that exists in /app/models (lesson 05 §1)"),
    "entry-module": Variant("missing-module", "Dockerfile",
                            "gunicorn's last argument names module:app; the production image's "
                            "CMD says which (`docker inspect`, lesson 03 §2)"),
    "oom-24m": Variant("oom", "compose.yaml",
                       "the limit must be above what the service uses: `docker stats` shows it "
                       "(lesson 08 measures it); both mem_limit and memswap_limit (lesson 09)"),
    "entrypoint-mode": Variant("permission-denied", "Dockerfile",
                               "a script the runtime execs needs its execute bit, or an "
                               "interpreter that runs it (lesson 09)"),
    "other-server": Variant("bad-command", "Dockerfile",
                            "start a server the image has: `docker run --rm --entrypoint sh "
                            "IMAGE -c 'ls /opt/venv/bin'` lists them (lesson 03 §2)"),
}
POOLS = (("probe-path", "probe-port", "probe-predict"),
         ("missing-schema", "model-file-env", "entry-module"),
         ("oom-24m", "entrypoint-mode", "other-server"))
CASE_NAMES = ("case1", "case2", "case3")

# Words that name each cause in a diagnosis written in the learner's own words.
CAUSE_WORDS = {
    "bad-command": [r"\bcommand\b", r"executable", r"typo", r"\b127\b", r"\bcmd\b",
                    r"not found in \$?path"],
    "missing-module": [r"module", r"\bimport", r"\.py\b", r"\bcopy\b"],
    "port-in-use": [r"\bport\b", r"allocated", r"\bbind\b"],
    "permission-denied": [r"permission", r"denied", r"chmod", r"\bowner", r"execute bit",
                          r"\b126\b"],
    "disk-full": [r"\bdisk\b", r"no space", r"\bfull\b"],
    "network": [r"network", r"\bdns\b", r"host ?name", r"connection refused", r"resolv"],
    "oom": [r"\boom", r"out of memory", r"memory", r"mem_limit", r"\b137\b"],
    "unhealthy": [r"health", r"\bprobe", r"\brequests\b"],
    "missing-env": [r"environment", r"\benv\b", r"variable", r"keyerror"],
    "model-version": [r"version", r"scikit", r"sklearn"],
    "crashed": [r"crash", r"exit code 1\b"],
}
DIAGNOSIS_HINTS = {
    "unhealthy": "the service answers, yet Docker calls it unhealthy: read the health check's "
                 "own output (`docker inspect --format '{{json .State.Health}}'`): the probe, not "
                 "the app, fails (lesson 09)",
    "missing-module": "read the container's last log lines (`docker logs`): the traceback names "
                      "what Python could not import (lesson 09)",
    "missing-env": "read the container's last log lines (`docker logs`): a KeyError names the "
                   "variable the code reads (lesson 09)",
    "oom": "no error in the log, exit code 137 = 128 + 9 (SIGKILL): `docker inspect` "
           "State.OOMKilled says who killed it (lesson 09)",
    "permission-denied": "it never ran: `docker inspect --format '{{.State.Error}}'` says why the "
                         "runtime could not start the program; exit code 126 (lesson 09)",
    "bad-command": "it never ran: `docker inspect --format '{{.State.Error}}'` names what the "
                   "runtime could not find; exit code 127 (lesson 09)",
}


def learner_id(name=""):
    """Who draws the cases: a name given, else this machine's user@host."""
    return name.strip() or f"{getpass.getuser()}@{socket.gethostname()}"


def cases_for(learner):
    """{case1..3: variant}: one of each pool, in an order of its own, the same for a learner."""
    rng = random.Random(hashlib.sha256(learner.encode()).digest())
    picked = [rng.choice(pool) for pool in POOLS]
    rng.shuffle(picked)
    return dict(zip(CASE_NAMES, picked))


def classify(text):
    """The cause a diagnosis names: a cause key as is, else the one its words point to (or None)."""
    text = (text or "").strip().lower()
    if text in CAUSES:
        return text
    scores = {cause: sum(bool(re.search(w, text)) for w in words)
              for cause, words in CAUSE_WORDS.items()}
    best = max(scores.values())
    top = [c for c, s in scores.items() if s == best]
    return top[0] if best and len(top) == 1 else None


def _case_project(client, lab, case, folder="."):
    """The Compose project of one case of the lab (the given broken copy or the learner's)."""
    if not images.exists(client, service.tag("production")):
        service.build(client, "production", log="none")
    slug = resources.slug(lab.owner)
    env = {"APP_IMAGE": service.tag("production"), "WORKBOOK_OWNER": lab.owner,
           "TAG": f"{slug}-{'given' if folder != '.' else 'yours'}",
           "PORT": resources.free_port(), "ALT_PORT": resources.free_port()}
    path = lab.path / folder / case / "compose.yaml"
    suffix = "-given" if folder != "." else ""
    return compose.Project(f"{project_name(lab.owner)}-{case}{suffix}", lab.owner, [path], env,
                           echo=False)


def _copy_case(src, dest, case):
    """A variant's broken files as the lab hands them out (see _as_given)."""
    dest.mkdir(parents=True)
    for f in sorted(src.iterdir()):
        if f.is_file() and ".fixed" not in f.name:
            (dest / f.name).write_text(_as_given(f, case))


def _as_given(path, case):
    """A file's text without the comments that name the cause, its image renamed for the case."""
    text = path.read_text()
    if path.name.startswith(("Dockerfile", "compose")):
        text = "\n".join(re.sub(r"\s+#\s.*$", "", ln) for ln in text.splitlines()
                         if not ln.lstrip().startswith("#"))
        text = re.sub(r"workbook/broken-[a-z0-9-]+:", f"workbook/lab-06-{case}:", text) + "\n"
    return text


def fixed_file(name):
    """docker/lab06/NAME's reference fix (Dockerfile.fixed or compose.fixed.yaml)."""
    file = VARIANTS[name].file
    return VARIANTS_DIR / name / ("compose.fixed.yaml" if file == "compose.yaml" else file + ".fixed")


def prepare_troubleshooting(client, number, owner, learner="", cases=None):
    """Reset the troubleshooting lab: draw the learner's three cases, a given (broken) copy of
    each in given/ and one to fix beside it. `cases` ({case: variant}) overrides the draw (tests)."""
    lab = prepare_folder(client, number, owner)
    # The learner is recorded, not the cases: their names would say what is wrong.
    (lab.path / LEARNER_FILE).write_text(
        "=" + ",".join(f"{c}:{v}" for c, v in cases.items()) if cases else learner_id(learner))
    for case, name in _recorded(lab).items():
        for folder in ("given", "."):
            _copy_case(VARIANTS_DIR / name, lab.path / folder / case, case)
    return lab


def _recorded(lab):
    """The cases of a prepared lab: drawn again for the learner its folder records, or the
    ones given explicitly ("=case1:VARIANT,...")."""
    path = lab.path / LEARNER_FILE
    if not path.exists():
        raise WorkbookError("This lab folder was not prepared: no cases drawn.",
                            "Run the Start cell (checks.prepare_troubleshooting).")
    text = path.read_text()
    if text.startswith("="):
        return dict(item.split(":", 1) for item in text[1:].split(","))
    return cases_for(text)


def _up(client, lab, folder, cases):
    """`docker compose up --detach --build` each case's project, side by side, before waiting
    on any; {case: (project, its app container or None, the last up's result)}."""
    def up(case):
        project = _case_project(client, lab, case, folder)
        for _ in range(2):  # once more if a build or network step raced another project's
            done = project("up", "--detach", "--build", "--force-recreate", check=False,
                           timeout=300)
            found = project.containers("app", client)
            if found:
                break
        return project, found[0] if found else None, done

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(zip(cases, pool.map(up, cases)))


def start_broken(client, lab):
    """Run the three given cases; return {case: its container}, once each shows its problem."""
    out = {}
    for case, (_, box, done) in _up(client, lab, "given", _recorded(lab)).items():
        if box is None:
            raise WorkbookError(f"{case} made no container: {engine.short_error(done.stderr)}",
                                "Run checks.prepare_troubleshooting again to start over.")
        out[case] = box
    for box in out.values():  # they run side by side: the waits overlap
        broken.settle(box, timeout=60)
    return out


def case_file(lab, case):
    """The file the learner fixes for a case (relative, for `%%writefile {path}`)."""
    return lab_file(lab, f"{case}/{VARIANTS[_recorded(lab)[case]].file}")


def _given_record(client, lab, case):
    """diagnose() of the given container of a case, as Docker recorded it (None: not running)."""
    found = _case_project(client, lab, case, "given").containers("app", client)
    return diagnose(found[0]).cause if found else None


@check("Lab 06 · troubleshooting three broken containers")
def troubleshooting(r, client, lab, diagnoses):
    """Each case: the diagnosis names the cause Docker recorded for the given container, and
    the learner's fix works (without removing what failed)."""
    cases = _recorded(lab)
    files = {case: lab.path / case / VARIANTS[name].file for case, name in cases.items()}
    started = [c for c in cases if (diagnoses or {}).get(c, "").strip()]
    changed = [c for c in cases if _changed(lab, c) and not (
        files[c].exists() and "# TODO" in files[c].read_text())]  # a lab cell run untouched
    if not started and not changed:
        raise NotDone("no diagnosis recorded and no case changed yet",
                      "fill in `diagnoses`, write each fix, run those cells, then this check")
    for case, name in cases.items():
        cause = VARIANTS[name].cause
        said = (diagnoses or {}).get(case, "").strip()
        got, recorded = classify(said), _given_record(client, lab, case)
        if recorded != cause:
            r.add(f"{case}: diagnosis", False,
                  "the given container is gone" if recorded is None else
                  f"the given container does not show its problem now ({recorded})",
                  "run the Start cell again (checks.start_broken), look, then diagnose")
            continue
        r.add(f"{case}: diagnosis", got == cause,
              "no diagnosis recorded" if not said else
              f"{said!r} reads as {got or 'no single cause'}", DIAGNOSIS_HINTS[cause],
              note=f"Docker's record shows {cause}")
    right = sum(r.get(f"{c}: diagnosis").passed for c in cases)
    r.figures["diagnoses right"] = f"{right} of {len(cases)}"
    ready = {}
    for case in cases:
        try:
            _unfinished(files[case])
            ready[case] = cases[case]
        except NotDone as exc:
            r.add(f"{case}: {FIXED}", False, exc.what, exc.todo)
    runs = _up(client, lab, ".", ready)
    try:
        for case, (_, box, done) in runs.items():
            hint = VARIANTS[cases[case]].fix_hint
            if box is None:
                r.add(f"{case}: {FIXED}", False,
                      f"docker compose up: {engine.short_error(done.stderr)}", hint)
                continue
            _recovered(box)
            removed = _removed(box, VARIANTS[cases[case]].cause)
            # without a health check a running container never "settles": no need to wait
            ok = broken.works(box, timeout=5 if removed else 60)
            gone = f"removed instead of repaired: {'; '.join(removed)}" if removed else ""
            r.add(f"{case}: {FIXED}", ok and not removed,
                  gone if ok else "; ".join(filter(None, ["still wrong: " + _state_line(box), gone])),
                  "a fix repairs what fails and keeps the rest: " + hint if removed else hint,
                  note="healthy, answers /health and /predict")
    finally:
        for project, _, _ in runs.values():
            project("down", "--volumes", "--remove-orphans", "--timeout", "2", check=False)
    r.criteria.sort(key=lambda c: (not c.name.endswith("diagnosis"), c.name))
    fixed = sum(c.passed for c in r.criteria if c.name.endswith(FIXED))
    r.figures["cases fixed"] = f"{fixed} of {len(cases)}"


def _recovered(container, timeout=60):
    """Wait while a running container's health check is starting or failing until a probe has
    run after the service answered /health: a probe that failed while the service was still
    loading (three cases start at once) turns healthy at its next success; one that fails
    after that is wrong."""
    answered = []

    def judged(box):  # containers.wait reloads the container before each call; stops on exit
        health = box.attrs["State"].get("Health") or {}
        if health.get("Status") in (None, "healthy"):
            return True
        if not answered and service.call(box, "/health", timeout=2)[0] == 200:
            answered.append(datetime.now(timezone.utc))
        return bool(answered) and any(containers.when(p["Start"]) > answered[0] for p in health.get("Log") or [])

    containers.wait(container, "answers", timeout=timeout, probe=judged, every=0.5, lines=0)


def _changed(lab, case):
    """True when any file of the learner's copy of a case differs from the given one."""
    mine, given = lab.path / case, lab.path / "given" / case
    names = {p.name for p in mine.iterdir()} | {p.name for p in given.iterdir()}
    return any(not (mine / n).exists() or not (given / n).exists()
               or (mine / n).read_bytes() != (given / n).read_bytes()
               or (mine / n).stat().st_mode != (given / n).stat().st_mode for n in names)


def _removed(container, cause):
    """What a "fix" took away instead of repairing: the health check, the published port the
    check calls /predict through, or (for the memory case) the memory limit itself."""
    test = (container.attrs["Config"].get("Healthcheck") or {}).get("Test") or ["NONE"]
    gone = ["the health check (repair the probe, keep it)"] if test[0] == "NONE" else []
    if not (container.attrs["HostConfig"].get("PortBindings") or {}).get(service.PORT):  # as configured
        gone.append('the published port (keep ports: ["127.0.0.1::5000"]: the check calls /predict)')
    if cause == "oom" and not container.attrs["HostConfig"].get("Memory"):
        gone.append("the memory limit (raise mem_limit and memswap_limit, do not delete them)")
    return gone


def _state_line(container):
    """A short account of a container: status, exit code, OOM, health and its last probe."""
    st = read(container, lines=2)
    probe = st.probe or {}
    said = (probe.get("Output") or "").strip().splitlines()[-1:]
    bits = [st.status, f"exit code {st.exit_code}" if st.status == "exited" else "",
            "OOMKilled" if st.oom_killed else "", f"health {st.health}" if st.health else "",
            f"last probe: {said[0][:120]}" if said and probe.get("ExitCode") else "",
            (" | ".join(st.logs))[-160:] if st.status == "exited" else ""]
    return ", ".join(b for b in bits if b)
