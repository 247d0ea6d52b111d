"""The package layering the README states, checked by reading every import with ``ast``.

Layers, bottom up: ``fe2qc`` (the shared core: numpy and the standard library only), then
``atomistic``, ``fe2`` and ``meshes`` side by side, then ``coupling`` on top of them all.

* ``fe2`` and ``atomistic`` never import each other;
* ``fe2qc`` imports none of the project's other packages;
* ``atomistic``, ``fe2`` and ``meshes`` never import ``coupling`` (nothing imports upward);
* ``meshes`` imports neither ``atomistic`` nor ``coupling``;
* no two modules import each other, directly or round a longer loop.

Every import counts for the layering: at module level, inside functions (deferred) and under
``if TYPE_CHECKING:``. Import cycles are checked twice: among the imports run when a module is
loaded (module level, ``TYPE_CHECKING`` blocks left out), and again with the deferred imports
inside functions added, since a deferred import only hides a cycle from the interpreter, not
from the reader.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("fe2qc", "atomistic", "fe2", "coupling", "meshes")

#: package -> the project packages it must not import
FORBIDDEN = {
    "fe2qc": {"atomistic", "fe2", "coupling", "meshes"},
    "atomistic": {"fe2", "coupling"},
    "fe2": {"atomistic", "coupling"},
    "meshes": {"atomistic", "coupling"},
    "coupling": set(),
}


@dataclass(frozen=True)
class Import:
    """One import statement's target, resolved to a project module."""

    source: str  # importing module, dotted
    target: str  # imported project module (the most specific one that exists), dotted
    line: int
    deferred: bool  # inside a function body
    type_checking: bool  # under ``if TYPE_CHECKING:``

    def __str__(self) -> str:
        where = " (in a function)" if self.deferred else ""
        where += " (TYPE_CHECKING)" if self.type_checking else ""
        return f"{self.source}:{self.line} imports {self.target}{where}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            modules[_module_name(path)] = path
    return modules


MODULES = _project_modules()


def _resolve(name: str) -> str | None:
    """The most specific project module that ``import name`` loads (None: not ours)."""
    if name.split(".")[0] not in PACKAGES:
        return None
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(module: str, path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    found: list[Import] = []

    def add(name: str, node: ast.stmt, deferred: bool, type_checking: bool) -> None:
        target = _resolve(name)
        if target is not None and target != module:
            found.append(Import(module, target, node.lineno, deferred, type_checking))

    def visit(node: ast.AST, deferred: bool, type_checking: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node, deferred, type_checking)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the package of this module
                base = module.split(".")
                if not is_package:
                    base = base[:-1]
                base = base[:len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            for alias in node.names:
                # `from pkg import sub` loads the submodule pkg.sub when there is one
                sub = f"{name}.{alias.name}"
                add(sub if sub in MODULES else name, node, deferred, type_checking)
        for child in ast.iter_child_nodes(node):
            if isinstance(node, ast.If) and _is_type_checking(node.test) and child in node.body:
                visit(child, deferred, True)
            else:
                visit(child, deferred or isinstance(
                    node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)), type_checking)

    visit(tree, False, False)
    return found


IMPORTS = [imp for module, path in MODULES.items() for imp in _imports(module, path)]


def _cycles(edges: list[Import]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), sorted."""
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for e in edges:
        graph[e.source].add(e.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def strongconnect(v: str) -> None:  # recursion depth <= number of modules (~60)
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strongconnect(w)
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
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return sorted(components)


def _describe(components: list[list[str]], edges: list[Import]) -> str:
    lines = []
    for component in components:
        members = set(component)
        lines.append("cycle among " + ", ".join(component) + ":")
        lines += sorted({f"    {e}" for e in edges if e.source in members and e.target in members})
    return "\n".join(lines)


def test_the_import_reader_sees_every_package_and_its_known_imports():
    # guards the reader itself: a parser that saw nothing would pass every rule below
    for package in PACKAGES:
        assert package in MODULES
    pairs = {(e.source, e.target) for e in IMPORTS}
    assert ("coupling.qc.model", "atomistic.calculator") in pairs  # module level
    assert ("coupling.cli", "coupling.config") in pairs  # inside a function
    assert ("fe2.solver", "fe2qc.mpi") in pairs  # plain `import fe2qc.mpi`
    assert _resolve("fe2qc.errors.InputError") == "fe2qc.errors"
    assert _resolve("numpy.linalg") is None


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_only_the_layers_below_it(package):
    bad = [str(e) for e in IMPORTS
           if e.source.split(".")[0] == package and e.target.split(".")[0] in FORBIDDEN[package]]
    assert not bad, (f"{package} may not import {sorted(FORBIDDEN[package])} "
                     "(README, Layout):\n" + "\n".join(bad))


def test_no_import_cycle_when_modules_load():
    edges = [e for e in IMPORTS if not e.deferred and not e.type_checking]
    components = _cycles(edges)
    assert not components, "import cycles at module level:\n" + _describe(components, edges)


def test_no_import_cycle_hidden_by_deferred_imports():
    edges = [e for e in IMPORTS if not e.type_checking]
    components = _cycles(edges)
    assert not components, ("import cycles closed by imports inside functions:\n"
                            + _describe(components, edges))
