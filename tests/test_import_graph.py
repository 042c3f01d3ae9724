"""The package layout shows the pipeline and has no import cycles (docs/architecture.md, Pipeline).

Two views of the same property: the static graph of module-level imports between `bot` modules has
no cycle, and every module imports on its own, first, in a fresh set of `bot` modules (a cycle
that only bites in one import order shows up there).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "bot"
# Run by Alembic as a script with its migration context set up, never imported.
SCRIPTS = {"bot.ledger.revisions.env"}
STAGES = ["feeds", "market", "strategy", "risk", "execution", "ledger", "sim", "engine", "config", "bus"]


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    found = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if p.name != "__main__.py"}
    return {name: path for name, path in found.items() if name not in SCRIPTS}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level_imports(tree: ast.Module, modules: set[str]) -> set[str]:
    """Modules of `bot` that a module imports when it is itself imported (not inside functions,
    not under TYPE_CHECKING). `from a.b import c` counts `a.b.c` when that is a module."""
    found: set[str] = set()
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and not _is_type_checking(node):
            pending.extend(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            pending.extend(node.body + node.orelse + node.finalbody)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
    return found & modules


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module, or a module importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph[node]:
                out.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out


def test_static_import_graph_has_no_cycle() -> None:
    modules = _modules()
    names = set(modules)
    graph = {name: _module_level_imports(ast.parse(path.read_text()), names) - {name} for name, path in modules.items()}
    assert sum(len(v) for v in graph.values()) > 50  # the parser sees the real imports
    assert _cycles(graph) == []


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_module_imports_alone() -> None:
    """Each module is imported first, in a forked child of an interpreter that has loaded no `bot`
    module yet (forking keeps it fast: the third-party libraries are loaded once)."""
    names = sorted(_modules())
    script = (
        "import importlib, os, sys\n"
        "import pydantic, sqlalchemy, sqlmodel, typer, httpx, loguru  # shared, loaded once\n"
        "failed = []\n"
        f"for name in {names!r}:\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        try:\n"
        "            importlib.import_module(name)\n"
        "        except BaseException as exc:\n"
        "            print(f'{name}: {type(exc).__name__}: {exc}', flush=True)\n"
        "            os._exit(1)\n"
        "        os._exit(0)\n"
        "    _, status = os.waitpid(pid, 0)\n"
        "    if status != 0:\n"
        "        failed.append(name)\n"
        "print('failed:', failed)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip().splitlines()[-1] == "failed: []", result.stdout
    assert len(names) > 60


def test_the_tree_reads_as_the_pipeline() -> None:
    for stage in STAGES:
        assert (PACKAGE / stage / "__init__.py").is_file(), stage
    assert not (ROOT / "strategies" / "__init__.py").exists()  # no top-level package to shadow a user's
