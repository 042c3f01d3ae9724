"""The `-c/--config` option every command line shares, and how a command reports a bad config
(docs/architecture.md, "Configuration"): one plain line per problem on stderr, exit code 2.

Each `bot` subcommand that reads settings or state takes `ConfigOpt` (default `config.yaml`) and
loads it with `load_or_exit`, so it sees the same state dir and broker as `bot run` with that
config.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:  # the settings models pull pydantic in: loaded when a command reads a config
    from bot.config.settings import Settings

DEFAULT_CONFIG = Path("config.yaml")
ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="YAML config file")]


def fail(*lines: str, code: int = 2) -> NoReturn:
    """Print plain, unwrapped error lines (one per problem) on stderr and exit with `code`."""
    for line in lines:
        print(line, file=sys.stderr)
    raise typer.Exit(code)


def load_or_exit(config: Path, **overrides: Any) -> Settings:
    """The settings of `config`; on a bad config its error lines and exit code 2."""
    from bot.config.settings import ConfigError, load_settings

    try:
        return load_settings(config, **overrides)
    except ConfigError as exc:
        fail(*exc.lines)
