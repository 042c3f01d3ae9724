"""Ledger schema version 2 (docs/reference/abp.md §11): bets and settlements keep the venue's
original amounts (`venue_*`) beside the bot-currency ones. A database created at version 1 is
migrated in place; its rows, stored unconverted, are filled in as same-currency."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from bot.ledger.migrations import LedgerSchemaError
from bot.ledger.models import SCHEMA_VERSION, BetRow, SettlementRow
from bot.ledger.store import Ledger

SCHEMA_V1 = Path(__file__).parents[1] / "data" / "ledger" / "schema_v1.sql"
T = "2025-11-16 18:00:00.000000"


def _v1_ledger(path: Path) -> Path:
    """A ledger as the bot wrote it at schema version 1, with an EUR bet and a USD bet settled."""
    con = sqlite3.connect(path)
    con.executescript(SCHEMA_V1.read_text())
    con.executemany(
        "INSERT INTO bets (bet_id, order_id, request_uuid, bookmaker, placed_stake, placed_price, placed_currency, "
        "bet_status, settlement_status, settlement_amount, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(1, 1, "u1", "betcris", "8.00", 2.0, "EUR", "CONFIRMED", "WON", "16.00", T),
         (2, 2, "u2", "pinnacle", "5.00", 2.0, "USD", "CONFIRMED", "UNSETTLED", None, T)],
    )
    con.executemany(
        "INSERT INTO settlements (bet_id, request_uuid, strategy, bookmaker, sport, status, stake, amount, pnl, at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(1, "u1", "value", "betcris", "NFL", "WON", "8.00", "16.00", "8.00", T),
         (3, "u3", "value", "pinnacle", "NFL", "LOST", "4.00", "0", "-4.00", T)],  # its bet row is missing
    )
    con.commit()
    con.close()
    return path


def test_version_1_ledger_is_migrated_and_backfilled_as_same_currency(tmp_path: Path) -> None:
    # Old behaviour caught: without a migration step a version-1 file is refused ("no ledger
    # migration to schema version 2") or, with the columns missing, every bet read fails.
    db = _v1_ledger(tmp_path / "bot.db")
    ledger = Ledger(db)
    assert ledger.schema_version == SCHEMA_VERSION >= 2
    eur, usd = ledger.bets()
    assert (eur.placed_stake, eur.placed_currency, eur.settlement_amount) == (Decimal("8.00"), "EUR", Decimal("16.00"))
    assert (eur.venue_stake, eur.venue_currency, eur.venue_amount) == (Decimal("8.00"), "EUR", Decimal("16.00"))
    assert (usd.venue_stake, usd.venue_currency, usd.venue_amount) == (Decimal("5.00"), "USD", None)
    won, lost = ledger.settlements()
    assert (won.currency, won.venue_currency, won.venue_stake, won.venue_amount) == (
        "EUR", "EUR", Decimal("8.00"), Decimal("16.00"))  # unconverted, and now marked so
    assert (lost.currency, lost.venue_currency, lost.venue_stake) == ("USD", "USD", Decimal("4.00"))
    assert (won.commission, lost.commission) == (Decimal(0), Decimal(0))  # schema 5: none charged before
    # the migrated file takes new rows with the new columns
    ledger.upsert_bet(BetRow(bet_id=4, request_uuid="u4", bookmaker="betcris", placed_stake=Decimal(10),
                             placed_price=2.0, bet_status="CONFIRMED", venue_currency="EUR",
                             venue_stake=Decimal("8.00")))
    ledger.add_settlement(SettlementRow(bet_id=4, request_uuid="u4", strategy="value", status="LOST",
                                        stake=Decimal(10), amount=Decimal(0), pnl=Decimal(-10),
                                        at=datetime(2025, 11, 16, tzinfo=UTC), venue_currency="EUR",
                                        venue_stake=Decimal("8.00"), venue_amount=Decimal(0)))
    assert ledger.bets()[-1].venue_stake == Decimal("8.00")
    assert ledger.settlements()[-1].venue_currency == "EUR"
    ledger.close()
    con = sqlite3.connect(db)
    # Alembic took over the history where the pre-Alembic table left it (that table is kept as it was)
    assert con.execute("SELECT version_num FROM alembic_version").fetchall() == [(f"{SCHEMA_VERSION:04d}",)]
    assert con.execute("SELECT version FROM schema_version").fetchall() == [(1,)]
    con.close()
    reader = Ledger(db, read_only=True)  # migrated: readable, and reopening does not migrate again
    assert reader.schema_version == SCHEMA_VERSION
    reader.close()


def test_read_only_open_of_an_unmigrated_ledger_names_the_fix(tmp_path: Path) -> None:
    # Old behaviour caught: `bot report` on a version-1 file opened it and then failed on a
    # missing column with an SQL traceback instead of one line naming the fix.
    db = _v1_ledger(tmp_path / "bot.db")
    with pytest.raises(LedgerSchemaError, match=r"schema version 1 is older than this bot's \d+; fix: run `bot risk"):
        Ledger(db, read_only=True)


def test_rows_without_venue_amounts_are_taken_as_same_currency(tmp_path: Path) -> None:
    # Old behaviour caught: a bet stored without its venue amounts (paper tools, tests) kept
    # NULL venue_* columns, and a settlement added later never filled venue_amount.
    ledger = Ledger(tmp_path / "bot.db")
    ledger.upsert_bet(BetRow(bet_id=1, request_uuid="u", bookmaker="pinnacle", placed_stake=Decimal(5),
                             placed_price=2.0, bet_status="PLACED"))
    ledger.upsert_bet(BetRow(bet_id=1, request_uuid="u", bookmaker="pinnacle", placed_stake=Decimal(5),
                             placed_price=2.0, bet_status="CONFIRMED", settlement_status="WON",
                             settlement_amount=Decimal(10)))
    (bet,) = ledger.bets()
    assert (bet.venue_currency, bet.venue_stake, bet.venue_amount) == ("USD", Decimal(5), Decimal(10))
    ledger.close()
