"""The code reads in one direction: each stage imports only from itself and earlier stages,
and no module grows past a size a reader can hold. Imports inside functions count too."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "archspec"

# The pipeline, in order. A module belongs to the first stage whose prefix it has.
STAGES = [
    ("core", ("archspec.errors", "archspec.fmt", "archspec.jsonout", "archspec.hugepages",
              "archspec.reading", "archspec.cachedirs")),
    ("layers", ("archspec.layers",)),
    ("spec", ("archspec.spec",)),
    ("model", ("archspec.model",)),
    ("weights", ("archspec.weights",)),
    ("data", ("archspec.data",)),
    ("engine", ("archspec.engine",)),
    ("runs", ("archspec.runs",)),
    ("experiment", ("archspec.experiment",)),
    ("train", ("archspec.train",)),
    ("use", ("archspec.use",)),
    ("viz", ("archspec.viz",)),
    ("ui", ("archspec.ui",)),
    ("commands", ("archspec.commands",)),
    ("cli", ("archspec.cli_base", "archspec.cli_io", "archspec.cli", "archspec.__main__")),
]
MAX_LINES = 400

# Known debts, each to be paid (and removed from here), never added to.
ALLOWED_IMPORTS: set[tuple[str, str]] = set()
ALLOWED_LONG: set[str] = set()


def stage_of(module: str) -> int:
    if module == "archspec":
        return 0  # the package itself holds only the version
    for i, (_, prefixes) in enumerate(STAGES):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return i
    raise AssertionError(f"{module} belongs to no stage: add it to STAGES or move it")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    mod = module_name(path)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.add(name)
            # `from archspec import layers` imports the subpackage archspec.layers
            for a in node.names:
                sub = f"{name}.{a.name}"
                if (PACKAGE.parent / sub.replace(".", "/")).exists() or \
                        (PACKAGE.parent / (sub.replace(".", "/") + ".py")).exists():
                    found.add(sub)
    return {n for n in found if n == "archspec" or n.startswith("archspec.")}


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_stage():
    for path in SOURCES:
        stage_of(module_name(path))


def test_no_module_imports_from_a_later_stage():
    backwards = set()
    for path in SOURCES:
        mod = module_name(path)
        for dep in imports(path):
            if stage_of(dep) > stage_of(mod):
                backwards.add((mod, dep))
    new = sorted(backwards - ALLOWED_IMPORTS)
    assert not new, "imports against the pipeline: " + ", ".join(f"{a} -> {b}" for a, b in new)
    paid = sorted(ALLOWED_IMPORTS - backwards)
    assert not paid, f"remove paid debts from ALLOWED_IMPORTS: {paid}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_stay_small(path):
    rel = str(path.relative_to(PACKAGE))
    lines = len(path.read_text().splitlines())
    if rel in ALLOWED_LONG:
        assert lines > MAX_LINES, f"{rel} is short now: remove it from ALLOWED_LONG"
    else:
        assert lines <= MAX_LINES, f"{rel} has {lines} lines (at most {MAX_LINES}): split it"


def _module_level_imports(path: Path) -> set[str]:
    """The archspec modules `path` imports when it is itself imported (not inside functions)."""
    tree = ast.parse(path.read_text())
    top = ast.Module(body=[n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))],
                     type_ignores=[])
    mod = module_name(path)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    found = set()
    for node in top.body:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif node.level:
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            found.add(".".join(base + ([node.module] if node.module else [])))
        else:  # `from pkg import sub` needs pkg.sub; `from pkg import name` needs pkg
            subs = {f"{node.module}.{a.name}" for a in node.names}
            known = {s for s in subs if s in MODULES}
            found |= known | ({node.module} if known != subs else set())
    return {n for n in found if n.startswith("archspec.")}


MODULES = {module_name(p) for p in SOURCES}


def test_no_import_cycle_between_modules():
    """Two modules that import each other at the top (directly or round a longer loop) can
    only be loaded in one order: a cycle is a split that was made in the wrong place."""
    names = {module_name(p): p for p in SOURCES}
    graph = {m: {d for d in _module_level_imports(p) if d in names and d != m}
             for m, p in names.items()}
    cycles, state = [], {}

    def visit(m, path):
        state[m] = "open"
        for d in sorted(graph[m]):
            if state.get(d) == "open":
                cycles.append(" -> ".join(path[path.index(d):] + [d]))
            elif d not in state:
                visit(d, path + [d])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, "import cycles: " + "; ".join(cycles)


MAX_FUNCTION_LINES = 60
# Functions that are tables in code form: one branch per case, read one case at a time.
TABLE_LIKE = {
    "spec/expr.py:_ev",                # one branch per expression node kind
    "spec/locate.py:_report",          # one message per pydantic error type
    "spec/yaml_loader.py:_yaml_error",  # one message per YAML parser error
}


def test_functions_stay_short():
    long = set()
    for path in SOURCES:
        rel = str(path.relative_to(PACKAGE))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                    node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES:
                long.add(f"{rel}:{node.name}")
    assert not long - TABLE_LIKE, f"functions over {MAX_FUNCTION_LINES} lines: {sorted(long - TABLE_LIKE)}"
    assert not TABLE_LIKE - long, f"short now, remove from TABLE_LIKE: {sorted(TABLE_LIKE - long)}"


DOCUMENTED_STAGES = {"layers", "spec", "model", "data", "engine", "runs", "experiment", "train",
                     "use", "viz", "ui", "commands"}


def test_design_doc_names_every_module():
    """docs/design.md's map of the package names every file: a newcomer finds each there."""
    design = (PACKAGE.parent / "docs" / "design.md").read_text()
    missing = [str(p.relative_to(PACKAGE)) for p in SOURCES
               if p.name != "__init__.py" and p.parent.name in DOCUMENTED_STAGES
               and f"`{p.name}`" not in design and f"{p.parent.name}/{p.name}" not in design]
    assert not missing, f"docs/design.md does not name: {missing}"
