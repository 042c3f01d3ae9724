"""Indexes the models declare reach existing ledgers on their next writable open (bot/ledger/
migrations.py `ensure_indexes`): a version-1 ledger (tests/data/ledger/schema_v1.sql) gains the
bets indexes paper settlement and open-bet lookups read by, with its rows kept."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bot.ledger.store import Ledger

SCHEMA_V1 = Path(__file__).parents[1] / "data" / "ledger" / "schema_v1.sql"
T = "2025-11-16 12:00:00.000000"
NEW_INDEXES = {"ix_bets_settlement_status", "ix_bets_updated_at"}


def _indexes(path: Path) -> set[str]:
    with sqlite3.connect(path) as con:
        return {name for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}


def test_an_old_ledger_gains_the_bet_indexes_and_keeps_its_bets(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    with sqlite3.connect(path) as con:
        con.executescript(SCHEMA_V1.read_text())
        con.executemany(
            "INSERT INTO bets (bet_id, order_id, request_uuid, bookmaker, placed_stake, placed_price, placed_currency, "
            "bet_status, settlement_status, settlement_amount, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(1, 1, "u1", "pinnacle", "8.00", 2.0, "USD", "CONFIRMED", "WON", "16.00", T),
             (2, 2, "u2", "pinnacle", "5.00", 2.0, "USD", "CONFIRMED", "UNSETTLED", None, T)])
    assert not NEW_INDEXES & _indexes(path)

    Ledger(path).close()

    assert NEW_INDEXES <= _indexes(path)
    ledger = Ledger(path)  # a second open finds nothing to add
    try:
        assert [b.bet_id for b in ledger.open_bets()] == [2]
        assert [b.bet_id for b in ledger.bets_changed(1, None)] == [2]
    finally:
        ledger.close()


def test_a_fresh_ledger_has_them_from_the_start(tmp_path: Path) -> None:
    Ledger(tmp_path / "bot.db").close()
    assert NEW_INDEXES <= _indexes(tmp_path / "bot.db")
