"""`bot report`: what the ledger says happened.

Signals, risk decisions by reason code (a user check's own code too), orders by status, fills,
open exposure, settled PnL and ROI (PnL / settled stake) by strategy, bookmaker and sport, and a
requestUuid duplicate check. Money is summed as Decimal and printed as strings in the JSON form.
Exposure is the risk manager's figure (bot/risk/positions.py: a lay counts its liability; open
orders are `Ledger.open_orders`), read from the ledger opened read-only.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bot.ledger.models import SettlementRow
from bot.ledger.store import Ledger
from bot.risk.positions import PositionBook


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
    ledger = Ledger(db_path, read_only=True)
    try:
        signals = ledger.signal_counts()
        decisions = ledger.decision_counts()
        orders = ledger.orders()
        bets = ledger.bets()
        settlements = ledger.settlements()
        duplicates = ledger.duplicate_request_uuids()
        positions = PositionBook.from_ledger(ledger).summary()
    finally:
        ledger.close()

    by_status = Counter(o.status for o in orders)
    settled_stake = sum((r.stake for r in settlements), Decimal(0))
    settled_pnl = sum((r.pnl for r in settlements), Decimal(0))
    return {
        "ledger": str(db_path),
        "signals": {"total": sum(signals.values()), "by_strategy": signals},
        "decisions": {
            "total": sum(n for *_, n in decisions),
            "by_reason": {f"{v}:{r}" if r else v: n for v, r, n in sorted(decisions, key=lambda d: (d[0], d[1] or ""))},
        },
        "orders": {
            "total": len(orders),
            "open": positions.open_orders,
            "by_status": dict(sorted(by_status.items())),
            "staked": _money(sum((o.filled_stake for o in orders), Decimal(0))),
            "duplicate_request_uuids": duplicates,
        },
        "fills": {
            "bets": len(bets),
            "placed_stake": _money(sum((b.placed_stake for b in bets), Decimal(0))),
            "open_bets": positions.open_bets,
        },
        "exposure": positions.to_json(),
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
    summary.add_row("open exposure", report["exposure"]["total"])
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
    exposure = Table(title="Open exposure by strategy")
    exposure.add_column("strategy")
    exposure.add_column("exposure", justify="right")
    for name, amount in report["exposure"]["by_strategy"].items():
        exposure.add_row(name, amount)
    console.print(exposure)
    for group in ("by_strategy", "by_bookmaker", "by_sport"):
        table = Table(title=f"Settled PnL {group.replace('_', ' ')}")
        for col in ("name", "bets", "won", "lost", "staked", "pnl", "roi"):
            table.add_column(col, justify="left" if col == "name" else "right")
        for name, g in s[group].items():
            table.add_row(name, str(g["bets"]), str(g["won"]), str(g["lost"]), g["staked"], g["pnl"], g["roi"])
        console.print(table)
