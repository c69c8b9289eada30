"""workbook/inventory.py: packages read from image files, CycloneDX, advisories."""

import dataclasses
import json
import shutil
import subprocess

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from workbook import ROOT, bases, images, inventory, resources
from workbook.inventory import Package

OWNER = "test_inventory"

PAIRS = [("1.0", "1.0"), ("1.0", "1.0-1"), ("1.0~rc1", "1.0"), ("1:1.0", "2.0"),
         ("2.36-9+deb12u3", "2.36-9+deb12u14"), ("1.34+dfsg-1.2", "1.34+dfsg-1.2+deb12u1"),
         ("3.0.20-1~deb12u2", "3.0.20-1"), ("1.2a", "1.2+"), ("0.9", "0.10"), ("1.0.0", "1.0"),
         ("7.88.1-10+deb12u5", "7.88.1-10+deb12u12"), ("1:1.2.13.dfsg-1", "1:1.2.11.dfsg-2+deb11u2")]


@pytest.mark.skipif(not shutil.which("dpkg"), reason="needs dpkg (a Debian or Ubuntu host)")
@pytest.mark.parametrize("a, b", PAIRS)
def test_debian_version_order_agrees_with_dpkg(a, b):
    def dpkg(op):
        return subprocess.run(["dpkg", "--compare-versions", a, op, b]).returncode == 0
    ours = inventory.deb_compare(a, b)
    assert (ours < 0, ours == 0, ours > 0) == (dpkg("lt"), dpkg("eq"), dpkg("gt"))


def test_debian_order_is_not_string_order():
    assert inventory.deb_compare("2.36-9+deb12u14", "2.36-9+deb12u3") > 0
    assert "2.36-9+deb12u14" < "2.36-9+deb12u3"


STATUS = """Package: libc6
Status: install ok installed
Architecture: amd64
Version: 2.36-9+deb12u14
Description: GNU C Library
 continued description line

Package: gone
Status: deinstall ok config-files
Version: 1.0

Package: tar
Status: install ok installed
Version: 1.34+dfsg-1.2+deb12u1
Architecture: amd64
"""


def test_dpkg_status_lists_installed_packages_only():
    assert [(p.name, p.version, p.arch) for p in inventory.dpkg_packages(STATUS)] == [
        ("libc6", "2.36-9+deb12u14", "amd64"), ("tar", "1.34+dfsg-1.2+deb12u1", "amd64")]


def test_package_urls():
    deb = Package("libc6", "2.36-9+deb12u14", "deb", "/var/lib/dpkg/status", "amd64", "debian-12")
    assert deb.purl == "pkg:deb/debian/libc6@2.36-9%2Bdeb12u14?arch=amd64&distro=debian-12"
    assert Package("Scikit_Learn", "1.9.1", "pypi").purl == "pkg:pypi/scikit-learn@1.9.1"


def _ids(matches):
    return {(m.id, m.installed) for m in matches}


def test_advisories_match_only_affected_versions():
    packages = [Package("pip", "23.2.1", "pypi"), Package("pip", "23.3", "pypi"),
                Package("setuptools", "65.5.1", "pypi"), Package("libc6", "2.36-9+deb12u2", "deb"),
                Package("libc6", "2.36-9+deb12u14", "deb"), Package("tar", "1.34", "deb"),
                Package("tar", "1.34", "pypi")]  # same name, other ecosystem: never matched
    assert _ids(inventory.advisories(packages)) == {
        ("GHSA-mq26-g339-26xf", "23.2.1"), ("GHSA-4xh5-x5gv-qwph", "23.2.1"),
        ("GHSA-4xh5-x5gv-qwph", "23.3"), ("GHSA-cx63-2mw6-8hw5", "65.5.1"),
        ("GHSA-5rjg-fvgr-3xxf", "65.5.1"), ("DSA-5514-1", "2.36-9+deb12u2"), ("CVE-2005-2541", "1.34")}


def test_introduced_bounds_a_range(tmp_path):
    path = tmp_path / "advisories.json"
    path.write_text(json.dumps({"advisories": [{
        "id": "TEST-1", "type": "pypi", "package": "flask", "introduced": "3.0", "fixed": "3.1.2",
        "severity": "low", "summary": "test", "url": "https://example.invalid"}]}))
    packages = [Package("Flask", v, "pypi") for v in ("2.3.3", "3.0", "3.1.1", "3.1.2")]
    assert _ids(inventory.advisories(packages, path)) == {("TEST-1", "3.0"), ("TEST-1", "3.1.1")}


def test_nothing_installed_means_no_advisory():
    assert inventory.advisories([]) == []


def test_the_shipped_advisories_are_well_formed():
    entries = json.loads(inventory.ADVISORIES.read_text())["advisories"]
    assert len({a["id"] for a in entries}) == len(entries)
    for a in entries:
        assert a["type"] in ("deb", "pypi") and a["severity"] in ("low", "medium", "high", "critical")
        assert a["url"].startswith("https://") and a["summary"]


# --- real images -------------------------------------------------------------------------

def _validate(bom):
    """CycloneDX's own schema check: None when valid, else the error."""
    return JsonStrictValidator(SchemaVersion.V1_5).validate_str(json.dumps(bom))


@pytest.fixture(scope="module")
def production(client, production):
    """The session's production image (tests/conftest.py), with its packages."""
    return production, inventory.packages(client, production)


@pytest.fixture(scope="module")
def small(client, tmp_path_factory):
    """An image FROM scratch with one file, and python-slim minus Debian's wheel."""
    scratch = tmp_path_factory.mktemp("scratch")
    (scratch / "hello.txt").write_text("hello\n")
    (scratch / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /\n")
    slim = tmp_path_factory.mktemp("slim")
    (slim / "Dockerfile").write_text(f"FROM {bases.resolve('python-slim', client).ref}\n"
                                     "RUN rm -rf /usr/local/lib/python3.11/site-packages/wheel*\n")
    yield {"scratch": images.build(client, scratch, "workbook/test-inventory:scratch", OWNER, log="none"),
           "no-wheel": images.build(client, slim, "workbook/test-inventory:no-wheel", OWNER, log="none")}
    resources.cleanup(client, OWNER)


def _in_container(client, image, command):
    out = client.containers.run(image, command, entrypoint=[], remove=True, user="root",
                                labels=resources.labels(OWNER))
    return out.decode()


def test_debian_packages_are_what_dpkg_says(client, production):
    image, packages = production
    listed = _in_container(client, image.id, ["dpkg-query", "-W", "-f", "${Package} ${Version}\\n"])
    assert {(p.name, p.version) for p in packages if p.type == "deb"} == {
        tuple(line.split()) for line in listed.splitlines()}


def test_python_packages_are_what_pip_says(client, production):
    image, packages = production
    listed = json.loads(_in_container(client, image.id, ["/opt/venv/bin/python", "-m", "pip", "list",
                                                         "--format", "json", "--disable-pip-version-check"]))
    venv = "/opt/venv/lib/python3.11/site-packages"
    assert {(inventory.normalize(p.name), p.version) for p in packages if p.path == venv} == {
        (inventory.normalize(d["name"]), d["version"]) for d in listed}


def test_the_pinned_requirements_are_in_the_inventory(production):
    _, packages = production
    found = {(inventory.normalize(p.name), p.version) for p in packages if p.type == "pypi"}
    for line in (ROOT / "docker" / "app" / "requirements.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            assert (inventory.normalize(name), version.strip()) in found


def test_the_production_sbom_is_valid_cyclonedx(production):
    image, packages = production
    bom = inventory.cyclonedx(image, packages)
    assert _validate(bom) is None
    assert bom["metadata"]["component"]["name"] == "workbook/app"
    assert len(bom["components"]) == len({p.purl for p in packages})
    broken = dict(bom, components=[dict(bom["components"][0], type="not-a-type")])
    assert _validate(broken) is not None  # the validator does reject


def test_production_matches_the_advisories_for_its_versions(production):
    _, packages = production
    matches = inventory.advisories(packages)
    # pip and setuptools are in two places (the base's and the venv's), at versions past every fix
    places = {p.path for p in packages if p.name in ("pip", "setuptools")}
    assert places == {"/opt/venv/lib/python3.11/site-packages", "/usr/local/lib/python3.11/site-packages"}
    assert {(m.id, m.package, m.fixed) for m in matches} == {("CVE-2005-2541", "tar", None)}  # no fix exists
    # the same matcher does match an older setuptools (CPython 3.11.2's bundled 65.5.0)
    old = [dataclasses.replace(p, version="65.5.0") for p in packages if p.name == "setuptools"]
    assert {m.id for m in inventory.advisories(old)} == {"GHSA-r9hx-vwmv-q579", "GHSA-cx63-2mw6-8hw5",
                                                         "GHSA-5rjg-fvgr-3xxf"}


def test_an_image_from_scratch_has_no_package(client, small):
    packages = inventory.packages(client, small["scratch"])
    assert packages == [] and inventory.advisories(packages) == []
    assert inventory.os_release(client, small["scratch"]) == {}
    bom = inventory.cyclonedx(small["scratch"], packages)
    assert bom["components"] == [] and _validate(bom) is None


def test_a_package_deleted_by_a_later_layer_is_not_counted(client, small):
    base = inventory.packages(client, bases.resolve("python-slim", client).ref)
    site = "/usr/local/lib/python3.11/site-packages"  # (setuptools/_vendor/ has a wheel of its own)
    assert ("wheel", site) in {(p.name, p.path) for p in base if p.type == "pypi"}
    after = inventory.packages(client, small["no-wheel"])
    assert ("wheel", site) not in {(p.name, p.path) for p in after if p.type == "pypi"}
    assert {p for p in after if p.type == "deb"} == {p for p in base if p.type == "deb"}
