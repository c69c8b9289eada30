"""The check of lab 06: diagnose and fix three broken containers."""

import re

from .. import WorkbookError, broken, compose, engine, images, resources, service
from ..diagnose import CAUSES, read
from .report import NotDone, check
from .workspace import _unfinished, lab_file, prepare_folder, project_name


# The lab's three cases, named so that neither the folder nor the container gives the cause
# away: case -> the docker/broken scenario it copies (broken.SCENARIOS).
CASES = {"case1": "unhealthy", "case2": "missing-module", "case3": "oom"}
FIXED = "fixed (the container does its job)"
CASE_FILES = {"unhealthy": "Dockerfile", "missing-module": "Dockerfile", "oom": "compose.yaml"}
# Words that name each cause in a diagnosis written in the learner's own words.
CAUSE_WORDS = {
    "bad-command": [r"\bcommand\b", r"executable", r"typo", r"\b127\b", r"\bcmd\b"],
    "missing-module": [r"module", r"\bimport", r"features\.py", r"\bcopy\b"],
    "port-in-use": [r"\bport\b", r"allocated", r"\bbind\b"],
    "permission-denied": [r"permission", r"denied", r"chmod", r"\bowner"],
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
    "oom": "no error in the log, exit code 137 = 128 + 9 (SIGKILL): `docker inspect` "
           "State.OOMKilled says who killed it (lesson 09)",
}
FIX_HINTS = {
    "unhealthy": "the probe may only use what the image has: the production Dockerfile's "
                 "HEALTHCHECK uses python's urllib (lesson 04 §6, lesson 09)",
    "missing-module": "COPY every module the entry point imports into /app (lesson 03 §2, "
                      "lesson 09)",
    "oom": "the limit must be above what the service uses: `docker stats` shows it (lesson 08 "
           "measures it); both mem_limit and memswap_limit (lesson 09)",
}


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
    """A scenario's broken files without the comments that name the cause, images renamed."""
    dest.mkdir(parents=True)
    for f in src.iterdir():
        if f.is_dir() or ".fixed" in f.name:
            continue
        text = f.read_text()
        if f.name in ("Dockerfile", "compose.yaml"):
            text = "\n".join(re.sub(r"\s+#\s.*$", "", ln) for ln in text.splitlines()
                             if not ln.lstrip().startswith("#"))
            text = re.sub(r"workbook/broken-[a-z-]+:", f"workbook/lab-06-{case}:", text) + "\n"
        (dest / f.name).write_text(text)


def prepare_troubleshooting(client, number, owner):
    """Reset the troubleshooting lab: a given (broken) copy of each case and one to fix."""
    lab = prepare_folder(client, number, owner)
    for case, name in CASES.items():
        for folder in ("given", "."):
            _copy_case(broken.folder(name), lab.path / folder / case, case)
    for case in CASES:  # the learner rewrites these files; they start without them
        (lab.path / case / CASE_FILES[CASES[case]]).unlink()
    return lab


def start_broken(client, lab):
    """Run the three given cases; return {case: its container}, once each shows its problem."""
    out = {}
    for case in CASES:
        project = _case_project(client, lab, case, "given")
        for _ in range(2):  # once more if a build or network step raced another project's
            done = project("up", "--detach", "--build", "--force-recreate", check=False,
                           timeout=300)
            found = project.containers("app", client)
            if found:
                break
        else:
            raise WorkbookError(f"{case} made no container: {engine.short_error(done.stderr)}",
                                "Run checks.prepare_troubleshooting again to start over.")
        out[case] = broken.settle(found[0], timeout=60)
    return out


def case_file(lab, case):
    """The file the learner writes for a case (relative, for `%%writefile {path}`)."""
    return lab_file(lab, f"{case}/{CASE_FILES[CASES[case]]}")


@check("Lab 06 · troubleshooting three broken containers")
def troubleshooting(r, client, lab, diagnoses):
    """Each case: the recorded diagnosis names its cause, and the learner's fix works."""
    files = {case: lab.path / case / CASE_FILES[name] for case, name in CASES.items()}
    started = [c for c in CASES if (diagnoses or {}).get(c, "").strip()]
    written = [c for c, f in files.items() if f.exists() and "# TODO" not in f.read_text()]
    if not started and not written:
        raise NotDone("no diagnosis recorded and no fix written yet",
                      "fill in `diagnoses`, write each fix, run those cells, then this check")
    for case, name in CASES.items():
        said = (diagnoses or {}).get(case, "").strip()
        got = classify(said)
        r.add(f"{case}: diagnosis", got == name,
              "no diagnosis recorded" if not said else
              f"{said!r} reads as {got or 'no single cause'}", DIAGNOSIS_HINTS[name],
              note=f"{name}: {broken.SCENARIOS[name].title}")
    right = sum(r.get(f"{c}: diagnosis").passed for c in CASES)
    r.figures["diagnoses right"] = f"{right} of {len(CASES)}"
    for case, name in CASES.items():
        try:
            _unfinished(files[case])
        except NotDone as exc:
            r.add(f"{case}: {FIXED}", False, exc.what, exc.todo)
            continue
        project = _case_project(client, lab, case)
        try:
            done = project("up", "--detach", "--build", "--force-recreate", check=False,
                           timeout=300)
            found = project.containers("app", client)
            if not found:
                r.add(f"{case}: {FIXED}", False,
                      f"docker compose up: {engine.short_error(done.stderr)}", FIX_HINTS[name])
                continue
            box = found[0]
            ok = broken.works(box, timeout=60)
            removed = _removed(box, name)
            gone = f"removed instead of repaired: {'; '.join(removed)}" if removed else ""
            r.add(f"{case}: {FIXED}", ok and not removed,
                  gone if ok else "; ".join(filter(None, ["still wrong: " + _state_line(box), gone])),
                  "a fix repairs what fails and keeps the rest: " + FIX_HINTS[name] if removed
                  else FIX_HINTS[name], note="healthy, answers /health and /predict")
        finally:
            project("down", "--volumes", "--remove-orphans", "--timeout", "2", check=False)
    fixed = sum(c.passed for c in r.criteria if c.name.endswith(FIXED))
    r.figures["cases fixed"] = f"{fixed} of {len(CASES)}"


def _removed(container, name):
    """What a "fix" took away instead of repairing: the health check, the published port the
    check calls /predict through, or (for the memory case) the memory limit itself."""
    test = (container.attrs["Config"].get("Healthcheck") or {}).get("Test") or ["NONE"]
    gone = ["the health check (repair the probe, keep it)"] if test[0] == "NONE" else []
    if not (container.attrs["HostConfig"].get("PortBindings") or {}).get(service.PORT):  # as configured
        gone.append('the published port (keep ports: ["127.0.0.1::5000"]: the check calls /predict)')
    if name == "oom" and not container.attrs["HostConfig"].get("Memory"):
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
