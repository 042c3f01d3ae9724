"""Nothing on the live path imports the simulators (docs/architecture.md, "Pipeline" and
"Simulators"): `bot.execution` and `bot.feeds` import `bot.sim` only inside the CLI commands that
start a local server, a live engine loads no `bot.sim` module, and a paper engine runs without the
`sim` extra (starlette, uvicorn).

Checked twice: statically over every import statement, and in fresh interpreters that import or
build the real thing and then list `sys.modules`.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.engine.conftest import bot_env, write_config

ROOT = Path(__file__).resolve().parents[1]
BOT = ROOT / "bot"
SIM_EXTRA = ("starlette", "uvicorn")


def _imports(tree: ast.AST) -> list[tuple[str, ast.AST | None]]:
    """Every imported module name with the function it is imported in (None: module level)."""
    found: list[tuple[str, ast.AST | None]] = []

    def visit(node: ast.AST, function: ast.AST | None) -> None:
        if isinstance(node, ast.Import):
            found.extend((alias.name, function) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, function))
        for child in ast.iter_child_nodes(node):
            inner = child if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else function
            visit(child, inner)

    visit(tree, None)
    return found


def _is_sim(module: str) -> bool:
    return module == "bot.sim" or module.startswith("bot.sim.") or module.split(".")[0] in SIM_EXTRA


def _live_path_files() -> list[Path]:
    return sorted([*(BOT / "execution").rglob("*.py"), *(BOT / "feeds").rglob("*.py")])


def test_execution_and_feeds_import_the_simulators_only_inside_cli_commands() -> None:
    offenders = []
    cli_imports = 0
    for path in _live_path_files():
        for module, function in _imports(ast.parse(path.read_text())):
            if not _is_sim(module):
                continue
            if path.name == "cli.py" and function is not None:
                cli_imports += 1
            else:
                offenders.append(f"{path.relative_to(ROOT)}: {module}")
    assert offenders == []
    assert cli_imports >= 2  # the checker sees the two server commands' own imports


def test_the_import_checker_sees_module_level_and_function_imports() -> None:
    tree = ast.parse("import bot.sim.paper\ndef f():\n    from starlette.routing import Route\n")
    [(first, at_module), (second, in_function)] = _imports(tree)
    assert (first, at_module) == ("bot.sim.paper", None)
    assert second == "starlette.routing" and isinstance(in_function, ast.FunctionDef)


def _loaded_after(script: str, cwd: Path) -> list[str]:
    """Run `script` in a fresh interpreter; the simulator modules loaded at its end."""
    report = (
        "\nimport sys\n"
        "loaded = [m for m, module in sys.modules.items() if module is not None]  # None: made unimportable\n"
        f"print('\\n'.join(sorted(m for m in loaded if m == 'bot.sim' or m.startswith('bot.sim.') "
        f"or m.split('.')[0] in {SIM_EXTRA!r})))\n"
    )
    result = subprocess.run([sys.executable, "-c", script + report], capture_output=True, text=True, check=False,
                            cwd=cwd, env=bot_env(), timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.split()


def test_importing_execution_feeds_and_the_cli_loads_no_simulator() -> None:
    modules = sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts[:-1] if p.name == "__init__.py"
                 else p.relative_to(ROOT).with_suffix("").parts)
        for p in _live_path_files()
    )
    assert {"bot.execution.executor", "bot.execution.abp_venue", "bot.feeds.boltodds"} <= set(modules)
    script = "import importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules + ["bot.cli"])
    assert _loaded_after(script, ROOT) == []
    # The same check does see the simulators once something imports them.
    assert "starlette" in _loaded_after(script + "import bot.sim.abp_server\n", ROOT)


def _build(config: Path) -> str:
    """A script that builds the engine of `config` with the sim extra made unimportable."""
    return (
        "import asyncio, sys\n"
        + "".join(f"sys.modules[{m!r}] = None\n" for m in SIM_EXTRA)
        + "from pathlib import Path\n"
        "from bot.config.settings import load_settings\n"
        "from bot.engine.wiring import build_engine\n"
        f"config = Path({str(config)!r})\n"
        "engine = asyncio.run(build_engine(load_settings(config), config_dir=config.parent))\n"
        "engine.ledger.close()\n"
    )


def test_a_live_engine_loads_no_simulator(tmp_path: Path) -> None:
    config = write_config(tmp_path, mode="live", abp={"api_key": "not-used"})
    assert _loaded_after(_build(config), tmp_path) == []


def test_a_paper_engine_needs_no_sim_extra(tmp_path: Path) -> None:
    # Built with starlette and uvicorn unimportable: any import of them fails the build.
    loaded = _loaded_after(_build(write_config(tmp_path)), tmp_path)
    assert {"bot.sim.paper", "bot.sim.adapters", "bot.sim.settlement"} <= set(loaded)
