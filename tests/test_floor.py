"""The traced image (workbook/floor.py, docker/app/Dockerfile.traced) and its copy script.

Host tests run docker/app/copy-traced.py on a small tree in tmp_path and the tracer on this
Python. Engine tests build workbook/app:traced and workbook/app:onnx-traced (owner ladder,
kept like the ladder) and, from the narrower probe suite, workbook/app:traced-narrow (owner
tests-floor, removed at the end of the module).
"""

import importlib.util
import os
import py_compile
import stat
import subprocess
import sys

import pytest

from workbook import badinput, floor, footprint, resources, service

OWNER = "tests-floor"
SCRIPT = service.APP / floor.SCRIPT
NUL_BODY = "garbage_8"  # ten NUL bytes: json guesses UTF-32-BE, a codec only this body loads


# --- host: the copy script, the probes, the tracer -------------------------------------------

@pytest.fixture
def tree(tmp_path):
    """A small root: merged /usr, SONAME and venv symlinks, bytecode, /tmp, a home."""
    src = tmp_path / "src"
    (src / "usr" / "lib").mkdir(parents=True)
    (src / "usr" / "lib" / "libz.so.1.2.13").write_bytes(b"zlib")
    os.symlink("libz.so.1.2.13", src / "usr" / "lib" / "libz.so.1")
    os.symlink("usr/lib", src / "lib")
    (src / "usr" / "bin").mkdir()
    (src / "usr" / "bin" / "python3.11").write_bytes(b"ELF")
    os.chmod(src / "usr" / "bin" / "python3.11", 0o755)
    os.symlink("python3.11", src / "usr" / "bin" / "python")
    (src / "venv" / "bin").mkdir(parents=True)
    os.symlink(src / "usr" / "bin" / "python", src / "venv" / "bin" / "python")  # absolute
    (src / "pkg").mkdir()
    for name in ("mod", "read"):
        (src / "pkg" / f"{name}.py").write_text(f"X = {name!r}\n")
        py_compile.compile(src / "pkg" / f"{name}.py")
    (src / "tmp").mkdir()
    os.chmod(src / "tmp", 0o1777)
    (src / "tmp" / "junk").write_text("not copied")
    (src / "home" / "me").mkdir(parents=True)
    os.chmod(src / "home" / "me", 0o700)
    return src


def copied(tree, tmp_path):
    """Run copy-traced.py on `tree` as a Dockerfile.traced build would; the copy of the tree."""
    def bytecode(name):
        return importlib.util.cache_from_source(str(tree / "pkg" / f"{name}.py"))
    listing = [tree / "lib" / "libz.so.1", tree / "venv" / "bin" / "python", bytecode("mod"),
               bytecode("read"), tree / "pkg" / "read.py", tree / "home" / "me" / ".cache" / "db"]
    (tmp_path / "list.txt").write_text("".join(f"{p}\n" for p in listing))
    extra = [tree / "tmp", tree / "usr" / "li*" / "libz.so.1"]  # a folder, a glob
    subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "list.txt"),
                    str(tmp_path / "floor"), *map(str, extra)], check=True, capture_output=True)
    return tmp_path / "floor" / str(tree).lstrip("/")


def test_the_copy_keeps_every_symlink_on_the_way(tree, tmp_path):
    root = copied(tree, tmp_path)
    assert os.readlink(root / "lib") == "usr/lib"
    assert os.readlink(root / "usr" / "lib" / "libz.so.1") == "libz.so.1.2.13"
    assert (root / "lib" / "libz.so.1").read_bytes() == b"zlib"
    assert os.readlink(root / "venv" / "bin" / "python") == str(tree / "usr" / "bin" / "python")
    assert os.readlink(root / "usr" / "bin" / "python") == "python3.11"
    assert stat.S_IMODE(os.stat(root / "usr" / "bin" / "python3.11").st_mode) == 0o755


def test_the_copy_makes_folders_with_their_modes(tree, tmp_path):
    root = copied(tree, tmp_path)
    assert stat.S_IMODE(os.stat(root / "tmp").st_mode) == 0o1777 and not os.listdir(root / "tmp")
    # A file the service made at run time: only its folders that are in the image.
    assert stat.S_IMODE(os.stat(root / "home" / "me").st_mode) == 0o700
    assert not os.listdir(root / "home" / "me")


def test_bytecode_without_its_source_is_imported_sourceless(tree, tmp_path):
    root = copied(tree, tmp_path)
    pkg = root / "pkg"
    assert sorted(os.listdir(pkg)) == ["__pycache__", "mod.pyc", "read.py"]  # read.py was read
    out = subprocess.run([sys.executable, "-c", "import mod, read; print(mod.X, read.X)"],
                         cwd=pkg, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}).stdout
    assert out.split() == ["mod", "read"]


def test_a_missing_plain_path_fails_the_copy(tmp_path):
    (tmp_path / "list.txt").write_text("")
    run = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "list.txt"),
                          str(tmp_path / "floor"), str(tmp_path / "nothing"), "/no-such*"],
                         capture_output=True, text=True)
    assert run.returncode and "nothing: no such file" in run.stderr


def test_the_tracer_logs_startup_and_extension_modules(tmp_path):
    log = tmp_path / "trace.log"
    env = {**os.environ, "PYTHONPATH": str(footprint.TRACER), "WB_TRACE_OUT": str(log)}
    subprocess.run([sys.executable, "-c", "import _json"], env=env, check=True)
    lines = log.read_text().split()
    assert sys.executable in lines  # before the hook
    assert any("/encodings/" in p for p in lines)  # imported before the hook too
    assert any("_json" in p and p.endswith(".so") for p in lines)  # at exit


def test_probes_and_the_narrow_suite():
    assert list(floor.PROBES)[0] == "health" and list(floor.PROBES)[-1] == "health check"
    assert set(floor.PROBES) - set(floor.NARROW) == {"bad input"}
    assert list(floor.NARROW) == [name for name in floor.PROBES if name in floor.NARROW]


def test_bad_cases_and_random_flowers():
    assert [f"garbage_{i}" for i in range(10)] <= list(badinput.CASES)
    assert len(badinput.CASES["over_size_limit"]) > badinput.MAX_BODY_BYTES
    assert badinput.CASES[NUL_BODY] == b"\x00" * 10
    flowers = floor.records(50, seed=3)
    assert flowers == floor.records(50, seed=3) != floor.records(50, seed=4)
    assert all(list(f) == list(badinput.SETOSA) and all(0 <= v <= 10 for v in f.values())
               for f in flowers)


def test_traced_tags():
    assert floor.traced_tag(service.tag("production")) == "workbook/app:traced"
    assert floor.traced_tag("workbook/app:onnx") == "workbook/app:onnx-traced"


# --- engine: the images -------------------------------------------------------------------

@pytest.fixture(scope="module")
def traced(client, production):
    """workbook/app:traced from the production image and PROBES (kept, owner ladder)."""
    return floor.build(client, production.tags[0], service.LADDER_OWNER, log="none")


@pytest.fixture(scope="module")
def traced_narrow(client, production):
    """workbook/app:traced-narrow: the same from NARROW (owner tests-floor, removed after)."""
    try:
        yield floor.build(client, production.tags[0], OWNER, probes=floor.NARROW,
                          tag="workbook/app:traced-narrow", log="none")
    finally:
        resources.cleanup(client, OWNER)


@pytest.fixture(scope="module")
def traced_onnx(client):
    """workbook/app:onnx-traced from workbook/app:onnx (kept, owner ladder)."""
    return floor.build(client, service.build(client, "onnx", log="none").tags[0],
                       service.LADDER_OWNER, log="none")


def running(client, image):
    """A container of `image` (owner tests-floor), answering; remove it when done."""
    c = service.run(client, image.tags[0], OWNER, kind="floor")
    service.wait_ready(c)
    return c


def test_the_traced_image_is_at_its_floor(client, traced):
    bound = footprint.trace(client, service.tag("production"), OWNER).bytes
    assert traced.attrs["Size"] <= 1.1 * bound
    assert traced.attrs["Config"]["User"] == "1000:1000"
    assert traced.labels["workbook"] == service.LADDER_OWNER
    c = running(client, traced)
    try:
        service.wait_healthy(c, timeout=30)
        code, out = c.exec_run(["python", "-c", "import os; print(os.getuid(), os.getgid())"])
        assert code == 0 and out.split() == [b"1000", b"1000"]
    finally:
        c.remove(force=True)


def test_the_traced_image_answers_like_production(client, traced):
    assert floor.same_answers(client, traced.tags[0], service.tag("production"), OWNER) == []


def test_a_probe_suite_without_bad_input_misses_a_codec(client, traced, traced_narrow):
    body = badinput.CASES[NUL_BODY]
    for image, status, fails in ((traced, 400, False), (traced_narrow, 500, True)):
        c = running(client, image)
        try:
            answer = service.call(c, "/predict", raw=body)
            logs = c.logs().decode()
        finally:
            c.remove(force=True)
        assert answer[0] == status, (image.tags, answer)
        assert ("LookupError: unknown encoding: utf-32-be" in logs) == fails
        assert ('"event": "unhandled_error"' in logs) == fails


def test_the_onnx_traced_image_is_at_its_floor_and_answers_alike(client, traced_onnx):
    bound = footprint.trace(client, service.tag("onnx"), OWNER).bytes
    assert traced_onnx.attrs["Size"] <= 1.1 * bound
    assert "MODEL_PATH=/app/models/model.onnx" in traced_onnx.attrs["Config"]["Env"]
    assert floor.same_answers(client, traced_onnx.tags[0], service.tag("onnx"), OWNER, n=100) == []
