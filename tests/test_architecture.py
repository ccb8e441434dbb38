"""The package's shape: its imports form a tree you can draw, and the contract loads nothing of
the runtime. Every import statement counts — at module level, under TYPE_CHECKING and inside a
function — so that no lazy import is there only to hide a cycle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "runner"


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The runner modules ``name`` imports, wherever the import statement stands."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    edges: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            edges |= {alias.name for alias in node.names if alias.name in known}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                if full in known:
                    edges.add(full)
                elif base in known:
                    edges.add(base)
    return edges - {name}


def graph() -> dict[str, set[str]]:
    """Module → the modules it imports; ``runner`` itself, the public API loaded on first use,
    is left out (everything imports the package it lives in)."""
    known = modules()
    return {
        name: imports(name, path, known) - {"runner"}
        for name, path in known.items()
        if name != "runner"
    }


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while (top := stack.pop()) != node:
                group.append(top)
            if group:
                found.append(sorted([node, *group]))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_architecture_imports_form_a_dag() -> None:
    assert cycles(graph()) == []


def test_architecture_finds_a_cycle_it_is_shown() -> None:
    """The check itself works: a cycle hidden in a function-local import is found."""
    edges = graph()
    edges["runner.checks.base"] = edges["runner.checks.base"] | {"runner.context"}
    assert ["runner.checks.base", "runner.context"] in [
        [m for m in group if m in ("runner.checks.base", "runner.context")]
        for group in cycles(edges)
    ]


def test_architecture_public_api_is_loaded_on_first_use() -> None:
    """``runner/__init__.py`` imports no module of its own at run time (TYPE_CHECKING only)."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    at_run_time = [
        node
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("runner")
    ]
    assert at_run_time == []


@pytest.mark.parametrize(
    "module",
    ["runner.checks.base", "runner.spec", "runner.threshold", "runner.statements"],
)
def test_architecture_the_contract_imports_nothing_of_the_runtime(module: str) -> None:
    runtime = {"runner.context", "runner.plan", "runner.engine", "runner.explain", "runner.cli"}
    reachable: set[str] = set()
    todo = [module]
    edges = graph()
    while todo:
        for nxt in edges[todo.pop()] - reachable:
            reachable.add(nxt)
            todo.append(nxt)
    assert reachable & runtime == set()


def test_architecture_params_load_no_check_no_sqlalchemy_no_gx() -> None:
    code = (
        "import sys, runner.params; "
        "print(sorted(m for m in sys.modules if m.startswith(('runner.checks', 'sqlalchemy', "
        "'great_expectations', 'duckdb', 'pandera'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_architecture_check_modules_load_when_the_registry_is_asked_for() -> None:
    code = (
        "import sys, runner.checks; before = 'runner.checks.row_count' in sys.modules; "
        "runner.checks.registry(); print(before, 'runner.checks.row_count' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False True"
