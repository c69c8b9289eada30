"""The shape of the workbook/ package, read from its source: no import cycles, no huge modules.

Every import counts, at module level or inside a function (a function-level import hides a
cycle, it does not remove it): `from . import x`, `from .x import y`, `from .. import x`
(subpackages such as workbook/checks/), `import workbook.x`, `from workbook.x import y`.
"""

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "workbook"
MAX_LINES = 400


def modules():
    """{dotted name: [paths]} of every module under workbook/ (a package is its __init__.py;
    while x.py turns into the package x/, both are read as one module)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = ["workbook", *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found.setdefault(".".join(parts), []).append(path)
    return found


def imports(name, path, known):
    """The workbook modules the source at `path` (module `name`) imports, anywhere in it."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
            out.update(t for t in targets if t == "workbook" or t.startswith("workbook."))
            continue
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = package.split(".")
            base = base[:len(base) - (node.level - 1)]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        if source != "workbook" and not source.startswith("workbook."):
            continue
        # `from PACKAGE import x`: x is the submodule when there is one, else a name of PACKAGE.
        subs = [f"{source}.{a.name}" for a in node.names if f"{source}.{a.name}" in known]
        out.update(subs)
        if len(subs) < len(node.names) or not subs:
            out.add(source)
    return {m for m in out if m != name}


def graph():
    """{module: the workbook modules it imports}, modules that do not exist included."""
    known = modules()
    return {name: set().union(*(imports(name, p, known) for p in paths))
            for name, paths in known.items()}


def cycles(edges):
    """One cycle through each group of modules that import each other in a circle (Tarjan's
    strongly connected components), as 'a -> b -> a', with the group's other members."""
    index, low, stack, on_stack, groups, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v] & edges.keys()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return [_path(edges, group) for group in groups]


def _path(edges, group):
    """One cycle through a strongly connected group: 'a -> b -> a (also: c)'."""
    start = min(group)
    seen, path, node = {start: 0}, [start], start
    while True:
        node = min(w for w in edges[node] if w in group)
        if node in seen:
            loop = path[seen[node]:] + [node]
            others = sorted(group - set(loop))
            return " -> ".join(loop) + (f" (also: {', '.join(others)})" if others else "")
        seen[node] = len(path)
        path.append(node)


def test_the_graph_sees_every_kind_of_import(tmp_path, monkeypatch):
    pkg = tmp_path / "workbook"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("X = 1\n")
    (pkg / "a.py").write_text("from . import X, b\n")
    (pkg / "b.py").write_text("def f():\n    from .sub.c import g\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "c.py").write_text("import workbook.d\nfrom .. import a\n")
    (pkg / "d.py").write_text("from workbook.sub import c\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", pkg)
    edges = graph()
    assert edges == {"workbook": set(), "workbook.a": {"workbook", "workbook.b"},
                     "workbook.b": {"workbook.sub.c"}, "workbook.sub": set(),
                     "workbook.sub.c": {"workbook.d", "workbook.a"}, "workbook.d": {"workbook.sub.c"}}
    assert cycles(edges) == ["workbook.a -> workbook.b -> workbook.sub.c -> workbook.a "
                             "(also: workbook.d)"]
    (pkg / "d.py").write_text("def f():\n    import workbook.gone\n")
    assert cycles(graph()) == ["workbook.a -> workbook.b -> workbook.sub.c -> workbook.a"]


def test_every_import_names_a_module():
    edges = graph()
    missing = sorted(f"{a} imports {b}" for a, bs in edges.items() for b in bs if b not in edges)
    assert not missing, "imports of workbook modules that do not exist:\n  " + "\n  ".join(missing)


def test_no_import_cycles():
    found = cycles(graph())
    assert not found, "import cycles in workbook/:\n  " + "\n  ".join(found)


def test_every_module_is_at_most_400_lines():
    long = {str(path.relative_to(PACKAGE.parent)): n for path in PACKAGE.rglob("*.py")
            if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them): {long}"
