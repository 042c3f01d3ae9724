"""`bot --help` stays light (bot/cli.py): importing the command line loads typer and the standard
library, not the engine's libraries (the ledger's SQL stack, HTTP, MQTT, pydantic, loguru); each
command imports what it runs. And the light CLI still mounts every command.

Checked in fresh interpreters, as `bot` starts: `import bot.cli` then `sys.modules`, and
`python -m bot --help` (bot/__main__.py) then its output against the commands the typer app
registers.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

from bot.bus import auth
from bot.bus import cli as bus_cli
from bot.cli import app
from tests.engine.conftest import bot_env

ROOT = Path(__file__).resolve().parents[1]

# imported by `import bot.cli` before the commands imported their own dependencies; none is
# needed to print help (typer renders it with rich, which it imports itself)
HEAVY = ("sqlalchemy", "sqlmodel", "httpx", "aiomqtt", "paho", "pydantic", "pydantic_settings", "loguru", "yaml",
         "orjson", "asyncio", "bot.ledger", "bot.config.settings", "bot.feeds.boltodds_rest", "bot.bus.connection",
         "bot.engine", "bot.sim", "bot.market")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, check=False, cwd=ROOT,
                          env=bot_env({"COLUMNS": "200", "TERM": "dumb"}), timeout=60)


@pytest.fixture(scope="module")
def cli_modules() -> set[str]:
    result = _run("-c", "import bot.cli, sys; print(sorted(m for m in sys.modules))")
    assert result.returncode == 0, result.stderr
    return set(ast.literal_eval(result.stdout))


@pytest.mark.parametrize("package", HEAVY)
def test_importing_the_cli_loads_no_heavy_library(cli_modules: set[str], package: str) -> None:
    loaded = sorted(m for m in cli_modules if m == package or m.startswith(f"{package}."))
    assert loaded == []


def _listed(help_text: str) -> set[str]:
    """The first word of each row of help's boxed panels (rich draws the box, `│` or `|`)."""
    return set(re.findall(r"^\W (\S+)", help_text, re.MULTILINE))


def _group(command: object) -> dict[str, object]:
    assert isinstance(command, TyperGroup)
    return dict(command.commands)


def test_help_lists_every_command_the_app_registers() -> None:
    top = _group(typer.main.get_command(app))
    groups = {info.name for info in app.registered_groups}
    commands = {info.name or info.callback.__name__.replace("_", "-")
                for info in app.registered_commands if info.callback is not None}
    assert set(top) == groups | commands
    assert groups == {"config", "feeds", "abp", "risk", "mqtt", "strategy", "data"}  # every stage's sub-app is mounted

    result = _run("-m", "bot", "--help")
    assert result.returncode == 0, result.stderr
    assert set(top) <= _listed(result.stdout), result.stdout

    runner = CliRunner()
    for name in groups:
        sub = runner.invoke(app, [name, "--help"], env={"COLUMNS": "200", "TERM": "dumb"})
        assert sub.exit_code == 0, sub.output
        assert set(_group(top[name])) <= _listed(sub.output), sub.output


def test_mqtt_send_help_names_the_bus_commands() -> None:
    assert bus_cli.COMMANDS_HELP == " | ".join(auth.COMMANDS)
