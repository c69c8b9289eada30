import pytest

from workbook import WorkbookError, bases, images, wheelhouse


def test_every_requirement_is_pinned_exactly():
    for line in wheelhouse.pinned():
        name, sep, version = line.partition("==")
        assert sep and name and version, f"{line!r} is not pinned with =="


def test_host_and_images_use_the_same_scikit_learn():
    import sklearn
    pins = dict(line.split("==") for line in wheelhouse.pinned())
    assert pins["scikit-learn"] == sklearn.__version__


# It reads the wheelhouse `make wheelhouse` downloads with the engine: not in the no-engine tier.
@pytest.mark.engine
def test_closure_follows_dependencies_and_stops_there(tmp_path):
    req = tmp_path / "requirements.txt"
    req.write_text("# the model service\nscikit-learn==1.9.1\n")
    names = {w.name.split("-")[0].lower() for w in wheelhouse.closure(req)}
    assert {"scikit_learn", "numpy", "scipy", "joblib", "threadpoolctl"} <= names
    assert "streamlit" not in names and "flask" not in names


def test_stage_leaves_an_identical_copy_alone_and_swaps_a_different_one(tmp_path, monkeypatch):
    house = tmp_path / "house"
    house.mkdir()
    for name in ("a-1-py3-none-any.whl", "b-1-py3-none-any.whl"):
        (house / name).write_bytes(name.encode())
    monkeypatch.setattr(wheelhouse, "WHEELHOUSE", house)
    monkeypatch.setattr(wheelhouse, "status", lambda: (True, "ready"))
    context = tmp_path / "ctx"
    first = wheelhouse.stage(context)
    inode = first.stat().st_ino
    assert sorted(f.name for f in first.iterdir()) == sorted(f.name for f in house.iterdir())
    assert wheelhouse.stage(context).stat().st_ino == inode  # same files: not touched
    (house / "c-1-py3-none-any.whl").write_bytes(b"c")
    again = wheelhouse.stage(context)
    assert again.stat().st_ino != inode and len(list(again.iterdir())) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ctx", "house"]  # no temporary folder left


def test_closure_names_a_missing_wheel(tmp_path):
    req = tmp_path / "requirements.txt"
    req.write_text("not-in-the-wheelhouse==1.0\n")
    with pytest.raises(WorkbookError, match="not-in-the-wheelhouse is needed"):
        wheelhouse.closure(req)


def test_platforms_cover_manylinux2014_and_glibc_236():
    p = wheelhouse.platforms("x86_64")
    assert p[0] == "manylinux_2_36_x86_64" and "manylinux2014_x86_64" in p


def test_arch_maps_engine_names():
    class Fake:
        def version(self):
            return {"Arch": "arm64"}
    assert wheelhouse.arch(Fake()) == "aarch64"


def test_wheelhouse_installs_every_pin_offline(client, tmp_path):
    """The whole pinned set installs with --no-index (no missing transitive wheel)."""
    (tmp_path / "Dockerfile").write_text(
        "ARG PYTHON_BUILD_IMAGE=python:3.11\n"
        "FROM ${PYTHON_BUILD_IMAGE}\n"
        "COPY wheels/ /wheels/\n"
        "COPY wheelhouse.txt /tmp/\n"
        "RUN python -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir --no-index "
        "--find-links=/wheels -r /tmp/wheelhouse.txt && /opt/venv/bin/pip check\n")
    (tmp_path / "wheelhouse.txt").write_text(wheelhouse.REQUIREMENTS.read_text())
    wheelhouse.stage(tmp_path)
    img = images.build(client, tmp_path, "workbook/test-wheelhouse:latest", "tests",
                       buildargs=bases.build_args(client), log="none")
    out = client.containers.run(img.id, ["/opt/venv/bin/python", "-c",
                                         "import sklearn, flask, skops; print(sklearn.__version__)"],
                                remove=True, labels={"workbook": "tests"})
    assert out.decode().strip() == dict(p.split("==") for p in wheelhouse.pinned())["scikit-learn"]
