"""Queries a replay would repeat on every event are skipped while their answer cannot have
changed, and never when it can: an order added here or by another process is an open order at
once, and a bet written here or by another process moves `bets_version` (what paper settlement
checks before it looks for changed bets)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from bot.clock import ReplayClock
from bot.ledger.models import BetRow, OrderRow
from bot.ledger.store import Ledger

AT = datetime(2025, 11, 16, 12, 0, tzinfo=UTC)
SEL = "NFL|Chicago Bears vs Minnesota Vikings|2025-11-16T18:00Z|moneyline/game|home"


def _order(uuid: str, status: str = "INTENT") -> OrderRow:
    return OrderRow(request_uuid=uuid, signal_id=uuid, strategy="value", selection=SEL, order_price=2.0,
                    stake=Decimal(10), status=status)


def _insert_elsewhere(db: Path, uuid: str) -> None:
    """Another process's committed INTENT order."""
    con = sqlite3.connect(db)
    con.execute("INSERT INTO orders (request_uuid, signal_id, strategy, selection, sport, fixture, bookmakers, "
                "player_id, back, order_price, stake, filled_stake, currency, status, user_ref, attempts, "
                "created_at, updated_at) VALUES (?, ?, 'value', ?, '', '', '', 0, 1, 2.0, '10', '0', 'USD', "
                "'INTENT', '', 0, ?, ?)", (uuid, uuid, SEL, "2025-11-16 12:00:00", "2025-11-16 12:00:00"))
    con.commit()
    con.close()


def test_open_orders_after_an_empty_answer_see_new_orders_from_here_and_elsewhere(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    ledger = Ledger(db, clock=ReplayClock(AT))
    assert ledger.open_orders() == []
    assert ledger.open_orders() == []  # skipped: nothing can have changed
    ledger.add_orders([_order("here")])
    assert [o.request_uuid for o in ledger.open_orders()] == ["here"]
    ledger.update_order("here", status="FILLED")
    assert ledger.open_orders() == []
    _insert_elsewhere(db, "elsewhere")
    assert [o.request_uuid for o in ledger.open_orders()] == ["elsewhere"]
    ledger.close()


def test_bets_version_moves_with_every_bet_write_here_and_any_commit_elsewhere(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    ledger = Ledger(db, clock=ReplayClock(AT))
    ledger.add_orders([_order("u1", "FILLED")])
    first = ledger.bets_version()
    assert ledger.bets_version() == first
    ledger.upsert_bet(BetRow(bet_id=1, request_uuid="u1", bookmaker="fanduel", placed_stake=Decimal(10),
                             placed_price=2.0, bet_status="PLACED"))
    second = ledger.bets_version()
    assert second != first
    _insert_elsewhere(db, "u2")
    assert ledger.bets_version() != second
    ledger.close()
