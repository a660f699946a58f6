"""The Lambda layer ships only what the functions run: no tools, no undeclared dependency, no cycle, small modules.

`sam build` installs the layer from layers/shared/requirements.txt alone, and the runtime adds boto3/botocore,
so an import of anything else works on a laptop and fails in Lambda. These checks read the source with `ast`.
"""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

from lineage_intake_tools.local.template import ROOT

LAYER = ROOT / "layers" / "shared"
PACKAGE = LAYER / "lineage_intake"
FUNCTIONS = ROOT / "functions"
#: What the Lambda python runtime provides besides the standard library.
RUNTIME = {"boto3", "botocore"}
MAX_LINES = 600


def _module_name(path: Path) -> str:
    parts = path.relative_to(LAYER).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at module level or inside functions (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = _module_name(path).split(".")
                package = package[: len(package) - node.level + (1 if path.name == "__init__.py" else 0)]
                base = ".".join([*package, base] if base else package)
            found.add(base)
            # ``from pkg import module`` imports the module when it is one
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def _layer_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _declared_distributions() -> set[str]:
    names = set()
    for line in (LAYER / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(re.split(r"[\[=<>!~; ]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return names


def test_the_layer_imports_nothing_from_the_tools() -> None:
    # Given every module of the layer and every function's handler
    files = [*_layer_files(), *FUNCTIONS.glob("*/app.py")]
    # When their imports are read
    offenders = {
        str(f.relative_to(ROOT)): sorted(i for i in _imports(f) if i.startswith("lineage_intake_tools")) for f in files
    }
    # Then none of them reaches into lineage_intake_tools
    assert {f: i for f, i in offenders.items() if i} == {}


def test_every_third_party_import_of_the_layer_is_declared_in_its_requirements_or_given_by_the_runtime() -> None:
    # Given the distributions the layer installs and the packages that provide each import name
    declared = _declared_distributions()
    providers = packages_distributions()
    assert {"aws-lambda-powertools", "pydantic"} <= declared
    # When every top-level import of the layer and the handlers is resolved to its distribution
    undeclared: dict[str, list[str]] = {}
    for path in [*_layer_files(), *FUNCTIONS.glob("*/app.py")]:
        for name in {i.split(".")[0] for i in _imports(path)}:
            if not name or name in sys.stdlib_module_names or name in RUNTIME or name == "lineage_intake":
                continue
            distributions = {d.lower().replace("_", "-") for d in providers.get(name, [])}
            if not distributions & declared:
                undeclared.setdefault(name, []).append(str(path.relative_to(ROOT)))
    # Then each one is installed by layers/shared/requirements.txt (or comes with the runtime)
    assert undeclared == {}


def test_the_layer_has_no_import_cycle() -> None:
    # Given the graph of imports between the layer's own modules
    modules = {_module_name(f): f for f in _layer_files()}
    graph = {name: {i for i in _imports(path) if i in modules and i != name} for name, path in modules.items()}
    # A package's __init__ is imported by its submodules implicitly; only explicit edges count.
    # When it is searched depth first
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*trail[trail.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    # Then no module imports itself through others
    assert len(modules) > 15 and cycles == []


def test_no_module_of_the_layer_is_over_600_lines() -> None:
    # Given every module of the layer
    sizes = {str(f.relative_to(LAYER)): len(f.read_text(encoding="utf-8").splitlines()) for f in _layer_files()}
    # Then each one reads as one concern
    assert sizes and {f: n for f, n in sizes.items() if n > MAX_LINES} == {}
