"""dive's image-efficiency figures (efficiency, wasted bytes, user wasted %) from the layer tars.

Reproduces dive 0.13.1 (github.com/wagoodman/dive): `filetree.Efficiency` in
dive/filetree/efficiency.go, `image.Analyze` in dive/image/analysis.go and the layer reading
of dive/image/docker/image_archive.go, with the tree rules of dive/filetree/file_tree.go and
file_node.go. On dive's own test image dive publishes efficiency 0.98442, 32,025 wasted bytes
and a user wasted percent of 0.48349; the tests here check the figures against the dive binary.

What dive counts, and so what this module counts:
- every leaf of each layer's tree (files, links, empty dirs, whiteouts) is one sighting of
  its path; a sighting's size is the tar header's size, and a whiteout's is the size of the
  deleted directory's subtree in the layers below, or 0 when it deletes a file;
- per path: cumulative = sum of its sightings' sizes, minimum = the smallest sighting;
- efficiency = sum of minima / sum of cumulatives (1.0 when that is 0);
- wasted bytes = sum of cumulatives of the paths sighted 2+ times (a deleted file is sighted
  by its whiteout too, so all its bytes are waste; a deleted directory is not: its files
  are sighted once each and the whiteout once, under the directory's own path);
- layer size = sum of its tar entries' sizes; user wasted = wasted / all layers but the first;
- opaque markers (.wh..wh..opq) are dropped: what an opaque directory hides stays counted.
"""

import io
import json
import math
import posixpath
import tarfile
from dataclasses import dataclass, field

WHITEOUT = ".wh."
OPAQUE = ".wh..wh.."  # dive drops every name with this prefix, not only .wh..wh..opq


@dataclass(frozen=True)
class Entry:
    """One member of a layer tar: absolute path as stored (whiteout names kept), size, kind."""

    path: str
    size: int
    kind: str  # file, dir, symlink, hardlink, whiteout, opaque, other


@dataclass(frozen=True)
class Waste:
    """A path sighted in 2+ layers: how often, and its bytes summed over the sightings."""

    path: str
    count: int
    cumulative_bytes: int


@dataclass
class Efficiency:
    """dive's figures for one image."""

    efficiency: float
    wasted_bytes: int
    user_wasted_fraction: float  # dive's "userWastedPercent", a ratio despite the name
    size_bytes: int  # sum of the layers' tar entry sizes (dive's SizeBytes)
    user_size_bytes: int  # the same without the first layer
    minimum_bytes: int  # sum over paths of their smallest sighting: the numerator
    cumulative_bytes: int  # sum over paths of all their sightings: the denominator
    inefficient: list = field(default_factory=list)  # Waste, largest first

    def top(self, n=10):
        """The n most wasteful paths."""
        return self.inefficient[:n]


def entry_from_tarinfo(info):
    """The Entry dive makes of a tar header (None for '.', which dive skips)."""
    name = posixpath.normpath(info.name)
    if name in (".", "/"):
        return None
    base = posixpath.basename(name)
    # Go's FileInfo().IsDir() also looks at the S_IFDIR bits of the mode
    if info.isdir() or (info.mode & 0o170000) == 0o040000:
        kind = "dir"
    elif base.startswith(OPAQUE):
        kind = "opaque"
    elif base.startswith(WHITEOUT):
        kind = "whiteout"
    elif info.issym():
        kind = "symlink"
    elif info.islnk():
        kind = "hardlink"
    elif info.isreg():
        kind = "file"
    else:
        kind = "other"
    return Entry("/" + name.lstrip("/"), info.size, kind)


class Chunks(io.RawIOBase):
    """A read-only file over an iterator of byte chunks (docker-py's save() stream)."""

    def __init__(self, chunks):
        self._it, self._buf, self._pos = iter(chunks), b"", 0

    def readable(self):
        return True

    def readinto(self, b):
        while self._pos >= len(self._buf):
            try:
                self._buf, self._pos = next(self._it), 0
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf) - self._pos)
        b[:n] = self._buf[self._pos:self._pos + n]
        self._pos += n
        return n


def _read_layer(fileobj):
    return [e for e in map(entry_from_tarinfo, tarfile.open(fileobj=fileobj, mode="r|*"))
            if e is not None]


def layer_files(client, image_ref):
    """Each layer of the image, bottom first, as a list of Entry, streamed from `docker save`."""
    stream = io.BufferedReader(Chunks(client.images.get(image_ref).save(chunk_size=1 << 20)),
                               buffer_size=1 << 20)
    found, manifest = {}, None
    # One pass: the manifest may come before or after the layer tars.
    with tarfile.open(fileobj=stream, mode="r|") as outer:
        for member in outer:
            name = member.name
            if name == "manifest.json":
                manifest = json.load(outer.extractfile(member))
            elif name.endswith(".tar") and member.issym():
                # docker save links a layer seen twice to the first copy; dive reads the
                # link itself, so that layer counts as empty there (and here)
                found[name] = []
            elif member.isreg() and (name.endswith((".tar", ".tar.gz", ".tgz"))
                                     or name.startswith("blobs/")):  # OCI layout (Engine 25+)
                try:
                    found[name] = _read_layer(outer.extractfile(member))
                except tarfile.ReadError:  # a config or index blob, not a layer
                    pass
    if manifest is None:
        raise ValueError(f"no manifest.json in the saved image {image_ref}")
    return [found[path] for path in manifest[0]["Layers"]]


class _Node:
    __slots__ = ("name", "entry", "children")

    def __init__(self, name, entry=None):
        self.name, self.entry, self.children = name, entry, {}  # entry None: implied parent

    def copy(self):
        new = _Node(self.name, self.entry)
        new.children = {k: c.copy() for k, c in self.children.items()}
        return new

    def size(self):
        return self.entry.size if self.entry else 0

    def is_dir(self):
        return self.entry is not None and self.entry.kind == "dir"


def _names(path):
    return [n for n in path.split("/") if n]


def _add_path(root, path, entry):
    """FileTree.AddPath: missing parents are made without data; the end node gets `entry`."""
    node, names = root, _names(path)
    for i, name in enumerate(names):
        child = node.children.get(name)
        if child is None:
            if name.startswith(OPAQUE):
                return
            child = node.children[name] = _Node(name)
        node = child
        if i == len(names) - 1:
            node.entry = entry


def _get(root, path):
    node = root
    for name in _names(path):
        node = node.children.get(name)
        if node is None:
            return None
    return node


def _tree(entries):
    root = _Node("")
    for e in entries:
        _add_path(root, e.path, e)
    return root


def _walk(node, prefix=""):
    """Child-first, children sorted by name, root left out (FileNode.VisitDepthChildFirst);
    yields (node, path) with a whiteout's prefix removed from its own name (FileNode.Path)."""
    for name in sorted(node.children):
        child = node.children[name]
        yield from _walk(child, prefix + "/" + name)
        own = name[len(WHITEOUT):] if name.startswith(WHITEOUT) else name
        yield child, prefix + "/" + own


def _stack(lower, upper):
    """FileTree.Stack: a whiteout removes its path (if there), anything else is added."""
    for node, path in _walk(upper):
        if node.name.startswith(WHITEOUT):
            names = _names(path)
            parent = _get(lower, "/".join(names[:-1]))
            if parent is not None:
                parent.children.pop(names[-1], None)
        else:
            _add_path(lower, path, node.entry)


class _WhiteoutOfNothing(Exception):
    pass


def efficiency(layers):
    """dive's efficiency, wasted bytes and user wasted fraction of layers (lists of Entry)."""
    trees = [_tree(entries) for entries in layers]
    seen = {}  # path -> [cumulative, minimum, count]
    # dive stacks trees[0] onto a copy of itself, then trees[1..k-1], before layer k
    stacked = trees[0].copy() if trees else None
    for k, tree in enumerate(trees):
        if k:
            _stack(stacked, trees[k - 1])
        try:
            for node, path in _walk(tree):
                if node.children:  # only leaves are sighted
                    continue
                data = seen.setdefault(path, [0, -1, 0])
                if node.name.startswith(WHITEOUT):
                    below = _get(stacked, path)
                    if below is None:
                        # dive returns an error here: the rest of this layer is not visited
                        # and the path keeps its minimum of -1
                        raise _WhiteoutOfNothing(path)
                    size = (below.size() + sum(n.size() for n, _ in _walk(below))
                            if below.is_dir() else 0)
                else:
                    size = node.size()
                data[0] += size
                if data[1] < 0 or size < data[1]:
                    data[1] = size
                data[2] += 1
        except _WhiteoutOfNothing:
            pass
    total, minimum = sum(d[0] for d in seen.values()), sum(d[1] for d in seen.values())
    score = 1.0 if total == 0 else minimum / total
    waste = sorted((Waste(p, d[2], d[0]) for p, d in seen.items() if d[2] >= 2),
                   key=lambda w: (-w.cumulative_bytes, w.path))
    wasted = sum(w.cumulative_bytes for w in waste)
    sizes = [sum(e.size for e in entries) for entries in layers]
    user = sum(sizes[1:])
    if user:
        fraction = wasted / user
    else:  # Go's float division by zero
        fraction = math.inf if wasted else math.nan
    return Efficiency(score, wasted, fraction, sum(sizes), user, minimum, total, waste)


def analyse(client, image_ref):
    """dive's figures for an image on the engine."""
    return efficiency(layer_files(client, image_ref))
