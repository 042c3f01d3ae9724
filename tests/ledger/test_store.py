"""Ledger behaviour on a real SQLite file."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.exc import IntegrityError, InternalError, OperationalError

from bot.clock import ReplayClock
from bot.ledger.migrations import LedgerSchemaError
from bot.ledger.models import SCHEMA_VERSION, BetRow, OrderRow, SettlementRow
from bot.ledger.store import Ledger
from bot.types import (
    Decision,
    MarketKey,
    OrderStatus,
    Selection,
    Side,
    Signal,
    Verdict,
)
from tests.execution.helpers import KICKOFF, SEL

T0 = KICKOFF


def _signal(sid: str = "s1", strategy: str = "value") -> Signal:
    return Signal(
        signal_id=sid,
        strategy=strategy,
        selection=SEL,
        side=Side.BACK,
        stake=Decimal("10.50"),
        price=2.1,
        min_price=2.0,
        bookmakers=("pinnacle", "betcris"),
        created_at=T0,
    )


def _order(uuid: str, status: OrderStatus = OrderStatus.INTENT, strategy: str = "value") -> OrderRow:
    return OrderRow(
        request_uuid=uuid,
        signal_id="s1",
        strategy=strategy,
        selection=SEL.key,
        order_price=2.0,
        stake=Decimal("10.50"),
        status=status.value,
    )


def _target(ledger: Ledger) -> Path | str:
    """What `ledger` was opened on: its file, or its database URL with the password."""
    return ledger.path if ledger.path is not None else ledger._engine.url.render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Ledger:
    """The same tests on a SQLite file and on a real PostgreSQL database (tests/postgres.py)."""
    target = tmp_path / "state" / "bot.db" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    lg = Ledger(target, clock=ReplayClock(T0))
    yield lg
    lg.close()


def test_wal_mode_and_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "bot.db"
    Ledger(path).close()
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("SELECT version_num FROM alembic_version").fetchall() == [(f"{SCHEMA_VERSION:04d}",)]
    con.close()
    # reopening does not restamp or fail
    lg = Ledger(path)
    assert lg.schema_version == SCHEMA_VERSION
    lg.close()


def test_a_ledger_of_a_newer_bot_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    Ledger(path).close()
    con = sqlite3.connect(path)
    con.execute("UPDATE alembic_version SET version_num = ?", (f"{SCHEMA_VERSION + 1:04d}",))
    con.commit()
    con.close()
    for read_only in (False, True):
        with pytest.raises(LedgerSchemaError, match=f"schema version {SCHEMA_VERSION + 1} is newer"):
            Ledger(path, read_only=read_only)
    con = sqlite3.connect(path)
    assert con.execute("SELECT version_num FROM alembic_version").fetchall() == [(f"{SCHEMA_VERSION + 1:04d}",)]
    con.close()


def test_tables_without_a_schema_version_are_refused(tmp_path: Path) -> None:
    # a database someone else made with an `orders` table is not adopted as a ledger
    path = tmp_path / "bot.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
    con.commit()
    con.close()
    with pytest.raises(LedgerSchemaError, match="no schema version"):
        Ledger(path)


def test_signals_and_decisions(ledger: Ledger) -> None:
    sig = _signal()
    ledger.record_signal(sig)
    ledger.record_signal(sig)  # idempotent
    ledger.record_decision(Decision(sig, Verdict.RESIZED, Decimal("5.25"), "max_stake", {"cap": Decimal("5.25")}))
    ledger.record_decision(Decision(_signal("s2"), Verdict.REJECTED, Decimal(0), "stale_price"))
    rows = ledger.signals()
    assert [r.signal_id for r in rows] == ["s1", "s2"]
    assert rows[0].stake == Decimal("10.50") and rows[0].bookmakers == "pinnacle,betcris"
    d = ledger.decisions("s1")
    assert len(d) == 1 and d[0].approved_stake == Decimal("5.25") and d[0].details == {"cap": "5.25"}
    assert d[0].at == T0


def test_state_roundtrip(ledger: Ledger, tmp_path: Path) -> None:
    assert ledger.get_state("abp.ws") is None
    ledger.set_state("abp.ws", {"seq": 4})
    ledger.set_state("abp.ws", {"seq": 7, "sub": 1})
    assert ledger.get_state("abp.ws") == {"seq": 7, "sub": 1}
    ledger.close()
    again = Ledger(_target(ledger))
    assert again.get_state("abp.ws") == {"seq": 7, "sub": 1}
    again.close()


def test_event_log_keeps_odd_payloads(ledger: Ledger) -> None:
    ledger.append_event("ws.bad", {"raw": b"\xffoops", "n": Decimal("1.5"), "t": T0, "obj": object}, "u1")
    ledger.append_event("http", {"ok": True})
    ev = ledger.events(request_uuid="u1")
    assert len(ev) == 1 and ev[0].kind == "ws.bad" and ev[0].payload["n"] == "1.5"
    assert ev[0].payload["raw"].endswith("oops")
    assert [e.kind for e in ledger.events()] == ["ws.bad", "http"]


def test_orders_lifecycle(ledger: Ledger) -> None:
    ledger.add_orders([_order("a"), _order("b", strategy="arb"), _order("c")])
    with pytest.raises(IntegrityError):
        ledger.add_orders([_order("d"), _order("a")])
    assert ledger.get_order("d") is None  # the failed batch wrote nothing
    ledger.update_order("a", status=OrderStatus.FILLED.value, filled_stake=Decimal("10.50"), order_id=7)
    ledger.update_order("b", status=OrderStatus.PARTIALLY_FILLED.value, filled_stake=Decimal(3))
    ledger.update_order("c", status=OrderStatus.UNKNOWN.value)
    assert [o.request_uuid for o in ledger.open_orders()] == ["b", "c"]
    assert [o.request_uuid for o in ledger.orders("arb")] == ["b"]
    a = ledger.get_order("a")
    assert a is not None and a.order_id == 7 and a.filled_stake == Decimal("10.50")
    with pytest.raises(KeyError):
        ledger.update_order("zzz", status="FILLED")


def test_partially_filled_order_closes_an_hour_after_expiry(tmp_path: Path) -> None:
    clock = ReplayClock(T0)
    ledger = Ledger(tmp_path / "bot.db", clock=clock)
    try:
        ledger.add_orders([_order("p"), _order("q")])
        ledger.update_order("p", status=OrderStatus.PARTIALLY_FILLED.value, expires_at=T0 + timedelta(seconds=5))
        ledger.update_order("q", status=OrderStatus.PENDING.value, expires_at=T0 + timedelta(seconds=5))
        clock.advance(T0 + timedelta(minutes=30))  # fills may still be learnt: both open
        assert [o.request_uuid for o in ledger.open_orders()] == ["p", "q"]
        clock.advance(T0 + timedelta(hours=2))  # ABP stopped at expiresAt: p can change no more
        assert [o.request_uuid for o in ledger.open_orders()] == ["q"]  # q must still be resolved
    finally:
        ledger.close()


def _bet(bet_id: int, uuid: str, status: str = "CONFIRMED", settle: str = "UNSETTLED") -> BetRow:
    return BetRow(
        bet_id=bet_id,
        request_uuid=uuid,
        bookmaker="pinnacle",
        placed_stake=Decimal("4.20"),
        placed_price=2.05,
        bet_status=status,
        settlement_status=settle,
        placed_at=T0,
    )


def test_upsert_bet_keeps_what_an_update_leaves_none_and_returns_the_stored_row(ledger: Ledger) -> None:
    ledger.add_orders([_order("a")])
    first, _ = ledger.upsert_bet(_bet(1, "a", "CONFIRMED"))
    assert first.venue_stake == Decimal("4.20") and first.venue_currency == "USD"  # same currency: ours
    won = _bet(1, "a", "CONFIRMED", "WON")
    won.settlement_amount, won.placed_at = Decimal("8.61"), None
    row, previous = ledger.upsert_bet(won)
    assert previous is not None and previous.settlement_status == "UNSETTLED" and previous.id == first.id
    assert (row.settlement_status, row.settlement_amount, row.venue_amount) == ("WON", Decimal("8.61"), Decimal("8.61"))
    assert row.placed_at == T0  # None on the update: the stored value stays
    again, _ = ledger.upsert_bet(_bet(1, "a", "CONFIRMED", "WON"))  # settlement_amount None: kept
    stored = ledger.bets("a")
    assert len(stored) == 1 and stored[0].id == row.id == again.id
    assert stored[0].settlement_amount == again.settlement_amount == Decimal("8.61")
    assert stored[0].model_dump(exclude={"updated_at"}) == again.model_dump(exclude={"updated_at"})


def test_bets_and_open_bets(ledger: Ledger) -> None:
    ledger.add_orders([_order("a"), _order("b"), _order("c")])  # on a shared ledger an instance's bets are its orders'
    row, prev = ledger.upsert_bet(_bet(1, "a", "PLACED"))
    assert prev is None and row.bet_status == "PLACED"
    row, prev = ledger.upsert_bet(_bet(1, "a", "CONFIRMED"))
    assert prev is not None and prev.bet_status == "PLACED" and row.bet_status == "CONFIRMED"
    assert row.placed_at == T0
    ledger.upsert_bet(_bet(2, "a", "REJECTED"))
    ledger.upsert_bet(_bet(3, "b", "CONFIRMED", "WON"))
    assert [b.bet_id for b in ledger.bets("a")] == [1, 2]
    assert [b.bet_id for b in ledger.open_bets()] == [1]
    ledger.upsert_bet(_bet(4, "c", "PENDING"))  # awaiting the bookmaker: still exposure
    assert [b.bet_id for b in ledger.open_bets()] == [1, 4]


def test_settled_pnl_filters(ledger: Ledger) -> None:
    def s(bet_id: int, pnl: str, at: datetime, strategy: str = "value") -> SettlementRow:
        return SettlementRow(
            bet_id=bet_id, request_uuid="a", strategy=strategy, status="WON",
            stake=Decimal(10), amount=Decimal(10) + Decimal(pnl), pnl=Decimal(pnl), at=at,
        )

    assert ledger.add_settlement(s(1, "10.10", T0))
    assert not ledger.add_settlement(s(1, "99", T0))  # once per bet
    ledger.add_settlement(s(2, "-10", T0 + timedelta(hours=2)))
    ledger.add_settlement(s(3, "0.01", T0 + timedelta(hours=3), strategy="arb"))
    assert ledger.settled_pnl() == Decimal("0.11")
    assert ledger.settled_pnl(since=T0 + timedelta(hours=1)) == Decimal("-9.99")
    assert ledger.settled_pnl(strategy="arb") == Decimal("0.01")
    assert len(ledger.settlements()) == 3


def test_market_bets_find_a_market_at_one_book_with_its_settlements(ledger: Ledger) -> None:
    other_market = Selection(SEL.fixture, MarketKey("total", "game", Decimal("44.5")), "over")
    ledger.add_orders([
        OrderRow(request_uuid=u, signal_id=u, strategy="value", selection=sel.key, fixture=str(sel.fixture),
                 order_price=2.0, stake=Decimal(10), status="FILLED")
        for u, sel in (("home", SEL), ("away", Selection(SEL.fixture, SEL.market, "away")), ("total", other_market))])
    for bet_id, uuid in ((1, "home"), (2, "away"), (3, "total")):
        ledger.upsert_bet(_bet(bet_id, uuid))
    ledger.upsert_bet(BetRow(bet_id=4, request_uuid="home", bookmaker="betfair-ex", placed_stake=Decimal(5),
                             placed_price=2.0, bet_status="CONFIRMED"))
    ledger.add_settlement(SettlementRow(bet_id=2, request_uuid="away", strategy="value", status="WON",
                                        stake=Decimal("4.20"), amount=Decimal("8.61"), pnl=Decimal("4.20"),
                                        commission=Decimal("0.21"), at=T0))
    found = ledger.market_bets(str(SEL.fixture), SEL.key.rpartition("|")[0], "pinnacle")
    assert [(b.bet_id, s and (s.pnl, s.commission)) for b, s in found] == [
        (1, None), (2, (Decimal("4.20"), Decimal("0.21")))]


def test_balances_latest_per_account(ledger: Ledger) -> None:
    ledger.record_balance("pinnacle", Decimal(100), username="u")
    ledger.record_balance("pinnacle", Decimal("90.5"), username="u")
    ledger.record_balance("betcris", Decimal(7), currency="EUR")
    assert [(b.bookmaker, b.balance) for b in ledger.balances()] == [
        ("pinnacle", Decimal("90.5")),
        ("betcris", Decimal(7)),
    ]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.decimals(min_value=-1000, max_value=1000, places=2, allow_nan=False), max_size=12))
def test_pnl_sum_is_exact(tmp_path_factory: pytest.TempPathFactory, pnls: list[Decimal]) -> None:
    lg = Ledger(tmp_path_factory.mktemp("pnl") / "bot.db")
    for i, p in enumerate(pnls):
        lg.add_settlement(
            SettlementRow(bet_id=i, request_uuid="x", strategy="v", status="WON",
                          stake=Decimal(1), amount=p + 1, pnl=p, at=T0)
        )
    assert lg.settled_pnl() == sum(pnls, Decimal(0))
    lg.close()


def test_read_only_ledger_reads_and_refuses_writes(ledger: Ledger, tmp_path: Path) -> None:
    ledger.record_decision(Decision(_signal(), Verdict.REJECTED, Decimal(0), "MAX_ODDS_AT_NIGHT"))
    ledger.record_decision(Decision(_signal("s2", "arb"), Verdict.APPROVED, Decimal(5)))
    ledger.add_orders([_order("a"), _order("b")])  # the orders alone; the decisions follow in the group commit
    ledger.flush()
    reader = Ledger(_target(ledger), read_only=True)
    try:
        assert reader.schema_version == SCHEMA_VERSION
        assert [o.request_uuid for o in reader.open_orders()] == ["a", "b"]
        assert reader.signal_counts() == {"value": 1, "arb": 1}
        assert sorted(reader.decision_counts()) == [("APPROVED", None, 1), ("REJECTED", "MAX_ODDS_AT_NIGHT", 1)]
        with pytest.raises((OperationalError, InternalError), match="read-?only"):  # SQLite's, PostgreSQL's
            reader.set_state("x", {"y": 1})
    finally:
        reader.close()
    with pytest.raises(FileNotFoundError):
        Ledger(tmp_path / "absent.db", read_only=True)
    assert not (tmp_path / "absent.db").exists()


def test_orders_by_uuid_in_chunks(ledger: Ledger) -> None:
    ledger.add_orders([_order(f"u{i}") for i in range(1203)])
    found = ledger.orders_by_uuid({f"u{i}" for i in range(0, 1203, 2)} | {"missing"})
    assert sorted(found) == sorted(f"u{i}" for i in range(0, 1203, 2))
    assert all(row.request_uuid == key for key, row in found.items())
    assert ledger.orders_by_uuid(set()) == {}
