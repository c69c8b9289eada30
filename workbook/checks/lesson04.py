"""Lesson 04's exercises: a compiler kept in the builder stage, a .dockerignore, a non-root USER."""

import shutil

from docker.errors import DockerException

from .. import bases, engine, resources, service
from .learner_image import built_on, inside, labelled, learner_container, learner_image, running
from .report import NotDone, Stop, check

SLIM, FULL = "workbook/python:3.11-slim", "workbook/python:3.11"
HELLO = "hello from a builder stage"
PROJECT_DOCKERFILE = f"""FROM {SLIM}
WORKDIR /app
COPY . .
CMD ["ls", "-A", "/app"]
"""


def exercise_files(folder, client=None):
    """Make the exercises' folders under `folder` (a learner's own Dockerfiles are kept); return it."""
    bases.standin_names(client or engine.client(), ("python-slim", "python"))  # SLIM and FULL
    (folder / "multistage").mkdir(parents=True, exist_ok=True)
    (folder / "multistage" / "hello.c").write_text(
        '#include <stdio.h>\n\nint main(void) {\n    puts("' + HELLO + '");\n    return 0;\n}\n')
    project = folder / "project"
    (project / "models").mkdir(parents=True, exist_ok=True)
    for name in ("app.py", "gunicorn.conf.py", "requirements.txt"):
        shutil.copy(service.APP / name, project / name)
    shutil.copy(service.ensure_model(), project / "models" / "model.skops")  # trained once, if it is not yet
    (project / "Dockerfile").write_text(PROJECT_DOCKERFILE)
    (project / "data").mkdir(exist_ok=True)
    (project / "data" / "train.csv").write_bytes(b"5.1,3.5,1.4,0.2,setosa\n" * 200_000)  # 4.6 MB
    (project / ".git" / "objects" / "pack").mkdir(parents=True, exist_ok=True)
    (project / ".git" / "objects" / "pack" / "pack-1.pack").write_bytes(bytes(2_000_000))
    (project / "__pycache__").mkdir(exist_ok=True)
    (project / "__pycache__" / "app.cpython-311.pyc").write_bytes(bytes(30_000))
    (folder / "nonroot").mkdir(exist_ok=True)
    return folder


@check("Exercise 04.1 · keep the compiler in the builder stage")
def builder_stage(r, client, owner, tag):
    """The image prints HELLO by default, is built on the slim base and has no C compiler."""
    image = learner_image(client, tag)
    labelled(r, image, owner, "lesson 04")
    out = _run(client, owner, image.id)
    r.add("it prints the program's greeting when run", out.endswith(HELLO),
          f"docker run printed {out[-120:]!r}",
          "COPY --from=builder the compiled program into the final stage and make it the CMD "
          "(lesson 04 §4)")
    slim, full = client.images.get(SLIM), client.images.get(FULL)
    on_full = built_on(image, full)  # the full base is the slim one plus more layers
    r.add(f"its final stage is FROM {SLIM}", built_on(image, slim) and not on_full,
          f"it is built on {FULL}" if on_full else "its first layers are not the slim base's",
          f"the last FROM is the final image: FROM {SLIM} (lesson 04 §4)")
    found = _run(client, owner, image.id, "command -v gcc cc || true")
    r.add("no C compiler in it", not found, f"found {found.split()}",
          f"compile in a stage FROM {FULL} and copy only the program out of it (lesson 04 §4)")


def _run(client, owner, image, script=None):
    """What a throwaway container of `image` prints: its default command, or `sh -c script`
    (whatever ENTRYPOINT the learner set)."""
    kw = {"entrypoint": ["sh", "-c"], "command": [script]} if script else {}
    try:
        return client.containers.run(image, remove=True, labels=resources.labels(owner), **kw
                                     ).decode(errors="replace").strip()
    except DockerException as exc:  # a learner's image may not start at all: that is a finding
        return f"(it failed: {str(exc)[-160:]})"


@check("Exercise 04.2 · a .dockerignore for an ML project")
def ignored(r, client, owner, tag, project):
    """Built from `project` with the learner's .dockerignore: code and model in, data, .git, caches out."""
    ignore = project / ".dockerignore"
    patterns = [ln for ln in ignore.read_text().splitlines()
                if ln.strip() and not ln.lstrip().startswith("#")] if ignore.exists() else []
    if not patterns:
        raise NotDone(f"{ignore.name} has no patterns yet", "write it, then run your docker build")
    image = learner_image(client, tag)
    labelled(r, image, owner, "lesson 04")
    files = set(_run(client, owner, image.id, "find /app -mindepth 1").split())
    for path, why in (("/app/app.py", "the code"), ("/app/models/model.skops", "the model")):
        r.add(f"{path} is in the image ({why})", path in files, f"{path} is missing",
              "a pattern that matches a folder leaves out all of it; a later `!PATTERN` line takes a "
              "match back (lesson 04 §5)")
    for path in ("/app/data", "/app/.git", "/app/__pycache__"):
        r.add(f"{path} is not", path not in files, f"{path} is in the image",
              "one pattern per line, relative to the context: data/, .git, __pycache__ (lesson 04 §5)")


@check("Exercise 04.3 · an image that runs as a user")
def non_root(r, client, owner, tag):
    """A running container of the learner's image: PID 1 not uid 0, a named user, set by the image."""
    image = learner_image(client, tag)
    c = learner_container(client, f"{owner}-nonroot")
    running(r, c, "docker run -d ... with a CMD that keeps running, e.g. sleep 3600 (lesson 02 §4)")
    labelled(r, c, owner, "lesson 04")
    if not r.add(f"it runs {tag}", c.image.id == image.id, f"it runs {c.image.tags or c.image.short_id}",
                 "rebuild, then remove the old container and run the new image"):
        raise Stop()
    _, status = inside(c, "cat /proc/1/status")
    uid = next((ln.split()[1] for ln in status.splitlines() if ln.startswith("Uid:")), "?")
    r.add("PID 1 runs as a uid other than 0", uid not in ("0", "?"), f"PID 1's uid is {uid}",
          "USER NAME in the Dockerfile: every process of the container starts as that user (lesson 04 §6)")
    code, entry = inside(c, f"getent passwd {uid}")
    r.add("that uid is a user with a name", code == 0 and entry, f"no line for uid {uid} in /etc/passwd",
          "create the user in the image (useradd --system --uid 10001 app), then USER app (lesson 04 §6)")
    user = image.attrs["Config"].get("User") or ""
    r.add("the image itself says which user (USER)", user not in ("", "0", "root") and not user.startswith("0:"),
          f"the image's User is {user or 'not set (root)'}",
          "docker run --user changes one container; USER in the Dockerfile changes every one (lesson 04 §6)")
