"""The shape of the code: no import circles inside engine/, and one home for the run statuses.

Both checks read the source with Python's ``ast``, so imports inside functions
count too (a lazy import still makes two modules depend on each other).
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
ENGINE = REPO_ROOT / "engine"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The engine modules that ``path`` imports anywhere in its body (resolved to modules, not names)."""
    found: set[str] = set()
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # "from engine.jobs import control" imports the module engine.jobs.control;
            # "from engine.store import Store" imports the package engine.store.
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {_module_name(path): path for path in ENGINE.rglob("*.py")}
    modules = set(paths)
    graph = {}
    for name, path in paths.items():
        edges = _imports(path, modules) - {name}
        # Importing ``a.b.c`` from outside the package ``a.b`` runs ``a/b/__init__.py`` first, so the
        # importer depends on that package too. (A submodule importing its own package is how Python
        # loads it anyway; it is a circle only when the package also imports the submodule.)
        for target in list(edges):
            package = target.rpartition(".")[0]
            while package:
                if package in modules and name != package and not name.startswith(package + "."):
                    edges.add(package)
                package = package.rpartition(".")[0]
        graph[name] = edges - {name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
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
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_engine_has_no_import_circles():
    cycles = _cycles(import_graph())
    assert cycles == [], "import circles inside engine/: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_the_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


# ------------------------------------------------------------------ statuses
STATUS_HOME = ENGINE / "runs.py"
APP_SOURCES = [*ENGINE.rglob("*.py"), *(REPO_ROOT / "ui").rglob("*.py"), *(REPO_ROOT / "app_pages").rglob("*.py"),
               REPO_ROOT / "streamlit_app.py"]


def _status_literals(source: str, where: str, statuses: set[str]) -> list[str]:
    """``where:line 'value'`` for each string constant equal to a status (docstrings excepted)."""
    tree = ast.parse(source, filename=where)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        f"{where}:{node.lineno} {node.value!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.strip() in statuses
        and id(node) not in docstrings
    ]


def test_no_status_string_literals_outside_the_runs_module():
    from engine.runs import RunStatus

    statuses = {status.value for status in RunStatus}
    found = [
        hit
        for path in APP_SOURCES
        if path != STATUS_HOME
        for hit in _status_literals(path.read_text(), str(path.relative_to(REPO_ROOT)), statuses)
    ]
    assert found == [], "status strings outside engine/runs.py (use RunStatus): " + ", ".join(found)


def test_the_status_literal_check_finds_one_and_skips_docstrings():
    source = 'def f(run):\n    """running"""\n    return run.status == "finished"\n'
    assert _status_literals(source, "example.py", {"finished", "running"}) == ["example.py:3 'finished'"]
