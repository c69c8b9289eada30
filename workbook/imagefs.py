"""One reading of `docker save`: each layer's entries, contents on demand, the final filesystem."""

import io
import json
import posixpath
import tarfile
from dataclasses import dataclass, field

WHITEOUT = ".wh."  # .wh.NAME deletes NAME (and all under it) from the layers below
OPAQUE = ".wh..wh..opq"  # hides everything the layers below put in its directory
META = ".wh..wh."  # a prefix reserved for markers: names with it are never files
TYPES = {tarfile.DIRTYPE: "dir", tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "hardlink",
         tarfile.CHRTYPE: "char", tarfile.BLKTYPE: "block", tarfile.FIFOTYPE: "fifo"}


@dataclass(frozen=True)
class Entry:
    """One member of a layer tar, its path absolute and normalised (a whiteout keeps its name)."""

    path: str
    size: int
    type: str  # file, dir, symlink, hardlink, char, block, fifo, other
    mode: int  # the tar header's mode: permission bits, and some writers add the type bits
    uid: int
    gid: int
    linkname: str
    layer: str  # the layer's name in the archive ('<id>/layer.tar', 'blobs/sha256/<digest>')

    @property
    def opaque(self):
        """True for the opaque marker of its directory."""
        return posixpath.basename(self.path) == OPAQUE

    @property
    def deletes(self):
        """The path a whiteout deletes from the layers below (None for anything else)."""
        head, base = posixpath.split(self.path)
        if base.startswith(WHITEOUT) and not base.startswith(META):
            return posixpath.join(head, base[len(WHITEOUT):])
        return None

    @property
    def whiteout(self):
        """True for a whiteout or an opaque marker (any .wh. name): not a file of the image."""
        return posixpath.basename(self.path).startswith(WHITEOUT)


@dataclass
class Layer:
    """One layer of the image (Saved.layers is bottom first) and the history step that made it."""

    name: str
    diff_id: str
    step: int | None  # 1-based, oldest first: `docker history` read bottom up, empty steps counted
    created_by: str
    entries: list = field(default_factory=list)  # [Entry] in the tar's order ([] for a link)
    link: str | None = None  # docker save stores a layer seen twice as a link to the first copy


@dataclass
class Saved:
    """What one reading of `docker save` gave: image id, config, layers, the final filesystem."""

    id: str
    config: dict
    layers: list
    _files: dict = field(default=None, init=False, repr=False, compare=False)

    def layer(self, name):
        """The Layer called `name` in the archive."""
        return next(layer for layer in self.layers if layer.name == name)

    def files(self):
        """{path: Entry} of the filesystem a container of the image starts with."""
        if self._files is None:
            by_name = {layer.name: layer.entries for layer in self.layers}
            self._files = final([by_name.get(layer.link, []) if layer.link else layer.entries
                                 for layer in self.layers])
        return self._files


@dataclass
class Archive:
    """The parts of `docker save` besides the layers' contents."""

    layers: list  # the layers' names, bottom first (the manifest's order)
    config: dict
    links: dict  # layer name -> the name of the layer it links to


class Chunks(io.RawIOBase):
    """A read-only file over an iterator of byte chunks (docker-py's save() stream)."""

    def __init__(self, chunks):
        self._it, self._buf, self._pos = iter(chunks), b"", 0

    def readable(self):
        """Always: this is a file to read."""
        return True

    def readinto(self, b):
        """Fill b from the chunks; 0 at the end."""
        while self._pos >= len(self._buf):
            try:
                self._buf, self._pos = next(self._it), 0
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf) - self._pos)
        b[:n] = self._buf[self._pos:self._pos + n]
        self._pos += n
        return n


def image_of(client, image):
    """The docker-py Image for a name or id (an Image is returned as it is)."""
    return client.images.get(image) if isinstance(image, str) else image


def entry(info, layer=""):
    """The Entry of a tar header (None for the layer's root, './')."""
    name = posixpath.normpath(info.name)
    if name in (".", "/"):
        return None
    kind = "file" if info.isreg() else TYPES.get(info.type, "other")
    return Entry("/" + name.lstrip("/"), info.size, kind, info.mode, info.uid, info.gid,
                 info.linkname, layer)


def walk(client, image, visit):
    """Stream `docker save` once: visit(layer, member, tar) for each entry of each layer tar."""
    image = image_of(client, image)
    stream = io.BufferedReader(Chunks(image.save(chunk_size=1 << 20)), buffer_size=1 << 20)
    manifest, blobs, links = None, {}, {}
    # One pass: the manifest may come before or after the layer tars, which come in no order.
    with tarfile.open(fileobj=stream, mode="r|") as outer:
        for member in outer:
            name = member.name
            if member.issym() and name.endswith(".tar"):
                links[name] = posixpath.normpath(posixpath.join(posixpath.dirname(name),
                                                                member.linkname))
            if not member.isreg():
                continue
            fileobj = outer.extractfile(member)
            if name == "manifest.json":
                manifest = json.load(fileobj)
            elif fileobj.peek(1)[:1] == b"{":  # the image config, or an OCI index or manifest
                blobs[name] = json.load(fileobj)
            elif name.endswith((".tar", ".tar.gz", ".tgz")) or name.startswith("blobs/"):
                try:
                    layer = tarfile.open(fileobj=fileobj, mode="r|*")
                except tarfile.ReadError:  # empty, or no tar: a layer without entries
                    continue
                with layer:
                    for info in layer:
                        visit(name, info, layer)
    if manifest is None:
        raise ValueError(f"no manifest.json in the saved image {getattr(image, 'id', image)}")
    return Archive(manifest[0]["Layers"], blobs.get(manifest[0]["Config"]) or {}, links)


def read(client, image, *visitors):
    """Stream `docker save` once into a Saved; each visitor(entry, data) sees every entry."""
    # data() gives a regular file's bytes (b"" for other entries), read once for all the
    # visitors, and only during their calls: the stream moves on after them.
    image = image_of(client, image)
    found = {}

    def visit(layer, info, tar):
        e = entry(info, layer)
        if e is None:
            return
        found.setdefault(layer, []).append(e)
        if visitors:
            kept = []

            def data():
                if not kept:
                    kept.append(tar.extractfile(info).read() if info.isreg() else b"")
                return kept[0]

            for visitor in visitors:
                visitor(e, data)

    archive = walk(client, image, visit)
    return Saved(getattr(image, "id", ""), archive.config, _layers(archive, found))


def _layers(archive, found):
    """Each Layer bottom first, with the history step that made it (empty steps skipped)."""
    steps = [(i, h.get("created_by", "")) for i, h in
             enumerate(archive.config.get("history") or [], 1) if not h.get("empty_layer")]
    diff_ids = (archive.config.get("rootfs") or {}).get("diff_ids") or []
    out = []
    for k, name in enumerate(archive.layers):
        step, created_by = steps[k] if k < len(steps) else (None, "")
        out.append(Layer(name, diff_ids[k] if k < len(diff_ids) else "", step, created_by,
                         found.get(name, []), archive.links.get(name)))
    return out


def final(layers):
    """{path: Entry} after applying layers (lists of Entry, bottom first) as the OCI spec says."""
    # A layer first removes from what is below it: for .wh.NAME, NAME and all under it; for
    # an opaque marker, all its directory held; for a non-directory, whatever was at its path.
    # Then it adds its own entries, so its markers never hide what the same layer adds.
    files, kids = {}, {}  # kids: directory -> the paths directly in it (parents implied too)

    def remove(path):
        """Remove path and everything under it."""
        for child in kids.pop(path, ()):
            remove(child)
        files.pop(path, None)
        kids.get(posixpath.dirname(path), set()).discard(path)

    for entries in layers:
        for e in entries:
            if e.opaque:
                for child in list(kids.get(posixpath.dirname(e.path), ())):
                    remove(child)
            elif e.deletes:
                remove(e.deletes)
            elif e.type != "dir" and not e.whiteout:
                remove(e.path)
        for e in entries:
            if e.whiteout:
                continue
            files[e.path] = e
            path = e.path
            while path != "/":
                parent = posixpath.dirname(path)
                siblings = kids.setdefault(parent, set())
                if path in siblings:
                    break
                siblings.add(path)
                path = parent
    return files
