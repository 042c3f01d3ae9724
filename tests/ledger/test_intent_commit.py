"""The intent commit on a SQLite ledger (bot/ledger/intent.py): the raw sqlite3 INSERT stores
exactly what SQLAlchemy's Core INSERT of the same rows stores, refuses a duplicate as
sqlalchemy.exc.IntegrityError without writing anything, fails closed when the database cannot
write (`Ledger.write_error`, which risk reads), and a throwaway ledger (`durable=False`) never
asks for fsync."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from bot.ledger.models import OrderRow, new_order_row
from bot.ledger.store import _INSERT_ORDER, Ledger

AT = datetime(2026, 12, 4, 20, 45, 1, 250_000, tzinfo=UTC)


def _order(uuid: str, **fields: object) -> OrderRow:
    return new_order_row(**{
        "request_uuid": uuid, "signal_id": f"sig-{uuid}", "strategy": "value", "selection": "NFL|A vs B|h2h|A",
        "fixture": "NFL|A vs B|2026-12-06T18:00Z", "bookmakers": "pinnacle,bet365", "fixture_id": "fx-1",
        "outcome_id": 7, "back": False, "order_price": 2.375, "stake": Decimal("12.34"),
        "filled_stake": Decimal("0.50"), "currency": "EUR", "status": "INTENT", "status_reason": None,
        "expires_at": AT + timedelta(seconds=30), "created_at": AT, **fields})


def _stored(path: Path) -> list[tuple[object, ...]]:
    """Every order row as SQLite holds it (its storage classes included), without the id."""
    with sqlite3.connect(path) as con:
        con.row_factory = None
        names = [r[1] for r in con.execute("PRAGMA table_info(orders)") if r[1] != "id"]
        cols = ", ".join(f"{n}, typeof({n})" for n in names)
        return list(con.execute(f"SELECT {cols} FROM orders ORDER BY request_uuid"))


def test_the_raw_insert_stores_what_the_core_insert_stores(tmp_path: Path) -> None:
    orders = [_order("u1"), _order("u2", back=True, expires_at=None, outcome_id=None, stake=Decimal("0.01"))]
    raw = Ledger(tmp_path / "raw.db")
    raw.add_orders([o.model_copy() for o in orders])
    raw.close()
    core = Ledger(tmp_path / "core.db")
    with core._session() as s:  # the statement the PostgreSQL ledger runs
        s.connection().execute(_INSERT_ORDER, [raw_row.model_dump(exclude={"id"}) for raw_row in
                                               Ledger(tmp_path / "raw.db", read_only=True).orders()])
        s.commit()
    core.close()
    stored = _stored(tmp_path / "raw.db")
    assert len(stored) == 2
    assert stored == _stored(tmp_path / "core.db")
    back = Ledger(tmp_path / "raw.db", read_only=True).orders()
    assert [(o.stake, o.filled_stake, o.back, o.expires_at, o.created_at) for o in back] == [
        (Decimal("12.34"), Decimal("0.50"), False, AT + timedelta(seconds=30), AT),
        (Decimal("0.01"), Decimal("0.50"), True, None, AT)]


def test_a_duplicate_request_uuid_is_refused_and_nothing_of_the_batch_is_written(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.db")
    ledger.add_orders([_order("u1")])
    with pytest.raises(IntegrityError):
        ledger.add_orders([_order("u2"), _order("u1")])
    assert [r[0] for r in _stored(tmp_path / "l.db")] == ["u1"]
    ledger.add_orders([_order("u3")])  # the connection is usable after the refusal
    assert ledger.write_error is None
    assert [r[0] for r in _stored(tmp_path / "l.db")] == ["u1", "u3"]
    ledger.close()


def test_an_intent_the_database_cannot_take_fails_closed_and_goes_in_whole_later(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.db")
    ledger._pragma("PRAGMA busy_timeout=50")  # not the 5 s a reader is given
    holder = sqlite3.connect(tmp_path / "l.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the write lock
    with pytest.raises(OperationalError, match="locked"):
        ledger.add_orders([_order("u1"), _order("u2")])
    # what risk reads to reject every new signal RISK_UNAVAILABLE (bot/risk/manager.py)
    assert ledger.write_error is not None and "locked" in ledger.write_error
    holder.execute("ROLLBACK")
    holder.close()
    assert _stored(tmp_path / "l.db") == []  # nothing half-written
    ledger.add_orders([_order("u1"), _order("u2")])
    assert ledger.write_error is None
    assert [r[0] for r in _stored(tmp_path / "l.db")] == ["u1", "u2"]
    ledger.close()


@pytest.mark.parametrize(("durable", "levels"), [(True, ["FULL"]), (False, [])])
def test_only_a_durable_ledger_fsyncs_its_intent_commit(tmp_path: Path, durable: bool, levels: list[str]) -> None:
    ledger = Ledger(tmp_path / "l.db", durable=durable)
    assert ledger._conn is not None
    assert ledger._conn.execute("PRAGMA synchronous").fetchone()[0] == (1 if durable else 0)  # NORMAL / OFF
    asked: list[str] = []
    ledger._conn.set_trace_callback(
        lambda sql: asked.append(sql.partition("=")[2]) if sql.upper().startswith("PRAGMA SYNCHRONOUS=") else None)
    ledger.add_orders([_order("u1")])
    assert asked[:1] == levels
    assert ledger._conn.execute("PRAGMA synchronous").fetchone()[0] == (1 if durable else 0)
    ledger.close()
