"""`bot risk status|halt|resume`: read and change the persisted trading state in the ledger
(docs/architecture.md, "Risk").

Each command reads `-c/--config` (default config.yaml) for the ledger's folder (`state_dir`,
relative to the config file's folder) and the trading day's zone (`risk.day_timezone`);
`--state-dir` overrides the folder. The rules are the bot's own: `TradingControl` and
`PositionBook.from_ledger`, the same code the RiskManager runs. A running bot adopts a change
made here within a second (it sees the record's higher `rev`); a stopped bot restores it at start.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bot.clock import WallClock
from bot.config.options import DEFAULT_CONFIG, ConfigOpt, load_or_exit

if TYPE_CHECKING:  # the ledger loads sqlalchemy: imported by the commands, so `bot --help` stays light
    from bot.ledger.store import Ledger
    from bot.risk.control import TradingControl

app = typer.Typer(help="Risk state: status, halt, resume.", no_args_is_help=True)
StateDirOpt = Annotated[
    Path | None, typer.Option("--state-dir", help="directory holding bot.db and the KILL file (default: the config's)")
]


def _open(config: Path, state_dir: Path | None) -> tuple[Ledger, TradingControl]:
    """The ledger and its trading control, as the config (or --state-dir) names them."""
    from bot.ledger.migrations import LedgerSchemaError
    from bot.ledger.store import Ledger, LedgerUnavailable
    from bot.risk.control import TradingControl

    settings = load_or_exit(config)
    if state_dir is None:
        state_dir = config.parent / settings.state_dir  # a relative state_dir is the config folder's
    db: Path | str = state_dir / "bot.db" if settings.ledger.url is None else settings.ledger_target
    if isinstance(db, Path) and not db.is_file():
        typer.echo(f"risk: no ledger at {db}; fix: pass the bot's --config (or --state-dir)", err=True)
        raise typer.Exit(2)
    try:
        ledger = Ledger(db)
    except (LedgerUnavailable, LedgerSchemaError) as exc:  # one line naming the file and the fix
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    risk = settings.risk
    return ledger, TradingControl(ledger, WallClock(), zone=risk.day_timezone, state_dir=state_dir,
                                  emergency_action=risk.emergency_action, emergency_resume=risk.emergency_resume)


def status_figures(ledger: Ledger, control: TradingControl) -> dict[str, Any]:
    """Trading state, settled PnL of the trading day and overall, open orders/bets and exposure."""
    from bot.risk.positions import PositionBook

    summary = PositionBook.from_ledger(ledger).summary()
    return control.snapshot() | control.pnl() | {
        "open_orders": summary.open_orders, "open_bets": summary.open_bets, "exposure": summary.to_json(),
    }


@app.command()
def status(config: ConfigOpt = DEFAULT_CONFIG, state_dir: StateDirOpt = None,
           as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False) -> None:
    """Trading state, settled PnL today and overall, open orders/bets and worst-case exposure."""
    ledger, control = _open(config, state_dir)
    try:
        figures = status_figures(ledger, control)
    finally:
        ledger.close()
    if as_json:
        typer.echo(json.dumps(figures))
        return
    from rich.console import Console
    from rich.table import Table

    exposure = figures.pop("exposure")
    table = Table(title="risk status", show_header=False)
    for key, value in figures.items():
        table.add_row(key, str(value))
    table.add_row("exposure", exposure["total"])
    for strategy, amount in exposure["by_strategy"].items():
        table.add_row(f"  {strategy}", amount)
    if exposure["by_market"]:
        table.add_row("market worst case", "")
    for market, loss in exposure["by_market"].items():
        table.add_row(f"  {market}", loss)
    Console().print(table)


@app.command()
def halt(reason: Annotated[str, typer.Option(help="why (stored with the state)")] = "operator halt (CLI)",
         config: ConfigOpt = DEFAULT_CONFIG, state_dir: StateDirOpt = None) -> None:
    """HALT trading: no new orders; a running bot cancels its pending orders."""
    ledger, control = _open(config, state_dir)
    try:
        control.halt(reason)
    finally:
        ledger.close()
    typer.echo(f"risk: HALTED ({reason})")


@app.command()
def resume(config: ConfigOpt = DEFAULT_CONFIG, state_dir: StateDirOpt = None) -> None:
    """Resume to ACTIVE, acknowledging today's loss and the drawdown (refused while the venue
    emergency is active or the KILL file exists)."""
    from bot.risk.control import ResumeRefused

    ledger, control = _open(config, state_dir)
    try:
        control.resume()
    except ResumeRefused as exc:
        typer.echo(f"risk: resume refused: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        ledger.close()
    typer.echo("risk: ACTIVE")
