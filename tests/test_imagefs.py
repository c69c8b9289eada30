"""workbook/imagefs.py: whiteouts per the OCI image spec, by hand and against a real container."""

import hashlib

import pytest

from workbook import bases, images, imagefs, resources

OWNER = "test_imagefs"


def E(path, type_="file", layer="L", size=0):
    return imagefs.Entry(path, size, type_, 0o644, 0, 0, "", layer)


def paths(*layers):
    return sorted(imagefs.final(list(layers)))


# --- pure: the spec's rules on layers made by hand ---------------------------------------

def test_a_whiteout_deletes_the_path_and_everything_under_it():
    lower = [E("/a", "dir"), E("/a/f"), E("/a/d", "dir"), E("/a/d/x"), E("/a/d/sub/y"), E("/a/dd")]
    upper = [E("/a/.wh.f"), E("/a/.wh.d")]
    assert paths(lower, upper) == ["/a", "/a/dd"]  # /a/dd: only a prefix of /a/d


def test_an_opaque_directory_hides_the_lower_layers_but_keeps_its_own_layer():
    lower = [E("/o", "dir"), E("/o/old"), E("/o/sub", "dir"), E("/o/sub/x"), E("/p")]
    # the marker may come before or after what the same layer adds
    for upper in ([E("/o", "dir"), E("/o/.wh..wh..opq"), E("/o/new")],
                  [E("/o", "dir"), E("/o/new"), E("/o/.wh..wh..opq")]):
        assert paths(lower, upper) == ["/o", "/o/new", "/p"]


def test_a_whiteout_never_hides_what_its_own_layer_adds():
    assert paths([E("/a/f", layer="1")], [E("/a/.wh.f"), E("/a/f", layer="2")]) == ["/a/f"]
    assert imagefs.final([[E("/a/f", layer="1")], [E("/a/f", layer="2"), E("/a/.wh.f")]])[
        "/a/f"].layer == "2"


def test_a_file_replaces_a_directory_and_a_directory_a_file():
    lower = [E("/t", "dir"), E("/t/inner"), E("/u")]
    upper = [E("/t", layer="2"), E("/u", "dir", layer="2"), E("/u/in", layer="2")]
    got = imagefs.final([lower, upper])
    assert sorted(got) == ["/t", "/u", "/u/in"] and got["/t"].type == "file"


def test_deleting_a_directory_reaches_files_added_without_their_parents():
    assert paths([E("/x/y/z")], [E("/.wh.x")]) == []


def test_markers_are_not_files_and_reserved_names_delete_nothing():
    lower = [E("/d", "dir"), E("/d/.wh.f")]  # never shown, even as the first layer
    upper = [E("/d/.wh..wh.plnk"), E("/d/g")]
    assert paths(lower, upper) == ["/d", "/d/g"]
    assert E("/d/.wh..wh.plnk").whiteout and E("/d/.wh..wh.plnk").deletes is None
    assert E("/d/.wh.f").deletes == "/d/f" and E("/d/.wh..wh..opq").opaque


def test_a_layer_saved_as_a_link_is_applied_again():
    def layer(name, entries, link=None):
        return imagefs.Layer(name, "", None, "", entries, link)

    saved = imagefs.Saved("id", {}, [layer("1", [E("/a", layer="1")]), layer("2", [E("/.wh.a")]),
                                     layer("3", [], link="1")])
    assert list(saved.files()) == ["/a"] and saved.files()["/a"].layer == "1"


# --- engine: an image whose later steps delete a file, a directory, and remake one -------

DOCKERFILE = """\
ARG BASE
FROM ${BASE}
RUN mkdir -p /fs/gone-dir/sub /fs/opq/keep /fs/kept /fs/turned \\
 && echo a > /fs/gone-file && echo b > /fs/gone-dir/x && echo c > /fs/gone-dir/sub/y \\
 && echo d > /fs/opq/old && echo e > /fs/opq/keep/z && echo f > /fs/kept/k \\
 && echo i > /fs/turned/inner && chmod 0750 /fs/kept && chown 1234:2345 /fs/kept/k
RUN rm /fs/gone-file && rm -r /fs/gone-dir
LABEL purpose=test
RUN rm -r /fs/opq && mkdir -p /fs/opq/keep && echo g > /fs/opq/new && echo h > /fs/opq/keep/w
RUN rm -r /fs/turned && echo t > /fs/turned
"""
TYPES = {"f": "file", "d": "dir", "l": "symlink"}


@pytest.fixture(scope="module")
def built(client, tmp_path_factory):
    """(image, Saved, {(layer, path): bytes} of the files under /fs); removed afterwards."""
    context = tmp_path_factory.mktemp("imagefs")
    (context / "Dockerfile").write_text(DOCKERFILE)
    try:
        image = images.build(client, context, "workbook/test-imagefs:whiteouts", OWNER,
                             buildargs={"BASE": bases.resolve("debian-slim", client).ref},
                             log="none")
        contents = {}

        def keep(entry, data):
            if entry.path.startswith("/fs/") and entry.type == "file":
                contents[entry.layer, entry.path] = data()

        yield image, imagefs.read(client, image, keep), contents
    finally:
        resources.cleanup(client, OWNER)


def _in_container(client, image, command):
    return client.containers.run(image.id, ["sh", "-c", command], remove=True,
                                 labels=resources.labels(OWNER)).decode()


def test_the_builder_wrote_whiteouts_and_an_opaque_marker(built):
    image, saved, _ = built
    *_, made, deleted, remade, turned = saved.layers
    assert saved.id == image.id
    # step 1 first, as scan's "history step N"; LABEL is a step without a layer
    history = list(reversed(image.history()))
    assert [history[layer.step - 1]["CreatedBy"] for layer in saved.layers] == [
        layer.created_by for layer in saved.layers]
    assert "rm /fs/gone-file" in deleted.created_by and "rm -r /fs/opq" in remade.created_by
    assert {e.deletes for e in deleted.entries if e.deletes} == {"/fs/gone-file", "/fs/gone-dir"}
    # a directory removed and made again in one step: overlay2 marks it opaque
    assert [e.path for e in remade.entries if e.opaque] == ["/fs/opq/.wh..wh..opq"]
    # a directory replaced by a file: no whiteout, the file hides it
    assert [(e.path, e.type) for e in turned.entries if e.path.startswith("/fs/")] == [
        ("/fs/turned", "file")]
    k = next(e for e in made.entries if e.path == "/fs/kept/k")
    assert (k.uid, k.gid, k.size) == (1234, 2345, 2)


def test_the_final_filesystem_is_what_a_container_sees(client, built):
    image, saved, contents = built
    listed = _in_container(client, image, "find /fs -printf '%p %y %m %U %G %s\\n'")
    seen = {}
    for line in listed.splitlines():
        path, kind, mode, uid, gid, size = line.split()
        seen[path] = (TYPES[kind], int(mode, 8), int(uid), int(gid),
                      int(size) if kind == "f" else None)
    files = saved.files()
    mine = {p: (e.type, e.mode & 0o7777, e.uid, e.gid, e.size if e.type == "file" else None)
            for p, e in files.items() if p == "/fs" or p.startswith("/fs/")}
    assert mine == seen
    assert "/fs/opq/new" in mine and "/fs/opq/old" not in mine and "/fs/opq/keep/z" not in mine
    # and each final file's bytes are those of the layer it comes from
    sums = _in_container(client, image, "find /fs -type f -exec md5sum {} +")
    assert {path: digest for digest, path in (ln.split() for ln in sums.splitlines())} == {
        p: hashlib.md5(contents[e.layer, p]).hexdigest() for p, e in files.items()
        if p.startswith("/fs/") and e.type == "file"}
