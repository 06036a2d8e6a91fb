"""The package's parts depend one way: no import cycle, of any length, between extractors, detectors, models and
postprocess (each may use the core modules of ``pipeline/``); and benchmarks use no private names of the package."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PARTS = ("extractors", "detectors", "models", "postprocess")


def _imported_modules(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved), wherever the import sits."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ["vad_pipeline"] + ([path.relative_to(REPO).parts[0]] if path.relative_to(REPO).parts[0] in PARTS else [])
    package += list(path.relative_to(REPO).parts[1:-1])
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                names.add(".".join(base + ([node.module] if node.module else [])))
            elif node.module:
                names.add(node.module)
    return names


def _part_of(module: str) -> str | None:
    pieces = module.split(".")
    if pieces[0] != "vad_pipeline" or len(pieces) < 2:
        return None
    return pieces[1] if pieces[1] in PARTS else "pipeline"


def _part_graph() -> dict[str, set[tuple[str, str]]]:
    graph: dict[str, set[tuple[str, str]]] = {part: set() for part in (*PARTS, "pipeline")}
    for part in PARTS:
        for path in (REPO / part).rglob("*.py"):
            for module in _imported_modules(path):
                target = _part_of(module)
                if target and target != part:
                    graph[part].add((target, f"{path.relative_to(REPO)} imports {module}"))
    return graph


def test_parts_import_each_other_one_way() -> None:
    graph = _part_graph()
    edges = {part: {target: why for target, why in graph[part] if target in PARTS} for part in PARTS}

    def cycle_from(start: str) -> list[str] | None:
        """A path of import reasons from ``start`` back to itself, if there is one (depth-first)."""
        stack = [(start, [])]
        seen = set()
        while stack:
            part, path = stack.pop()
            for target, why in edges[part].items():
                if target == start:
                    return path + [why]
                if target not in seen:
                    seen.add(target)
                    stack.append((target, path + [why]))
        return None

    cycles = [cycle for cycle in map(cycle_from, PARTS) if cycle]
    assert not cycles, "import cycles between parts:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_benchmarks_use_public_names_only() -> None:
    private = []
    for path in (REPO / "benchmarks").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("vad_pipeline"):
                private += [f"{path.name}: {node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                private.append(f"{path.name}:{node.lineno}: .{node.attr}")
    assert not private, "benchmarks reach into private names:\n" + "\n".join(private)
