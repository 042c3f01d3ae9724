"""A PostgreSQL ledger shared by several instances (bot/ledger/store.py, bot/ledger/lock.py,
bot/risk/shared.py), on a real PostgreSQL server (tests/postgres.py)."""

from __future__ import annotations

import threading
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from bot.clock import ReplayClock
from bot.ledger.lock import InstanceLock, LedgerBusy
from bot.ledger.models import SCHEMA_VERSION, BetRow, OrderRow
from bot.ledger.store import Ledger, LedgerUnavailable
from bot.risk.config import RiskConfig
from bot.risk.control import TradingControl
from bot.risk.shared import GlobalLimits
from bot.types import OrderStatus
from tests.execution.helpers import KICKOFF, SEL

T0 = KICKOFF
CAPS = RiskConfig(max_exposure_selection=Decimal(400), max_exposure_fixture=Decimal(500),
                  max_exposure_bookmaker=Decimal(450), max_exposure_total=Decimal(1000))


def _order(uuid: str, stake: str, *, back: bool = True, price: float = 2.0, books: str = "pinnacle",
           selection: str = SEL.key, fixture: str = "F1") -> OrderRow:
    return OrderRow(request_uuid=uuid, signal_id=f"sig-{uuid}", strategy="value", selection=selection,
                    fixture=fixture, bookmakers=books, back=back, order_price=price, stake=Decimal(stake),
                    status=OrderStatus.INTENT.value)


def _instance(url: str, name: str, config: RiskConfig = CAPS) -> Ledger:
    clock = ReplayClock(T0)
    ledger = Ledger(url, clock=clock, instance=name)
    ledger.guard = GlobalLimits(config, clock)
    return ledger


def test_the_schema_is_created_and_stamped_by_alembic(pg_url: str) -> None:
    Ledger(pg_url).close()
    engine = create_engine(pg_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == f"{SCHEMA_VERSION:04d}"
        columns = {r[0] for r in conn.execute(text(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'orders'"))}
    engine.dispose()
    assert {"instance", "request_uuid", "status"} <= columns
    reader = Ledger(pg_url, read_only=True)
    assert reader.schema_version == SCHEMA_VERSION
    reader.close()


def test_instances_starting_together_create_the_schema_once(pg_url: str) -> None:
    # Old behaviour caught: two instances creating the tables at once collide ("relation
    # already exists" / duplicate alembic_version rows); migrate runs under an advisory lock.
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        try:
            barrier.wait()
            Ledger(pg_url).close()
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)
    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    engine = create_engine(pg_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    engine.dispose()


def test_each_instance_recovers_only_its_own_orders_while_limits_count_everyones(pg_url: str) -> None:
    a, b = _instance(pg_url, "a"), _instance(pg_url, "b")
    assert a.add_orders([_order("a1", "300")]) == {}
    # b's own reads do not include a's order: b never reconciles or adopts it
    assert b.open_orders() == [] and b.unfinished_orders() == []
    assert [o.request_uuid for o in a.open_orders()] == ["a1"]
    assert a.get_order("a1").instance == "a"  # type: ignore[union-attr]
    # ...but the global limits do: 300 held on the fixture by a, 300 more from b passes the 500 cap
    refused = b.add_orders([_order("b1", "300", selection="other-selection")])
    assert list(refused) == ["b1"] and refused["b1"].startswith("global EXPOSURE_FIXTURE: 300 held")
    row = b.get_order("b1")
    assert row is not None and row.status == OrderStatus.DECLINED.value
    assert row.status_reason is not None and "EXPOSURE_FIXTURE" in row.status_reason
    # a bet of a's order counts too, at its own book: the bookmaker cap (450) is everyone's
    a.update_order("a1", status=OrderStatus.FILLED.value, filled_stake=Decimal(300))
    a.upsert_bet(BetRow(bet_id=1, request_uuid="a1", bookmaker="pinnacle", placed_stake=Decimal(300),
                        placed_price=2.0, bet_status="PLACED"))
    a.flush()
    refused = b.add_orders([_order("b2", "160", fixture="F2", selection="s2")])
    assert refused["b2"].startswith("global EXPOSURE_BOOKMAKER: 300 held")
    assert b.add_orders([_order("b3", "150", fixture="F2", selection="s2")]) == {}  # 450 fits exactly
    a.close()
    b.close()


def test_rows_of_one_commit_count_the_ones_accepted_before_them(pg_url: str) -> None:
    a = _instance(pg_url, "a")
    refused = a.add_orders([_order("x1", "250"), _order("x2", "150", selection="s2"),
                            _order("x3", "150", selection="s3")])
    assert list(refused) == ["x3"]  # 250 + 150 = 400 fits the fixture's 500; +150 does not
    a.close()


def test_a_lay_counts_its_liability(pg_url: str) -> None:
    a = _instance(pg_url, "a")
    # a lay of 100 at 5.0 risks 400: under the selection cap of 400 alone, not with 1 more
    assert a.add_orders([_order("l1", "100", back=False, price=5.0)]) == {}
    assert "EXPOSURE_SELECTION" in a.add_orders([_order("l2", "1")])["l2"]
    a.close()


def test_the_market_cap_nets_every_instances_backs_and_lays(pg_url: str) -> None:
    config = CAPS.model_copy(update={"max_exposure_market": Decimal(100)})
    a, b = _instance(pg_url, "a", config), _instance(pg_url, "b", config)
    home = SEL.key
    assert a.add_orders([_order("a1", "100", selection=home)]) == {}  # away wins: -100
    # b's back on home would make it -130 where away wins; a lay of home at 2.0 risks 100 where
    # home wins (a's pending back counts nothing there): the worst case stays 100
    assert "EXPOSURE_MARKET" in b.add_orders([_order("b1", "30", selection=home)])["b1"]
    assert b.add_orders([_order("b2", "100", selection=home, back=False, price=2.0)]) == {}
    a.close()
    b.close()


def test_a_halt_by_any_instance_stops_every_instances_intent_commits(pg_url: str, tmp_path: Path) -> None:
    a, b = _instance(pg_url, "a"), _instance(pg_url, "b")
    control = TradingControl(a, ReplayClock(T0), zone="UTC", state_dir=tmp_path)
    control.halt("operator halt on a")
    refused = b.add_orders([_order("b1", "10")])
    assert refused == {"b1": "global TRADING_HALTED: operator halt on a"}
    a.close()
    b.close()


def test_the_day_loss_of_all_instances_stops_new_orders(pg_url: str) -> None:
    from datetime import timedelta

    from bot.ledger.models import SettlementRow

    config = CAPS.model_copy(update={"daily_loss_limit": Decimal(50)})
    a, b = _instance(pg_url, "a", config), _instance(pg_url, "b", config)
    for i, ledger in enumerate((a, b)):
        ledger.add_settlement(SettlementRow(bet_id=i, request_uuid=f"u{i}", strategy="value", status="LOST",
                                            stake=Decimal(25), amount=Decimal(0), pnl=Decimal(-25),
                                            at=T0 - timedelta(minutes=5)))
    refused = a.add_orders([_order("n1", "10")])
    assert refused["n1"].startswith("global LOSS_LIMIT: day loss 50 of all instances")
    a.close()
    b.close()


def test_a_state_written_by_another_instance_meanwhile_is_not_overwritten(pg_url: str) -> None:
    a, b = Ledger(pg_url, instance="a"), Ledger(pg_url, instance="b")
    assert a.set_state("risk", {"state": "HALTED", "rev": 2}, below_rev=2)
    assert not b.set_state("risk", {"state": "ACTIVE", "rev": 2}, below_rev=2)  # b read rev 1: stale
    assert a.get_state("risk") == {"state": "HALTED", "rev": 2}
    a.close()
    b.close()


def test_one_process_per_instance_name(pg_url: str) -> None:
    first = InstanceLock(pg_url, "bot1")
    first.acquire()
    with pytest.raises(LedgerBusy, match=r"instance bot1 is in use by betbot bot1 pid=\d+"):
        InstanceLock(pg_url, "bot1").acquire()
    other = InstanceLock(pg_url, "bot2")
    other.acquire()  # another instance runs beside it
    first.release()
    again = InstanceLock(pg_url, "bot1")
    again.acquire()  # the lock went with the holder's session
    again.release()
    other.release()


def test_an_unreachable_server_is_one_line_without_the_password(pg_server: object) -> None:
    url = "postgresql+psycopg://bot:hunter2@127.0.0.1:1/ledger"
    with pytest.raises(LedgerUnavailable) as caught:
        Ledger(url)
    message = str(caught.value)
    assert "hunter2" not in message and "\n" not in message
    assert message.startswith("ledger error: postgresql+psycopg://bot:***@127.0.0.1:1/ledger:")
    assert "fix: check that PostgreSQL runs" in message
