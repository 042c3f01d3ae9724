"""Bets keep their closing line (schema version 3): open bets without one are found for the
closing-line watch at start, `set_closing` stores it, later bet updates (fills, settlement)
never wipe it, and `bot report` shows it."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.ledger.models import BetRow, OrderRow
from bot.ledger.report import build_report
from bot.ledger.store import Ledger

KICKOFF = datetime(2025, 11, 16, 18, 0, tzinfo=UTC)
SEL = "NFL|Chicago Bears vs Minnesota Vikings|2025-11-16T18:00Z|moneyline/game|home"


def _bet(bet_id: int, uuid: str, **kw: Any) -> BetRow:
    return BetRow(bet_id=bet_id, request_uuid=uuid, bookmaker="fanduel", placed_stake=Decimal("10.00"),
                  placed_price=2.3, **{"bet_status": "PLACED", **kw})


def test_open_bets_await_their_close_which_is_stored_and_survives_later_updates(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "bot.db")
    ledger.add_orders([OrderRow(request_uuid=u, signal_id=u, strategy="value", selection=SEL, order_price=2.0,
                                stake=Decimal(10), status="FILLED", back=u != "u2") for u in ("u1", "u2", "u3")])
    ledger.upsert_bet(_bet(1, "u1"))
    ledger.upsert_bet(_bet(2, "u2"))
    ledger.upsert_bet(_bet(3, "u3", settlement_status="LOST"))  # settled: nothing to wait for
    assert ledger.bets_awaiting_close() == [(1, SEL, "fanduel", 2.3, True), (2, SEL, "fanduel", 2.3, False)]

    ledger.set_closing([(1, 2.15, 0.5128, 2.3 * 0.5128 - 1, KICKOFF), (2, None, None, None, KICKOFF)])
    assert ledger.bets_awaiting_close() == []  # looked for, found or not: never again
    ledger.upsert_bet(_bet(1, "u1", bet_status="CONFIRMED", settlement_status="WON",
                           settlement_amount=Decimal("23.00")))  # the venue's update carries no close
    one, two = ledger.bets()[:2]
    assert (one.closing_price, one.closing_probability, one.clv, one.closed_at) == (
        2.15, 0.5128, 2.3 * 0.5128 - 1, KICKOFF)
    assert one.settlement_status == "WON"
    assert (two.closing_price, two.clv, two.closed_at) == (None, None, KICKOFF)
    ledger.close()
    con = sqlite3.connect(tmp_path / "bot.db")  # durable in the file, not only in this process
    assert con.execute("SELECT clv FROM bets WHERE bet_id = 1").fetchone()[0] == 2.3 * 0.5128 - 1
    con.close()
    clv = build_report(tmp_path / "bot.db")["clv"]  # `bot report` shows it
    assert clv == {"with_close": 1, "not_measured": 1, "without_close": 1, "mean": 2.3 * 0.5128 - 1, "beat_close": 1.0}
