import shutil

import pytest

from workbook import ROOT, bases, inventory, wheelhouse

DEB822 = """\
Types: deb
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main

Types: deb-src
URIs: http://src.example/debian
Suites: bookworm
"""
LEGACY = """\
# a comment
deb [arch=amd64 signed-by=/k.gpg] http://legacy.example/debian bookworm main
deb http://security.debian.org/debian-security bookworm-security main
"""


def test_mirror_comes_from_apt_sources_not_security_nor_source():
    found = bases.mirrors_from_sources([(".sources", DEB822), (".list", LEGACY)])
    assert found == ["http://mirror.example/debian", "http://legacy.example/debian"]


def test_mirror_setting_wins(monkeypatch):
    monkeypatch.setenv("WORKBOOK_DEBIAN_MIRROR", "http://mine.example/debian")
    assert bases.debian_mirror() == "http://mine.example/debian"


def test_unknown_mode_is_a_message(monkeypatch):
    monkeypatch.setenv("WORKBOOK_BASES", "cloud")
    with pytest.raises(bases.WorkbookError, match="not a mode"):
        bases.mode()


def test_recipe_hash_follows_instructions_not_comments(tmp_path, monkeypatch):
    shutil.copytree(bases.ROOT / "docker" / "bases", tmp_path / "docker" / "bases")
    monkeypatch.setattr(bases, "ROOT", tmp_path)
    before = {k: bases.recipe_hash(k) for k in bases.BASES}
    slim = tmp_path / "docker/bases/python-slim/Dockerfile"
    slim.write_text(slim.read_text() + "\n# only a comment\n")
    assert {k: bases.recipe_hash(k) for k in bases.BASES} == before
    slim.write_text(slim.read_text() + "ENV X=1\n")
    after = {k: bases.recipe_hash(k) for k in bases.BASES}
    assert after["debian-slim"] == before["debian-slim"]
    assert after["python-slim"] != before["python-slim"]
    assert after["python"] != before["python"]  # built on top of it


@pytest.mark.parametrize("key", list(bases.BASES))
def test_every_base_resolves_and_runs(client, key):
    r = bases.resolve(key, client)
    img = client.images.get(r.ref)
    if not r.official:
        assert r.ref != bases.BASES[key].official  # a stand-in never takes the official name
        assert img.labels["workbook.standin-for"] == bases.BASES[key].official
        assert "debootstrap" in img.labels["workbook.recipe"]
    out = client.containers.run(r.ref, ["sh", "-c", "cat /etc/debian_version"], remove=True,
                                labels={"workbook": "tests"})
    assert out.decode().strip().startswith("12.")


@pytest.mark.parametrize("key", ["python-slim", "python"])
def test_python_bases_have_python_311_and_venv(client, key):
    ref = bases.resolve(key, client).ref
    out = client.containers.run(ref, ["sh", "-c", "python --version && python -m venv /tmp/v && "
                                      "/tmp/v/bin/pip --version >/dev/null && echo venv-ok"],
                                remove=True, labels={"workbook": "tests"})
    assert out.decode().split() == ["Python", out.decode().split()[1], "venv-ok"]
    assert out.decode().split()[1].startswith("3.11.")


def test_full_python_has_a_compiler_and_slim_has_none(client):
    full, slim = bases.resolve("python", client).ref, bases.resolve("python-slim", client).ref
    probe = ["sh", "-c", "command -v gcc || echo none"]
    assert client.containers.run(full, probe, remove=True, labels={"workbook": "tests"}).strip()
    assert client.containers.run(slim, probe, remove=True, labels={"workbook": "tests"}).strip() == b"none"


def test_python_standin_has_the_official_layout(client):
    r = bases.resolve("python-slim", client)
    if r.official:
        pytest.skip("the official image is in use here")
    script = ("for c in python python3 pip; do command -v $c; done; python -c 'import sys, sysconfig, ensurepip; "
              "print(sys.prefix, sysconfig.get_paths()[\"purelib\"], ensurepip.version())'; "
              "python -m venv /tmp/v && /tmp/v/bin/pip --version | cut -d' ' -f1-2")
    out = client.containers.run(r.ref, ["sh", "-c", script], remove=True, labels={"workbook": "tests"})
    pins = dict(line.split("==") for line in wheelhouse.pinned(ROOT / "docker/bases/python-slim/requirements.txt"))
    assert out.decode().split() == ["/usr/local/bin/python", "/usr/local/bin/python3", "/usr/local/bin/pip",
                                    "/usr/local", "/usr/local/lib/python3.11/site-packages", pins["pip"],
                                    "pip", pins["pip"]]  # venvs are seeded with the same pip
    # nothing the base installs matches an advisory that has a fix
    assert not [m for m in inventory.advisories(inventory.packages(client, r.ref)) if m.fixed]


def test_slim_standin_is_close_to_the_official_size(client):
    r = bases.resolve("debian-slim", client)
    if r.official:
        pytest.skip("the official image is in use here")
    # The official slim image is under 100 MB uncompressed; the stand-in must stay as slim.
    assert client.images.get(r.ref).attrs["Size"] < 100e6


def test_describe_names_official_and_standin():
    line = bases.describe(bases.Resolved("python-slim", "workbook/python:3.11-slim", False, "built earlier"))
    assert "python:3.11-slim" in line and "stand-in" in line


def test_build_args_resolve_the_bases_once_per_process(monkeypatch):
    calls = []
    monkeypatch.setattr(bases, "_build_args", {})
    monkeypatch.setattr(bases, "mode", lambda: "standin")
    monkeypatch.setattr(bases, "resolve", lambda k, client=None: calls.append(k) or
                        bases.Resolved(k, f"ref-of-{k}", False, "test"))
    first = bases.build_args()
    assert bases.build_args() == first and len(calls) == len(set(calls))
    first["PYTHON_IMAGE"] = "changed by a caller"
    assert bases.build_args()["PYTHON_IMAGE"] != "changed by a caller"


def test_standin_names_tag_an_official_base_with_the_workbook_name(monkeypatch):
    # With a registry, bases resolve to the official images; exercises still say
    # FROM workbook/python:3.11-slim, so that name is tagged onto the official image.
    tagged = []

    class Image:
        def tag(self, repo, tag):
            tagged.append(f"{repo}:{tag}")

    class Client:
        images = type("Images", (), {"get": staticmethod(lambda ref: Image())})

    official = {"python-slim": "python:3.11-slim", "redis": "workbook/redis:7.0-bookworm"}
    monkeypatch.setattr(bases, "resolve", lambda key, client: bases.Resolved(key, official[key], True, "x"))
    bases.standin_names(Client(), ("python-slim", "redis"))
    assert tagged == ["workbook/python:3.11-slim"]  # the stand-in itself is not tagged again
