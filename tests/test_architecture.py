"""The package's import structure, read from the source with ``ast`` (nothing is imported).

* No module under ``src/rhel`` imports the package root (``import rhel`` / ``from rhel import ...``) except the root's
  own ``__init__`` (its re-exports): dependencies are explicit, module to module.
* No import cycle between modules, counting imports inside functions too.
* The top-level parts depend one way only, a higher part on lower ones, in the order of :data:`LAYERS`.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "rhel"
#: The top-level parts, lowest first: a part may import the parts before it, never those after it (type-only imports
#: aside). ``figures`` (one figure-saving helper) and ``configs`` (shipped config files) import nothing from the
#: package.
LAYERS = (
    "configs",
    "_custom_types",
    "figures",
    "integrators",
    "energies",
    "gradients",
    "units",
    "models",
    "data",
    "training",
    "reports",
    "physics",
    "cli",
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted((SRC / PACKAGE).rglob("*.py"))}


def _imports(module: str) -> list[tuple[str, int]]:
    """``(imported module, line)`` for every import of the package's own modules in ``module`` (also inside
    functions; not those under ``if TYPE_CHECKING:``). ``from a.b import c`` imports ``a.b.c`` when that is a module,
    else ``a.b``."""
    path = MODULES[module]
    is_package = path.name == "__init__.py"
    found = []
    tree = ast.parse(path.read_text(), str(path))
    # imports under ``if TYPE_CHECKING:`` exist for annotations only: they are not dependencies at run time
    type_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
        for inner in ast.walk(node)
    }
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                target = f"{base}.{alias.name}"
                found.append((target if target in MODULES else base, node.lineno))
    return [(name, line) for name, line in found if name == PACKAGE or name.startswith(PACKAGE + ".")]


GRAPH = {module: sorted({name for name, _ in _imports(module) if name in MODULES}) for module in MODULES}


def _part(module: str) -> str | None:
    """The top-level part of a module (``rhel.training.loop`` -> ``training``; ``rhel.__main__`` -> ``cli``)."""
    parts = module.split(".")
    if len(parts) == 1:
        return None  # the package root: its re-exports are the public face, above every part
    return "cli" if parts[1] == "__main__" else parts[1]


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node, or with a self-loop (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph.get(node, ()):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _part_edges() -> dict[tuple[str, str], list[str]]:
    edges: dict[tuple[str, str], list[str]] = {}
    for module, targets in GRAPH.items():
        for target in targets:
            a, b = _part(module), _part(target)
            if a is not None and b is not None and a != b:
                edges.setdefault((a, b), []).append(f"{module} -> {target}")
    return edges


def test_the_source_is_found():
    assert len(MODULES) > 50 and "rhel.training.loop" in MODULES and "rhel.gradients.methods" in MODULES
    assert ("rhel.models._hssm", "rhel.units") in {(m, t) for m in GRAPH for t in GRAPH[m]}
    assert {_part(m) for m in MODULES} - {None} <= set(LAYERS)


def test_no_module_imports_the_package_root():
    offenders = [
        f"{MODULES[module].relative_to(SRC)}:{line}"
        for module in MODULES
        if module != PACKAGE
        for name, line in _imports(module)
        if name == PACKAGE
    ]
    assert offenders == [], "import the defining module instead of the package root: " + ", ".join(offenders)


def test_no_import_cycle_between_modules():
    assert _cycles(GRAPH) == []


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c"]]
    assert _cycles({"a": ["a"]}) == [["a"]] and _cycles({"a": ["b"], "b": []}) == []


def test_top_level_parts_depend_downwards_only():
    edges = _part_edges()
    assert _cycles({a: [b for (x, b) in edges if x == a] for a in LAYERS}) == []
    rank = {name: i for i, name in enumerate(LAYERS)}
    upward = [
        f"{a} imports higher part {b}: {', '.join(how)}" for (a, b), how in sorted(edges.items()) if rank[a] < rank[b]
    ]
    assert upward == []
