"""Lesson 10's exercises: a probe that needs nothing extra, the --user install fixed, the first probe measured."""

from docker.errors import DockerException

from .. import resources, service
from ..containers import when
from .image_labs import wait_health
from .learner_image import (NotStarted, cleanup_containers, healthy, labelled, learner_container,
                            learner_image, run_service, running, why_no_answer)
from .report import Stop, check, given
from .workspace import Lab

EX_IMAGE = "workbook/ex10:{owner}"  # exercise 10.2's image


def _probe_hint(said):
    """What a failing probe's own output says to change."""
    if "No module named" in said:
        return ("the image has only what requirements.txt installs: ask with the standard library "
                "(python -c \"import urllib.request; urllib.request.urlopen('http://localhost:5000/health')\") "
                "(lesson 10 §2)")
    if "not found" in said:
        return "python-slim has no curl or wget: ask with Python's urllib instead (lesson 10 §2)"
    return "the probe runs inside the container: ask http://localhost:5000/health there (lesson 10 §2)"


def _fails_alone(client, owner, image, test):
    """(exit code, output) of the health check's command in a container of `image` where no service runs."""
    command = ["sh", "-c", test[1]] if test[0] == "CMD-SHELL" else test[1:]
    box = client.containers.create(image, command, entrypoint=[], labels=resources.labels(owner),
                                   name=resources.unique_name(owner, "probe"))
    try:
        box.start()
        code = box.wait(timeout=30)["StatusCode"]
        return code, box.logs().decode(errors="replace").strip()
    except DockerException as exc:  # the command is not in the image: it fails, too
        return 127, getattr(exc, "explanation", None) or str(exc)
    finally:
        box.remove(force=True)


@check("Exercise 10.1 · a probe that needs nothing extra")
def probe(r, client, owner):
    """`{owner}-probe` runs example 1's image with a health check of the learner's: healthy, and honest."""
    box = learner_container(client, f"{owner}-probe")
    labelled(r, box, owner, "lesson 10")
    running(r, box, "docker logs NAME says why it stopped; run it with -d (lesson 10 §1)")
    test = (box.attrs["Config"].get("Healthcheck") or {}).get("Test") or []
    if not r.add("it has a health check", bool(test) and test[0] != "NONE",
                 "docker inspect shows no Healthcheck" if not test else "the health check is NONE",
                 "give docker run --health-cmd \"...\" and --health-interval 2s (lesson 10 §2)"):
        raise Stop()
    status, said = wait_health(box, timeout=40)  # ends early once it is unhealthy
    probed = bool(box.attrs["State"]["Health"].get("Log"))
    r.add("Docker reports it healthy", status == "healthy",
          f"its health is {status!r}" + (f"; the last probe said: {said}" if probed else " (no probe has run yet)"),
          _probe_hint(said) if probed else "--health-interval 2s: the first probe runs one interval "
          "after the start, 30 s by default (lesson 10 §2)")
    code, out = _fails_alone(client, owner, box.image.id, test)
    r.add("the probe fails when the service does not answer", code != 0,
          f"with no service in the container the probe still exited 0{': ' + out if out else ''}",
          "a probe that always succeeds says nothing: request /health, so that no answer (or an "
          "error status) makes the command fail (lesson 10 §2, errata item 6)")


@check("Exercise 10.2 · keep --user, and still start")
def user_install(r, client, owner):
    """workbook/ex10:{owner}: example 3 with pip install --user kept, serving as a non-root user."""
    image = learner_image(client, EX_IMAGE.format(owner=owner),
                          "write the Dockerfile, then run the cell's docker build")
    labelled(r, image, owner, "lesson 10", subject="the image")
    lab = Lab("10", owner, None, image.tags[0])
    try:
        try:
            box = run_service(client, lab, image)
        except NotStarted as exc:
            r.add("it starts", False, str(exc), why_no_answer(None, str(exc))
                  if "executable file not found" not in str(exc) else
                  "appuser cannot read /root, so neither gunicorn nor the packages there can be used: "
                  "copy /root/.local to appuser's own home (--chown) and put its bin/ on the PATH "
                  "(lesson 10 §3)")
            raise Stop() from None
        r.add("it starts", True)
        port = resources.host_port(box, service.PORT)
        if not r.add("it answers GET /health", healthy(port, timeout=60), f"no answer on 127.0.0.1:{port}",
                     why_no_answer(box, box.logs(tail=20).decode(errors="replace"))):
            raise Stop()
        _, status = box.exec_run(["cat", "/proc/1/status"])
        uid = next((ln.split()[1] for ln in status.decode().splitlines() if ln.startswith("Uid:")), "?")
        r.add("its main process runs as a non-root user", uid not in ("0", "?"),
              f"PID 1 runs as uid {uid}",
              "keep USER appuser: running as root hides the mistake instead of fixing it (lesson 10 §3)")
    finally:
        cleanup_containers(client, lab)


@check("Exercise 10.3 · when does the first probe run?")
def first_probe(r, client, owner, first_probe_after, start_period_brings_it_forward):
    """`{owner}-first` has a 5 s interval and a 30 s start period; the learner measured its first probe."""
    box = learner_container(client, f"{owner}-first")
    labelled(r, box, owner, "lesson 10")
    health = box.attrs["Config"].get("Healthcheck") or {}
    interval, period = health.get("Interval", 0) / 1e9, health.get("StartPeriod", 0) / 1e9
    r.add("its health check probes every 5 s after a 30 s start period", (interval, period) == (5, 30),
          f"interval {interval:g} s, start period {period:g} s",
          "--health-interval 5s --health-start-period 30s on the docker run line (lesson 10 §5, item 7)")
    given("measure it, then set both", first_probe_after=first_probe_after,
          start_period_brings_it_forward=start_period_brings_it_forward)
    log = (box.attrs["State"].get("Health") or {}).get("Log") or []
    if not r.add("it has been probed", bool(log), "no probe has run yet",
                 "wait one interval after the start, then run this check again (lesson 10 §5)"):
        raise Stop()
    truth = (when(log[0]["Start"]) - when(box.attrs["State"]["StartedAt"])).total_seconds()
    try:
        said = float(str(first_probe_after).split()[0])
    except (ValueError, IndexError):
        said = None
    r.add("`first_probe_after` is when Docker ran the first probe, in seconds after the start",
          said is not None and abs(said - truth) <= 1, f"first_probe_after is {first_probe_after!r}",
          "docker inspect --format '{{json .State}}' NAME: the first Health.Log entry's Start minus "
          "StartedAt (lesson 10 §5, item 7)")
    r.add("`start_period_brings_it_forward` is what the measurement says",
          str(start_period_brings_it_forward).strip().lower() == "false",
          f"start_period_brings_it_forward is {start_period_brings_it_forward!r}",
          "the first probe came one interval after the start, not at once: a start period only forgives "
          "failures, it does not probe earlier (lesson 10 §5, item 7)")
