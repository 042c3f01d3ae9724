"""`bot risk ...`: read and change the persisted trading state in the ledger (state/bot.db).

A running bot adopts a change made here on its next signal (RiskManager.sync_state, which sees
the record's higher `rev`); a stopped bot restores it at start.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table

from bot.ledger.store import Ledger
from bot.risk.exposure import order_exposure, worst_case_loss
from bot.risk.manager import KILL_FILE
from bot.risk.state import STATE_KEY, ResumeRefused, TradingRecord, TradingState
from bot.types import Side

app = typer.Typer(help="Risk state: status, halt, resume.", no_args_is_help=True)
StateDir = Annotated[Path, typer.Option("--state-dir", help="directory holding bot.db and the KILL file")]
Zone = Annotated[str, typer.Option("--tz", help="time zone of the trading day (risk.day_timezone)")]


def _open(state_dir: Path) -> Ledger:
    db = state_dir / "bot.db"
    if not db.is_file():
        typer.echo(f"risk: no ledger at {db}; fix: pass --state-dir of the bot", err=True)
        raise typer.Exit(2)
    return Ledger(db)


def _day(zone: str) -> tuple[str, datetime]:
    tz = ZoneInfo(zone)
    local = datetime.now(UTC).astimezone(tz)
    return local.date().isoformat(), datetime.combine(local.date(), time(0), tz).astimezone(UTC)


def _status(ledger: Ledger, state_dir: Path, zone: str) -> dict[str, Any]:
    rec = TradingRecord.from_dict(ledger.get_state(STATE_KEY))
    day, start = _day(zone)
    orders = {o.request_uuid: o for o in ledger.open_orders()}
    exposure = sum((order_exposure(o) for o in orders.values()), Decimal(0))
    bets = ledger.open_bets()
    for bet in bets:
        order = orders.get(bet.request_uuid) or ledger.get_order(bet.request_uuid)
        back = order is None or order.back
        exposure += worst_case_loss(Side.BACK if back else Side.LAY, bet.placed_stake, bet.placed_price)
    return {
        "state": rec.state.value, "reason": rec.reason, "since": rec.since,
        "emergency": rec.emergency, "emergency_reason": rec.emergency_reason,
        "kill_file": (state_dir / KILL_FILE).exists(),
        "day": day, "day_pnl": str(ledger.settled_pnl(since=start)), "equity": str(ledger.settled_pnl()),
        "peak_equity": str(rec.peak_equity), "open_orders": len(orders), "open_bets": len(bets),
        "exposure": str(exposure),
    }


@app.command()
def status(state_dir: StateDir = Path("state"), tz: Zone = "UTC",
           as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False) -> None:
    """Trading state, settled PnL today and overall, open orders/bets and worst-case exposure."""
    ledger = _open(state_dir)
    try:
        figures = _status(ledger, state_dir, tz)
    finally:
        ledger.close()
    if as_json:
        typer.echo(json.dumps(figures))
        return
    table = Table(title="risk status", show_header=False)
    for key, value in figures.items():
        table.add_row(key, str(value))
    Console().print(table)


@app.command()
def halt(reason: Annotated[str, typer.Option(help="why (stored with the state)")] = "operator halt (CLI)",
         state_dir: StateDir = Path("state")) -> None:
    """HALT trading: no new orders; a running bot cancels its pending orders."""
    ledger = _open(state_dir)
    try:
        rec = TradingRecord.from_dict(ledger.get_state(STATE_KEY))
        rec.transition(TradingState.HALTED, reason, datetime.now(UTC))
        ledger.set_state(STATE_KEY, rec.to_dict())
    finally:
        ledger.close()
    typer.echo(f"risk: HALTED ({reason})")


@app.command()
def resume(state_dir: StateDir = Path("state"), tz: Zone = "UTC") -> None:
    """Resume to ACTIVE, acknowledging today's loss and the drawdown (refused while the venue
    emergency is active or the KILL file exists)."""
    ledger = _open(state_dir)
    try:
        rec = TradingRecord.from_dict(ledger.get_state(STATE_KEY))
        day, start = _day(tz)
        try:
            rec.resume(datetime.now(UTC), kill_file=(state_dir / KILL_FILE).exists(),
                       equity=ledger.settled_pnl(), day=day, day_pnl=ledger.settled_pnl(since=start))
        except ResumeRefused as exc:
            typer.echo(f"risk: resume refused: {exc}", err=True)
            raise typer.Exit(1) from None
        ledger.set_state(STATE_KEY, rec.to_dict())
    finally:
        ledger.close()
    typer.echo("risk: ACTIVE")
