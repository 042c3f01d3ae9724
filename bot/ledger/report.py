"""`bot report`: what the ledger says happened.

Signals, risk decisions by reason code, orders by status, fills, open exposure, settled PnL and
ROI (PnL / settled stake) by strategy, bookmaker and sport, and a requestUuid duplicate check.
Money is summed as Decimal and printed as strings (exact) in the JSON form.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, func
from sqlmodel import Session, select

from bot.ledger.models import BetRow, DecisionRow, OrderRow, SettlementRow, SignalRow
from bot.ledger.store import OPEN_BET_STATUSES
from bot.types import OrderStatus


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


def _pnl_group(rows: list[SettlementRow], attr: str) -> dict[str, dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"bets": 0, "staked": Decimal(0), "pnl": Decimal(0), "won": 0, "lost": 0}
    )
    for row in rows:
        g = groups[getattr(row, attr) or "-"]
        g["bets"] += 1
        g["staked"] += row.stake
        g["pnl"] += row.pnl
        g["won"] += row.status in ("WON", "HALF_WON")
        g["lost"] += row.status in ("LOST", "HALF_LOST")
    return {
        k: {**v, "staked": _money(v["staked"]), "pnl": _money(v["pnl"]),
            "roi": f"{(v['pnl'] / v['staked'] * 100):.2f}%" if v["staked"] else "-"}
        for k, v in sorted(groups.items())
    }


def build_report(db_path: Path) -> dict[str, Any]:
    """Read the ledger at `db_path` (read only). Raises FileNotFoundError if it does not exist."""
    if not db_path.is_file():
        raise FileNotFoundError(f"no ledger at {db_path}: run `bot run` first")
    engine = create_engine(f"sqlite:///file:{db_path.resolve()}?mode=ro&uri=true")
    try:
        with Session(engine) as s:
            signals = s.exec(select(SignalRow.strategy, func.count()).group_by(SignalRow.strategy)).all()
            decisions = s.exec(
                select(DecisionRow.verdict, DecisionRow.reason, func.count())
                .group_by(DecisionRow.verdict, DecisionRow.reason)
            ).all()
            orders = list(s.exec(select(OrderRow)).all())
            bets = list(s.exec(select(BetRow)).all())
            settlements = list(s.exec(select(SettlementRow)).all())
            dup_uuids = s.exec(
                select(OrderRow.request_uuid).group_by(OrderRow.request_uuid).having(func.count() > 1)
            ).all()
    finally:
        engine.dispose()

    by_status = Counter(o.status for o in orders)
    open_bets = [b for b in bets if b.bet_status in OPEN_BET_STATUSES and b.settlement_status == "UNSETTLED"]
    in_flight = [o for o in orders if OrderStatus(o.status).in_flight]
    open_exposure = sum((b.placed_stake for b in open_bets), Decimal(0)) + sum(
        (o.stake - o.filled_stake for o in in_flight), Decimal(0)
    )
    settled_stake = sum((r.stake for r in settlements), Decimal(0))
    settled_pnl = sum((r.pnl for r in settlements), Decimal(0))
    return {
        "ledger": str(db_path),
        "signals": {"total": sum(n for _, n in signals), "by_strategy": dict(signals)},
        "decisions": {
            "total": sum(n for *_, n in decisions),
            "by_reason": {f"{v}:{r}" if r else v: n for v, r, n in sorted(decisions, key=lambda d: (d[0], d[1] or ""))},
        },
        "orders": {
            "total": len(orders),
            "by_status": dict(sorted(by_status.items())),
            "staked": _money(sum((o.filled_stake for o in orders), Decimal(0))),
            "duplicate_request_uuids": len(dup_uuids),
        },
        "fills": {
            "bets": len(bets),
            "placed_stake": _money(sum((b.placed_stake for b in bets), Decimal(0))),
            "open_bets": len(open_bets),
        },
        "open_exposure": _money(open_exposure),
        "settled": {
            "bets": len(settlements),
            "staked": _money(settled_stake),
            "pnl": _money(settled_pnl),
            "roi": f"{(settled_pnl / settled_stake * 100):.2f}%" if settled_stake else "-",
            "by_strategy": _pnl_group(settlements, "strategy"),
            "by_bookmaker": _pnl_group(settlements, "bookmaker"),
            "by_sport": _pnl_group(settlements, "sport"),
        },
    }


def render_report(report: dict[str, Any], console: Console) -> None:
    """Print the report as rich tables."""
    console.print(f"[bold]Ledger[/bold] {report['ledger']}")
    summary = Table(title="Summary", show_header=False)
    summary.add_row("signals", str(report["signals"]["total"]))
    summary.add_row("decisions", str(report["decisions"]["total"]))
    summary.add_row("orders", str(report["orders"]["total"]))
    summary.add_row("duplicate requestUuids", str(report["orders"]["duplicate_request_uuids"]))
    summary.add_row("fills (bets)", f"{report['fills']['bets']} staked {report['fills']['placed_stake']}")
    summary.add_row("open exposure", report["open_exposure"])
    s = report["settled"]
    summary.add_row("settled", f"{s['bets']} bets, staked {s['staked']}, PnL {s['pnl']}, ROI {s['roi']}")
    console.print(summary)
    for title, rows in (("Decisions by reason", report["decisions"]["by_reason"]),
                        ("Orders by status", report["orders"]["by_status"])):
        table = Table(title=title)
        table.add_column("key")
        table.add_column("count", justify="right")
        for key, n in rows.items():
            table.add_row(key, str(n))
        console.print(table)
    for group in ("by_strategy", "by_bookmaker", "by_sport"):
        table = Table(title=f"Settled PnL {group.replace('_', ' ')}")
        for col in ("name", "bets", "won", "lost", "staked", "pnl", "roi"):
            table.add_column(col, justify="left" if col == "name" else "right")
        for name, g in s[group].items():
            table.add_row(name, str(g["bets"]), str(g["won"]), str(g["lost"]), g["staked"], g["pnl"], g["roi"])
        console.print(table)
