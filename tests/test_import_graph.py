"""The package's import graph, read with ``ast`` (nothing is imported): no cycle between modules,
and no import from a lower layer to a higher one. The layer order is docs/architecture.md's."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "thinkspace"

#: Bottom to top. A module belongs to the entry naming the longest dotted prefix of its name; it may
#: import its own layer and any layer below. Entries are packages or modules.
LAYERS: list[tuple[str, list[str]]] = [
    ("base", ["thinkspace.errors", "thinkspace.version", "thinkspace.geometry", "thinkspace.slot_tokens",
              "thinkspace.answers", "thinkspace.records", "thinkspace.viz", "thinkspace.utils"]),
    ("synth", ["thinkspace.synth"]),
    ("eval", ["thinkspace.eval"]),
    ("data", ["thinkspace.data"]),
    ("training", ["thinkspace.training"]),
    ("backbones", ["thinkspace.backbones"]),
    ("generation", ["thinkspace.generation"]),
    ("components", ["thinkspace.component", "thinkspace.accuracy", "thinkspace.mixers", "thinkspace.heads",
                    "thinkspace.teachers", "thinkspace.objectives", "thinkspace.cues"]),
    ("modules", ["thinkspace.modules"]),
    ("rl", ["thinkspace.rl"]),
    ("points", ["thinkspace.points"]),
    ("cli", ["thinkspace.lightning_cli", "thinkspace.cli"]),
    ("inference", ["thinkspace.inference"]),
    ("commands", ["thinkspace.synth.command", "thinkspace.eval.command", "thinkspace.teachers.command",
                  "thinkspace.sweep"]),
    ("root", ["thinkspace"]),
]

#: Upward imports that are known and explained in docs/architecture.md ("Layers"): (importer, imported).
EXCEPTIONS: set[tuple[str, str]] = set()


def module_names() -> dict[str, Path]:
    """Dotted name -> file of every module in the package (a package is its ``__init__.py``)."""
    names = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``name`` imports anywhere in its file (also inside functions and
    ``TYPE_CHECKING`` blocks: an import on first use is still a dependency)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]  # ``from pkg import module``
        else:
            continue
        found.update(t for t in targets if t in known and t != name)
    return found


def graph() -> dict[str, set[str]]:
    modules = module_names()
    return {name: imports_of(name, path, set(modules)) for name, path in modules.items()}


def layer_of(name: str) -> int:
    """Index in :data:`LAYERS` of the longest entry that is ``name`` or a package holding it (the
    root package's entry is its ``__init__.py`` alone); -1: no layer."""
    best, index = -1, -1
    for i, (_, entries) in enumerate(LAYERS):
        for entry in entries:
            below = entry != "thinkspace" and name.startswith(entry + ".")
            if (name == entry or below) and len(entry) > best:
                best, index = len(entry), i
    return index


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_every_module_has_a_layer():
    assert [name for name in module_names() if layer_of(name) < 0] == []


def test_no_import_cycle_between_modules():
    assert cycles(graph()) == []


def test_no_import_runs_from_a_lower_layer_up():
    upward = sorted((a, b) for a, targets in graph().items() for b in targets if layer_of(b) > layer_of(a))
    assert [edge for edge in upward if edge not in EXCEPTIONS] == []


def test_the_exceptions_are_still_needed_and_at_most_two():
    edges = graph()
    assert len(EXCEPTIONS) <= 2
    assert [(a, b) for a, b in EXCEPTIONS if b not in edges.get(a, set())] == []


def test_the_cycle_finder_finds_a_cycle_and_the_layers_name_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert LAYERS[layer_of("thinkspace.teachers.command")][0] == "commands"
    assert LAYERS[layer_of("thinkspace.teachers.cache")][0] == "components"
    assert LAYERS[layer_of("thinkspace")][0] == "root" and layer_of("thinkspace.not_listed") == -1


def test_docs_list_the_same_layers():
    docs = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    section = docs.split("## Layers", 1)[1].split("\n## ", 1)[0]
    for name, _ in LAYERS:
        assert f"**{name}**" in section, name
    order = [section.index(f"**{name}**") for name, _ in LAYERS]
    assert order == sorted(order), "docs/architecture.md lists the layers in another order"
