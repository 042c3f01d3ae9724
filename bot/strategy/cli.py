"""`bot strategy list|new` (docs/architecture.md, "Strategies"): what strategies there are and
what they accept, and a new strategy file that runs at once. Mounted by bot/cli.py.

`list` prints the entry points of the `bot.strategies` group (built-in and installed) and the
strategies the config names, with their params; it exits 1 when one of them cannot be loaded.
`new` writes `DIR/NAME.py` (never over an existing file) and prints, on stdout and nothing else,
the YAML lines that run it. Each command imports what it runs, so `bot --help` stays light
(bot/cli.py).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from bot.config.options import DEFAULT_CONFIG, ConfigOpt, fail, load_or_exit

app = typer.Typer(help="Strategies: list the available ones, start a new one.", no_args_is_help=True)

ListConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="also list the strategies this config names "
                 "(default: ./config.yaml when it exists)"),
]


def _print_params(params: list[dict[str, Any]]) -> None:
    for p in params:
        default = "required" if p["required"] else f"default {json.dumps(p['default'])}"
        limits = f"  [{', '.join(p['constraints'])}]" if p["constraints"] else ""
        print(f"    {p['name']:<24} {p['type']:<14} {default:<22} {p['description']}{limits}")


def _print_text(data: dict[str, Any]) -> None:
    from bot.strategy.loader import ENTRY_POINT_GROUP

    print(f"Installed strategies (entry points of group {ENTRY_POINT_GROUP!r}; use the name as `path:`):")
    installed_classes = set()
    for s in data["installed"]:
        print(f"\n  {s['name']}  ->  {s['path']}")
        if "error" in s:
            print(f"    ERROR: {s['error']}")
            continue
        installed_classes.add(s["class"])
        print(f"    {s['summary']}")
        _print_params(s["params"])
    if data["config"] is None:
        return
    print(f"\nConfigured in {data['config']}:")
    for s in data["configured"]:
        state = "" if s["enabled"] else "  (disabled)"
        print(f"\n  {s['name']}  ->  {s['path']}{state}")
        if "class" in s and s["class"] not in installed_classes:
            print(f"    {s['file'] or s['class']}: {s['summary']}")
            _print_params(s["params"])
        if "error" in s:
            print(f"    ERROR: {s['error']}")
        else:
            print(f"    params: {json.dumps(s['values'])}")


@app.command("list")
def list_strategies(
    config: ListConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Installed strategies and the config's, with params: type, default, description."""
    from bot.strategy.catalog import configured_strategies, installed_strategies

    path = config if config is not None or not DEFAULT_CONFIG.is_file() else DEFAULT_CONFIG
    data: dict[str, Any] = {"installed": installed_strategies(), "config": None, "configured": []}
    if path is not None:
        data |= {"config": str(path), "configured": configured_strategies(load_or_exit(path))}
    if as_json:
        print(json.dumps(data, indent=2))
    else:
        _print_text(data)
    broken = [s for s in data["installed"] if "error" in s]
    broken += [s for s in data["configured"] if "error" in s and s["enabled"]]
    if broken:
        raise typer.Exit(1)


def _config_relative(directory: Path, config: Path) -> str:
    """`directory` as config.yaml names it: relative to the config's folder when inside it."""
    relative = os.path.relpath(directory.resolve(), config.resolve().parent)
    return str(directory.resolve()) if relative.startswith("..") else relative


@app.command()
def new(
    name: Annotated[str, typer.Argument(help="strategy name: a Python identifier, e.g. longshots")],
    directory: Annotated[Path, typer.Option("--dir", help="folder of the new file")] = Path("strategies"),
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """Write DIR/NAME.py, a commented strategy that runs as it is, and print the config.yaml
    lines that run it (the config is only used to word `strategy_dirs`; it need not exist)."""
    from bot.strategy.scaffold import ScaffoldError, config_yaml, write_strategy

    strategy_dir = _config_relative(directory, config)
    try:
        target = write_strategy(name, directory, strategy_dir)
    except ScaffoldError as exc:
        fail(str(exc), code=1)
    print(f"wrote {target}; add these lines to {config} (`strategy_dirs` relative to its folder):",
          file=sys.stderr)
    sys.stdout.write(config_yaml(name, strategy_dir))
