"""The imports in ``node/`` follow the layer order that docs/architecture.md states.

The order is data in one place: the ```` ```layers ```` block of docs/architecture.md, one
layer per line from the top (``name: package package …``). A module may import its own
package, any package of a lower layer and, in the edge, services and base layers, another
package of its own layer; parts import only base. No import cycle between packages (the
allow-listed edges aside), and none between modules. Module-level and function-local imports
count alike.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NODE = ROOT / "node"
ARCHITECTURE = ROOT / "docs" / "architecture.md"

# Layers whose packages may import each other (a part imports only base).
PEER_LAYERS = frozenset({"edge", "services", "base"})

# Known violations, each with its issue item. The list is exact: a test fails when an entry
# no longer occurs, so it only ever shrinks. Entries are (importing module, imported module).
ALLOWED_EDGES: frozenset[tuple[str, str]] = frozenset()

# Known module cycles, as the sorted tuple of the modules in the cycle (same rules).
ALLOWED_CYCLES: frozenset[tuple[str, ...]] = frozenset()


@dataclass(frozen=True)
class Import:
    """One import statement's target in a module of ``node/``."""

    source: str
    target: str
    line: int
    local: bool


def read_layers() -> dict[str, tuple[str, ...]]:
    """Return the layers of docs/architecture.md, top first: name -> packages."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    match = re.search(r"```layers\n(.*?)```", text, re.S)
    assert match, "docs/architecture.md has no ```layers block"
    layers: dict[str, tuple[str, ...]] = {}
    for line in match.group(1).splitlines():
        if line.strip():
            name, _, packages = line.partition(":")
            layers[name.strip()] = tuple(packages.split())
    return layers


def compute_module_name(path: Path) -> str:
    """Return the dotted module name of ``path`` under the repository root."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def get_modules() -> dict[str, Path]:
    """Return every module of ``node/`` by dotted name."""
    return {compute_module_name(path): path for path in sorted(NODE.rglob("*.py"))}


def compute_imports(name: str, path: Path, modules: dict[str, Path]) -> Iterator[Import]:
    """Yield the ``node`` modules that ``path`` imports, module-level and function-local."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def visit(node: ast.AST, local: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            inner = local or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            targets: list[str] = []
            if isinstance(child, ast.Import):
                targets = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join(anchor + ([child.module] if child.module else []))
                # ``from pkg import submodule`` imports the submodule.
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                    for alias in child.names
                ]
            for target in targets:
                if target == "node" or target.startswith("node."):
                    while target not in modules:
                        target = target.rpartition(".")[0]
                    yield Import(name, target, child.lineno, local)
            yield from visit(child, inner)

    yield from visit(tree, False)


def get_imports() -> list[Import]:
    """Return every import of a ``node`` module by a ``node`` module."""
    modules = get_modules()
    return [edge for name, path in modules.items() for edge in compute_imports(name, path, modules)]


def compute_package(module: str) -> str:
    """Return the package a module belongs to: ``node.x`` for ``node.x`` and ``node.x.*``."""
    return ".".join(module.split(".")[:2])


def get_layer_of() -> dict[str, int]:
    """Return each package's layer index (0 is the top)."""
    layer_of: dict[str, int] = {}
    for index, packages in enumerate(read_layers().values()):
        for package in packages:
            assert f"node.{package}" not in layer_of, f"{package} is in two layers"
            layer_of[f"node.{package}"] = index
    return layer_of


def is_allowed(source: str, target: str, layer_of: dict[str, int], peers: set[int]) -> bool:
    """Return whether the layer order lets ``source`` import ``target``."""
    a, b = compute_package(source), compute_package(target)
    if a == b or target == "node":
        return True
    if layer_of[b] > layer_of[a]:
        return True
    return layer_of[b] == layer_of[a] and layer_of[a] in peers


def compute_cycles(graph: dict[str, set[str]]) -> list[tuple[str, ...]]:
    """Return the strongly connected components of more than one node (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[tuple[str, ...]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(tuple(sorted(component)))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return sorted(cycles)


def test_every_package_has_a_layer() -> None:
    layer_of = get_layer_of()
    missing = {compute_package(m) for m in get_modules()} - set(layer_of) - {"node"}
    assert not missing, f"packages missing from the ```layers block: {sorted(missing)}"


def test_imports_follow_the_layer_order() -> None:
    layer_of = get_layer_of()
    names = list(read_layers())
    peers = {names.index(name) for name in PEER_LAYERS}
    against = {
        (edge.source, edge.target): edge
        for edge in get_imports()
        if not is_allowed(edge.source, edge.target, layer_of, peers)
    }
    new = sorted(
        f"{e.source}:{e.line} -> {e.target}"
        for key, e in against.items()
        if key not in ALLOWED_EDGES
    )
    assert not new, "imports against the layer order:\n" + "\n".join(new)
    gone = ALLOWED_EDGES - set(against)
    assert not gone, f"allow-listed edges no longer occur, remove them: {sorted(gone)}"


def test_no_cycle_between_packages() -> None:
    graph: dict[str, set[str]] = {}
    for edge in get_imports():
        a, b = compute_package(edge.source), compute_package(edge.target)
        if a != b and b != "node" and (edge.source, edge.target) not in ALLOWED_EDGES:
            graph.setdefault(a, set()).add(b)
    assert compute_cycles(graph) == []


def test_no_cycle_between_modules() -> None:
    graph: dict[str, set[str]] = {}
    for edge in get_imports():
        if edge.source != edge.target:
            graph.setdefault(edge.source, set()).add(edge.target)
    cycles = set(compute_cycles(graph))
    new = cycles - ALLOWED_CYCLES
    assert not new, f"import cycles: {sorted(new)}"
    gone = ALLOWED_CYCLES - cycles
    assert not gone, f"allow-listed cycles no longer occur, remove them: {sorted(gone)}"


def test_cycles_are_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert compute_cycles(graph) == [("a", "b", "c")]
