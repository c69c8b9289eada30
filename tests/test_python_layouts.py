"""Common ways to install the service in a slim image all serve; --user as non-root fails."""

import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from docker.errors import APIError

from workbook import BUILD, bases, containers, engine, images, resources, service

OWNER = "test_python_layouts"
REPO = "workbook/python-layouts"
OFFICIAL = {bases.BASES[k].build_arg: bases.BASES[k].official for k in bases.PYTHON_FAMILY}

HEAD = """\
ARG PYTHON_BUILD_IMAGE=python:3.11
ARG PYTHON_IMAGE=python:3.11-slim
"""
# Every builder starts like the ladder's, and the venv pattern's RUN is the ladder's own
# (docker/app/Dockerfile): the classic builder reuses those layers across patterns.
BUILDER = HEAD + """\
FROM ${PYTHON_BUILD_IMAGE} AS builder
COPY requirements.txt /build/
COPY wheels/ /build/wheels/
"""
VENV = """\
RUN python -m venv /opt/venv \\
 && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links=/build/wheels \\
      -r /build/requirements.txt
"""
# Every final stage starts the same (cached once for all), then gets the packages its way.
FINAL = """\
FROM ${PYTHON_IMAGE}
RUN useradd --uid 1000 app
WORKDIR /app
COPY app.py gunicorn.conf.py ./
COPY models/ models/
"""
GUNICORN = 'CMD ["gunicorn", "--config", "gunicorn.conf.py", "app:create_app()"]\n'


def pip(option=""):
    """RUN pip install (with `option`) of the requirements, offline from the staged wheels."""
    return (f"RUN pip install {option}--no-cache-dir --no-index --find-links=/build/wheels "
            "-r /build/requirements.txt\n")


USER_INSTALL = BUILDER + pip("--user ") + FINAL + """\
COPY --from=builder /root/.local /root/.local
ENV PATH=/root/.local/bin:$PATH
"""
PATTERNS = {
    "venv": BUILDER + VENV + FINAL + """\
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
USER 1000
""" + GUNICORN,
    "user-as-root": USER_INSTALL + GUNICORN,
    "prefix": BUILDER + pip("--prefix=/install ") + FINAL + """\
COPY --from=builder /install /usr/local
USER 1000
""" + GUNICORN,
    "site-packages": BUILDER + pip() + FINAL + """\
COPY --from=builder /usr/local/lib/python3.11/site-packages /usr/local/lib/python3.11/site-packages
COPY --from=builder /usr/local/bin/gunicorn /usr/local/bin/gunicorn
USER 1000
""" + GUNICORN,
    "single-stage": HEAD + """\
FROM ${PYTHON_IMAGE}
RUN useradd --uid 1000 app
WORKDIR /app
COPY requirements.txt /build/
COPY wheels/ /build/wheels/
""" + pip() + """\
COPY app.py gunicorn.conf.py ./
COPY models/ models/
USER 1000
""" + GUNICORN,
    # The tutorial's "production" Dockerfile: /root/.local is unreadable once USER is not root.
    "user-as-non-root": USER_INSTALL + "USER 1000\n" + GUNICORN,
}
BROKEN = "user-as-non-root"
SERVING = [p for p in PATTERNS if p != BROKEN]


@pytest.fixture(scope="module", params=["resolved", "official"])
def layouts(request, client):
    """Each pattern's image (or its BuildFailed) on one set of bases; all removed at the end."""
    args = bases.build_args(client)
    if request.param == "official":
        missing = [ref for ref in OFFICIAL.values() if not images.exists(client, ref)]
        if missing:
            pytest.skip(f"{' and '.join(missing)} not present locally (no registry to pull "
                        "from): only the resolved bases are tested")
        if all(args[k] == v for k, v in OFFICIAL.items()):
            pytest.skip("the resolved bases are the official images: tested as 'resolved'")
        args.update(OFFICIAL)
    BUILD.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="python-layouts-", dir=BUILD) as tmp:
        context = service.copy_context(Path(tmp) / "app")  # the app, its model and wheels
        for pattern, text in PATTERNS.items():
            (context / f"Dockerfile.{pattern}").write_text(text)

        def build(pattern):
            own = engine.client()  # one connection per build running at the same time
            try:
                return images.build(own, context, f"{REPO}:{request.param}-{pattern}", OWNER,
                                    dockerfile=f"Dockerfile.{pattern}", buildargs=args, log="none")
            except images.BuildFailed as exc:
                return exc
            finally:
                own.close()

        try:
            # Two builds at a time (each pip install keeps one core busy); the non-root variant
            # after the others: all of it from user-as-root's cache.
            with ThreadPoolExecutor(max_workers=2) as pool:
                built = dict(zip(SERVING, pool.map(build, SERVING)))
            built[BROKEN] = build(BROKEN)
            yield built
        finally:
            resources.cleanup(client, OWNER)


def image(layouts, pattern):
    """The pattern's image; its build error as the test's failure."""
    if isinstance(layouts[pattern], images.BuildFailed):
        pytest.fail(str(layouts[pattern]))
    return layouts[pattern]


def start(client, img):
    """Run the image with its port on 127.0.0.1: (container, how the wait for /health ended)."""
    try:
        c = service.run(client, img.id, OWNER)
    except APIError as exc:  # its command cannot even start
        return None, exc.explanation
    return c, containers.wait(c, "answers", timeout=60,
                              probe=lambda c: service.call(c, "/health", timeout=2)[0] == 200)


@pytest.mark.parametrize("pattern", SERVING)
def test_pattern_serves_the_model(client, layouts, pattern):
    c, waited = start(client, image(layouts, pattern))
    try:
        assert c and waited.reached, waited
        labels, _ = service.predictions(c)  # POST /predict with the known flowers
        assert labels == [want for _, want in service.SAMPLES]
        assert containers.first_uid(c) == (0 if pattern == "user-as-root" else 1000)  # PID 1's
    finally:
        if c:
            c.remove(force=True, v=True)


def test_user_install_fails_for_a_non_root_user(client, layouts):
    c, waited = start(client, image(layouts, BROKEN))
    try:
        assert c is None or not waited.reached, "gunicorn served from /root/.local as uid 1000"
        said = waited if c is None else "\n".join(waited.logs)  # Docker's reason, or the log
        assert "executable file not found" in said or "Permission denied" in said, said
    finally:
        if c:
            c.remove(force=True, v=True)
