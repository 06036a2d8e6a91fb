"""The package's parts depend one way: no import cycle, of any length, between extractors, detectors, models and
postprocess (each may use the core modules of ``pipeline/``), nor between any two modules of the package, ``pipeline/``
included; only the model kinds' own modules name SSMTL's method; and benchmarks use no private names of the
package."""

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


FOLDERS = {"pipeline": "vad_pipeline", **{part: f"vad_pipeline.{part}" for part in PARTS}}


def _module_name(path: Path) -> str:
    folder = path.relative_to(REPO).parts[0]
    parts = list(path.relative_to(REPO / folder).with_suffix("").parts)
    return ".".join([FOLDERS[folder]] + (parts[:-1] if parts[-1] == "__init__" else parts))


def _runtime_imports(path: Path, known: set[str]) -> set[str]:
    """The package's modules ``path`` imports at run time (imports under ``if TYPE_CHECKING:`` are annotations
    only), wherever the import sits: ``from package import name`` counts as the module ``package.name`` when there
    is one, else as ``package``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and getattr(node.test, "id", getattr(node.test, "attr", "")) == "TYPE_CHECKING"
                   for child in node.body for n in ast.walk(child)}
    own = _module_name(path).split(".")
    base = own if path.name == "__init__.py" else own[:-1]
    names = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = (".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else []))
                      if node.level else node.module or "")
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    found = set()
    for name in names:
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name:
            found.add(name)
    return found - {_module_name(path)}


def test_no_module_of_the_package_imports_itself_back() -> None:
    """Module-level import graph of every module (``pipeline/`` and the four parts), strongly connected
    components: each must be one module."""
    paths = {_module_name(p): p for folder in FOLDERS for p in (REPO / folder).rglob("*.py")}
    graph = {name: _runtime_imports(path, set(paths)) for name, path in paths.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(node: str) -> None:  # Tarjan
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert len(graph) > 60 and "vad_pipeline.commands.cli" in graph and "vad_pipeline.models.ssmtl.kind" in graph
    assert not cycles, "modules that import each other (directly or round a loop):\n" + "\n".join(map(str, cycles))


def test_only_the_ssmtl_kind_names_its_method() -> None:
    """Commands ask a model kind (``vad_pipeline.models.kinds``); the string ``"ssmtl"`` is SSMTL's package's own."""
    found = [f"{path.relative_to(REPO)}:{number}" for folder in FOLDERS for path in (REPO / folder).rglob("*.py")
             if "ssmtl" not in path.relative_to(REPO).parts[:-1]
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if '"ssmtl"' in line]
    assert not found, "the SSMTL method named outside its kind:\n" + "\n".join(found)


def test_the_method_registry_skips_exactly_the_modules_that_define_no_method() -> None:
    from vad_pipeline.models.registry import INFRASTRUCTURE, method_names

    modules = {p.stem for p in (REPO / "models").glob("*.py") if not p.stem.startswith("_")}
    assert INFRASTRUCTURE <= modules, f"named but missing: {sorted(INFRASTRUCTURE - modules)}"
    assert set(method_names()) == modules - INFRASTRUCTURE


def test_benchmarks_use_public_names_only() -> None:
    private = []
    for path in (REPO / "benchmarks").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("vad_pipeline"):
                private += [f"{path.name}: {node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                private.append(f"{path.name}:{node.lineno}: .{node.attr}")
    assert not private, "benchmarks reach into private names:\n" + "\n".join(private)


ROOMS_BELOW = {  # a room of pipeline/ (or the parts, together) and the rooms it must never import
    "vad_pipeline.io": ("vad_pipeline.core", "vad_pipeline.commands", "vad_pipeline.synthetic",
                        *(f"vad_pipeline.{p}" for p in PARTS)),
    "vad_pipeline.core": ("vad_pipeline.commands", "vad_pipeline.synthetic", *(f"vad_pipeline.{p}" for p in PARTS)),
    "parts": ("vad_pipeline.commands", "vad_pipeline.synthetic"),
    "vad_pipeline.synthetic": ("vad_pipeline.commands", *(f"vad_pipeline.{p}" for p in PARTS)),
}


def test_the_rooms_of_pipeline_depend_one_way() -> None:
    """``io`` (decoding, inputs, datasets, ground truth, naming, atomic files) needs nothing of the stage core or
    the parts; ``core`` (workspace, stage, manifest, devices) nothing of the parts; nothing below ``commands`` imports a command, and only commands
    and tests use the generated data of ``synthetic``. Function-level imports count."""
    paths = {_module_name(p): p for folder in FOLDERS for p in (REPO / folder).rglob("*.py")}
    wrong = []
    for name, path in paths.items():
        pieces = name.split(".")
        room = "parts" if len(pieces) > 1 and pieces[1] in PARTS else ".".join(pieces[:2])
        for target in _runtime_imports(path, set(paths)):
            if any(target == above or target.startswith(above + ".") for above in ROOMS_BELOW.get(room, ())):
                wrong.append(f"{name} imports {target}")
    assert {".".join(n.split(".")[:2]) for n in paths} >= set(k for k in ROOMS_BELOW if k != "parts")
    assert not wrong, "a room imports one above it:\n" + "\n".join(sorted(wrong))
