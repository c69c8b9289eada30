"""What is inside an image (Debian and Python packages), as CycloneDX, checked against advisories.

Read from the image's files through `docker save`, without running it: dpkg's status
database and every Python dist-info/egg-info directory, as the final filesystem has them
(a package a later layer removed is not counted). This is what Syft or Trivy do first;
they then look every package up in an online vulnerability database, which an offline
classroom does not have: `advisories()` checks a small file shipped in the repo instead.
"""

import json
import re
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from packageurl import PackageURL
from packaging.version import InvalidVersion, Version

from . import ROOT
from .imagefs import image_of, read

ADVISORIES = ROOT / "docker" / "security" / "advisories.json"
DPKG_STATUS = "var/lib/dpkg/status"
DPKG_STATUS_D = "var/lib/dpkg/status.d/"  # distroless images: one file per package
OS_RELEASE = ("etc/os-release", "usr/lib/os-release")
PY_METADATA = re.compile(r"(^|/)[^/]+/[^/]+\.(dist-info/METADATA|egg-info/PKG-INFO|egg-info)$")


@dataclass(frozen=True, order=True)
class Package:
    """One installed package: name, version, type ('deb' or 'pypi'), where it was found."""

    name: str
    version: str
    type: str
    path: str = ""  # the dpkg database, or the site-packages directory
    arch: str = ""  # deb only
    distro: str = ""  # deb only: e.g. debian-12, from the image's os-release

    @property
    def purl(self):
        """The package URL scanners and SBOMs identify it by."""
        if self.type == "deb":
            qualifiers = {k: v for k, v in (("arch", self.arch), ("distro", self.distro)) if v}
            return PackageURL("deb", "debian", self.name, self.version,
                              qualifiers or None).to_string()
        return PackageURL("pypi", None, normalize(self.name), self.version).to_string()


def normalize(name):
    """PEP 503: 'Scikit_Learn' and 'scikit-learn' are the same project."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _headers(text):
    """The 'Key: value' lines of an RFC 822 header block (METADATA, PKG-INFO, a dpkg stanza)."""
    fields = {}
    for line in text.splitlines():
        if not line.strip():
            break
        if ":" in line and not line[0].isspace():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    return fields


def dpkg_packages(text, path="/" + DPKG_STATUS):
    """The installed packages of a dpkg status file."""
    found = []
    for stanza in re.split(r"\n\s*\n", text):
        f = _headers(stanza.strip("\n"))
        if f.get("Package") and f.get("Status", "install ok installed").endswith(" installed"):
            found.append(Package(f["Package"], f.get("Version", ""), "deb", path,
                                 f.get("Architecture", "")))
    return found


def _interesting(path):
    return (path == DPKG_STATUS or path.startswith(DPKG_STATUS_D) or path in OS_RELEASE
            or bool(PY_METADATA.search(path)))


class Files:
    """An imagefs.read visitor: the texts of the files the inventory reads, from every layer."""

    def __init__(self):
        self.texts = {}  # (layer name, path) -> text

    def __call__(self, entry, data):
        """Keep the text of a file the inventory reads."""
        if (entry.type == "file" and not entry.whiteout and _interesting(entry.path[1:])
                and entry.size < 64 << 20):
            self.texts[entry.layer, entry.path] = data().decode(errors="replace")

    def final(self, saved):
        """{path: text} of the files kept, as the image's final filesystem has them."""
        return {path[1:]: self.texts[e.layer, path] for path, e in saved.files().items()
                if (e.layer, path) in self.texts}

    def packages(self, saved):
        """packages() of the image `saved` was read from."""
        return _packages(self.final(saved))


_FILES = {}  # image id -> its files: packages() and os_release() read an image once


def _final_files(client, image):
    """{path: text} of the files the inventory reads, as the image's final filesystem has them."""
    image = image_of(client, image)
    if image.id not in _FILES:
        files = Files()
        _FILES.clear()
        _FILES[image.id] = files.final(read(client, image, files))
    return _FILES[image.id]


def packages(client, image):
    """Every Debian and Python package in the image, sorted by type then name."""
    return _packages(_final_files(client, image))


def _packages(files):
    """Every package in the files of an image ({path: text}), sorted by type then name."""
    release = _os_release(files)
    distro = f"{release['ID']}-{release['VERSION_ID']}" if "VERSION_ID" in release else ""
    found = []
    for path, text in files.items():
        if path == DPKG_STATUS or path.startswith(DPKG_STATUS_D):
            found += [replace(p, distro=distro) for p in dpkg_packages(text, "/" + path)]
        elif PY_METADATA.search(path):
            f = _headers(text)
            if f.get("Name") and f.get("Version"):
                where = path.split(".dist-info")[0].split(".egg-info")[0].rsplit("/", 1)[0]
                found.append(Package(f["Name"], f["Version"], "pypi", "/" + where))
    return sorted(set(found), key=lambda p: (p.type, normalize(p.name), p.path))


def os_release(client, image):
    """The image's /etc/os-release as a dict ({} when it has none, e.g. FROM scratch)."""
    return _os_release(_final_files(client, image))


def _os_release(files):
    """The os-release of an image's files ({path: text}) as a dict."""
    text = next((files[p] for p in OS_RELEASE if p in files), "")
    return {k: v.strip('"') for k, _, v in (ln.partition("=") for ln in text.splitlines()) if v}


def cyclonedx(image, packages):
    """A CycloneDX 1.5 JSON document (as a dict) listing the packages of an image."""
    by_purl = {}
    for p in packages:
        by_purl.setdefault(p.purl, []).append(p)
    components = []
    for purl, same in sorted(by_purl.items()):
        p = same[0]
        components.append({
            "type": "library", "bom-ref": purl, "name": p.name, "version": p.version,
            "purl": purl,
            "properties": [{"name": "workbook:location", "value": q.path} for q in same]})
    name = image.tags[0] if getattr(image, "tags", None) else str(getattr(image, "id", image))
    image_id = getattr(image, "id", "")
    subject = {"type": "container", "bom-ref": image_id or name, "name": name.split(":")[0],
               "version": name.split(":")[1] if ":" in name else "latest"}
    if image_id.startswith("sha256:"):
        subject["hashes"] = [{"alg": "SHA-256", "content": image_id[len("sha256:"):]}]
    return {
        "bomFormat": "CycloneDX", "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{uuid.uuid4()}", "version": 1,
        "metadata": {
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "tools": {"components": [{"type": "application", "name": "workbook.inventory"}]},
            "component": subject,
        },
        "components": components,
    }


@dataclass(frozen=True)
class Match:
    """An advisory that applies to an installed package."""

    id: str
    package: str
    installed: str
    fixed: str | None  # None: no fixed version published
    severity: str
    summary: str
    url: str
    path: str = ""


def _order(c):
    if c == "~":
        return -1
    if c.isdigit() or not c:
        return 0
    return ord(c) if c.isalpha() else ord(c) + 256


def _verrevcmp(a, b):
    """dpkg's comparison of two upstream versions or two revisions (lib/dpkg/version.c)."""
    i = j = 0
    while i < len(a) or j < len(b):
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i]) if i < len(a) else 0
            bc = _order(b[j]) if j < len(b) else 0
            if ac != bc:
                return ac - bc
            i, j = i + 1, j + 1
        da = re.match(r"\d*", a[i:]).group()
        db = re.match(r"\d*", b[j:]).group()
        i, j = i + len(da), j + len(db)
        if int(da or 0) != int(db or 0):
            return int(da or 0) - int(db or 0)
    return 0


def deb_compare(a, b):
    """<0, 0 or >0 as Debian version a sorts before, with or after b ('1:2.0-1' style)."""
    def split(v):
        epoch, _, rest = v.rpartition(":") if ":" in v else ("0", "", v)
        upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "")
        return int(epoch or 0), upstream, revision
    ea, ua, ra = split(a)
    eb, ub, rb = split(b)
    return (ea - eb) or _verrevcmp(ua, ub) or _verrevcmp(ra, rb)


def _before(kind, installed, bound):
    """installed < bound, in the ordering of the package type."""
    if kind == "deb":
        return deb_compare(installed, bound) < 0
    try:
        return Version(installed) < Version(bound)
    except InvalidVersion:
        return False  # cannot tell: do not claim a match


def advisories(packages, path=ADVISORIES):
    """The advisories in `path` that apply to these packages (affected: introduced <= v < fixed)."""
    with open(path) as f:
        entries = json.load(f)["advisories"]
    matches = []
    for p in packages:
        for a in entries:
            same = (normalize(a["package"]) == normalize(p.name) if p.type == "pypi"
                    else a["package"] == p.name)
            if a["type"] != p.type or not same:
                continue
            introduced = a.get("introduced")
            if introduced and _before(p.type, p.version, introduced):
                continue
            if a.get("fixed") and not _before(p.type, p.version, a["fixed"]):
                continue
            matches.append(Match(a["id"], p.name, p.version, a.get("fixed"), a["severity"],
                                 a["summary"], a["url"], p.path))
    return matches
