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

import math
from dataclasses import dataclass, field

from . import imagefs
# dive drops every name that starts with META, not only the opaque marker .wh..wh..opq
from .imagefs import META, WHITEOUT


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
    e = imagefs.entry(info)
    return None if e is None else _dive_entry(e)


def _dive_entry(e):
    """dive's Entry of an imagefs.Entry: its kind by dive's rules."""
    base = e.path.rsplit("/", 1)[-1]
    # Go's FileInfo().IsDir() also looks at the S_IFDIR bits of the mode
    if e.type == "dir" or (e.mode & 0o170000) == 0o040000:
        kind = "dir"
    elif base.startswith(META):
        kind = "opaque"
    elif base.startswith(WHITEOUT):
        kind = "whiteout"
    elif e.type in ("file", "symlink", "hardlink"):
        kind = e.type
    else:
        kind = "other"
    return Entry(e.path, e.size, kind)


def dive_layers(saved):
    """Each layer of an imagefs.Saved, bottom first, as a list of Entry."""
    # docker save links a layer seen twice to the first copy; dive reads the link itself,
    # so that layer counts as empty there (and here)
    return [[] if layer.link else [_dive_entry(e) for e in layer.entries] for layer in saved.layers]


def layer_files(client, image_ref):
    """Each layer of the image, bottom first, as a list of Entry, streamed from `docker save`."""
    return dive_layers(imagefs.read(client, image_ref))


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
            if name.startswith(META):
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
