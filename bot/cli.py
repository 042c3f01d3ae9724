"""The `bot` command line (docs/architecture.md, "Pipeline" and "Configuration"): run the bot,
report from the ledger, check the config, and the tools of each stage (feeds discovery, the local
ABP server, risk state, MQTT commands, strategies).

The stages' sub-apps are imported explicitly: a broken CLI module fails `bot` loudly instead of
its command silently disappearing. They, and this module, stay light at import (typer, the
standard library): each command imports what it runs, so `bot --help` loads no engine, ledger,
HTTP or MQTT library (tests/test_cli_imports.py)."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, get_args

import typer

from bot.bus.cli import app as mqtt_app
from bot.config.options import DEFAULT_CONFIG, ConfigOpt, fail, load_or_exit
from bot.execution.cli import app as abp_app
from bot.feeds.cli import app as feeds_app
from bot.feeds.history.cli import app as data_app
from bot.research.cli import backtest
from bot.risk.cli import app as risk_app
from bot.strategy.cli import app as strategy_app

if TYPE_CHECKING:
    from bot.config.settings import Settings

app = typer.Typer(help="Sports-betting execution bot: feeds -> strategies -> risk -> ABP (or paper).",
                  no_args_is_help=True, pretty_exceptions_enable=False)
config_app = typer.Typer(help="Validate or describe the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(feeds_app, name="feeds", help="Odds feed tools: BoltOdds discovery, local BoltOdds server.")
app.add_typer(abp_app, name="abp", help="ABP tools: the local ABP server with fault injection.")
app.add_typer(risk_app, name="risk", help="Risk state: status, halt, resume.")
app.add_typer(mqtt_app, name="mqtt", help="MQTT bus tools: send an operator command, watch events.")
app.add_typer(strategy_app, name="strategy", help="Strategies: list the available ones, start a new one.")
app.add_typer(data_app, name="data", help="Historical odds files: what a file holds, convert to a recording.")
app.command()(backtest)


def _masked(value: Any) -> Any:
    from pydantic import SecretStr

    if isinstance(value, SecretStr):
        return "**********" if value.get_secret_value() else ""
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value if isinstance(value, int | float | str | bool | type(None)) else str(value)


def _load_and_preflight(config: Path, **overrides: Any) -> Settings:
    """The settings of `config` once they pass `bot.config.preflight` (what `bot run` needs
    before it trades); else every problem, one line each on stderr, and exit 2. Nothing is
    created or written (docs/architecture.md, "Configuration")."""
    from bot.config.preflight import preflight

    settings = load_or_exit(config, **overrides)
    problems = preflight(settings, config.resolve().parent)
    if problems:
        fail(*problems)
    return settings


@config_app.command("check")
def config_check(config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Validate the config exactly as `bot run` does before it trades (paths, state dir, log
    settings, strategies and their params) and print the effective values (secrets masked)."""
    settings = _load_and_preflight(config)
    print(json.dumps(_masked(settings.model_dump()), indent=2))
    print(f"config OK: {config} (mode {settings.mode})", file=sys.stderr)  # plain: one line, never wrapped


@config_app.command("schema")
def config_schema() -> None:
    """Print the JSON schema of the config (for editor completion)."""
    from bot.config.settings import Settings

    print(json.dumps(Settings.model_json_schema(), indent=2))


@app.command()
def run(
    config: ConfigOpt = DEFAULT_CONFIG,
    mode: Annotated[str | None, typer.Option(help="paper | live | backtest (overrides the config)")] = None,
    speed: Annotated[float | None, typer.Option(help="replay speed: 0 = as fast as possible")] = None,
    fresh: Annotated[bool, typer.Option(help="start a new ledger; the old one is kept beside it")] = False,
    resume: Annotated[bool, typer.Option(help="resume the interrupted replay (the default when there is "
                                         "one); refuse when there is none")] = False,
) -> None:
    """Run the bot until the replay ends or SIGINT/SIGTERM. One bot per ledger: a second one on
    the same state dir exits 2 naming the first. A replay this ledger already finished is refused
    (`--fresh` for a new ledger); an interrupted one resumes where it stopped, never betting twice."""
    import asyncio

    from loguru import logger

    from bot.config.errors import config_line
    from bot.config.settings import Mode

    if fresh and resume:
        fail("--fresh and --resume exclude each other: --fresh starts a new ledger, --resume continues this one")
    overrides: dict[str, Any] = {}
    if mode is not None:
        if mode not in get_args(Mode):
            fail(config_line("mode", f"must be one of {', '.join(get_args(Mode))} (got {mode!r})", "--mode paper"))
        overrides["mode"] = mode
    settings = _load_and_preflight(config, **overrides)
    if speed is not None and settings.feeds.replay is not None:
        feeds = settings.feeds.model_copy(update={"replay": settings.feeds.replay.model_copy(update={"speed": speed})})
        settings = settings.model_copy(update={"feeds": feeds})

    from sqlalchemy.exc import SQLAlchemyError

    from bot.engine.logs import setup_logging
    from bot.engine.runs import fresh_ledger
    from bot.engine.wiring import BuildError
    from bot.ledger.lock import LedgerBusy, instance_lock
    from bot.ledger.migrations import LedgerSchemaError
    from bot.ledger.store import LedgerUnavailable, describe, unavailable

    lock = instance_lock(settings.ledger_target, settings.instance)
    try:
        lock.acquire()  # held until the process exits; freed by the OS or server if it dies
    except LedgerBusy as exc:
        fail(str(exc))
    except SQLAlchemyError as exc:  # the PostgreSQL ledger cannot be reached
        fail(str(unavailable(describe(settings.ledger_target), exc)))
    log_path = setup_logging(settings)
    if fresh and isinstance(settings.ledger_target, str):
        fail(config_line("ledger.url", "--fresh starts a new SQLite file; a shared PostgreSQL ledger is never "
                         "replaced by the bot", "drop --fresh, or create a new database and point ledger.url at it"))
    if fresh and isinstance(settings.ledger_target, Path) and (kept := fresh_ledger(settings.ledger_target)):
        logger.bind(stage="bot").warning("--fresh: the previous ledger is kept as {}", kept)
    try:
        stats = asyncio.run(_run(settings, config, must_resume=resume))
        if stats is not None and stats.failed:  # a feed failed: one line each (bot/engine/core.py, Engine.run)
            fail(*stats.failed, code=1)
    except (BuildError, LedgerUnavailable, LedgerSchemaError) as exc:
        fail(str(exc))
    finally:
        lock.release()
    logger.bind(stage="bot").info("run finished; ledger {} log {}", settings.ledger_target, log_path)
    raise typer.Exit(1 if stats is None else 0)


async def _run(settings: Settings, config_path: Path, *, must_resume: bool) -> Any:
    import asyncio

    from bot.engine.wiring import build_engine

    engine = await build_engine(settings, config_dir=config_path.resolve().parent, must_resume=must_resume)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, engine.request_stop, f"signal {sig.name}")
    loop.add_signal_handler(signal.SIGUSR1, engine.kill_switch, "SIGUSR1")
    return await engine.run()


@app.command()
def report(
    config: ConfigOpt = DEFAULT_CONFIG,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    db: Annotated[Path | None, typer.Option(help="ledger file (default: state_dir/bot.db)")] = None,
) -> None:
    """Signals, decisions by reason, orders, fills, exposure, settled PnL and ROI; with the Olympus
    feed, the Bet365 account's balance and recent bets as the feed last read them."""
    import orjson
    from rich.console import Console

    from bot.config.errors import config_line
    from bot.ledger.migrations import LedgerSchemaError
    from bot.ledger.report import build_report, render_report
    from bot.ledger.store import LedgerUnavailable
    from bot.sim.settlement import configured_results

    settings = load_or_exit(config)
    live = settings.mode == "live"
    try:  # paper/backtest: the results files name which open bets can never settle
        results = None if live else configured_results(settings.settlement, config.resolve().parent)
    except ValueError as exc:
        field, _, why = str(exc).partition(": ")
        fail(config_line(field, why, "point it at an existing results CSV"))
    try:
        data = build_report(db or settings.ledger_target, results=results, venue_settles=live,
                            dedupe_window_seconds=settings.risk.duplicate_window_seconds)
    except FileNotFoundError as exc:
        fail(str(exc), code=1)
    except (LedgerUnavailable, LedgerSchemaError) as exc:
        fail(str(exc))
    account = None
    if settings.feeds.olympus is not None:  # the Bet365 account as the Olympus feed last read it
        from bot.feeds.olympus import saved_account

        account = saved_account(settings.state_dir)
        if account is not None:
            data["bet365_account"] = {"balance": str(account[0].balance), "currency": account[0].currency,
                                      "bets": account[0].bets, "at": account[1]}
    if as_json:
        sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        console = Console()
        render_report(data, console)
        if account is not None:
            console.print(f"\nBet365 account (Olympus, read {account[1]}):")
            for line in account[0].lines():
                console.print(line, markup=False, highlight=False)


def main() -> None:  # pragma: no cover - console script entry
    app()
