"""Every reason code has a test that triggers it through RiskManager.evaluate, and the decision
(with its numbers) lands in the ledger."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from bot.execution.bookmakers import BookmakerMap, BookmakerRoute
from bot.ledger.models import SettlementRow
from bot.risk.reasons import Reason
from bot.types import Instrument, OrderStatus, Side, Verdict
from tests.risk.factories import Env, make_signal, selection


async def _expect(env: Env, signal, reason: Reason, instrument=None):  # type: ignore[no-untyped-def]
    decision = await env.risk.evaluate(signal, instrument)
    assert decision.verdict is Verdict.REJECTED, decision
    assert decision.reason == reason.value, decision
    rows = env.ledger.decisions(signal.signal_id)
    assert [r.reason for r in rows] == [reason.value]
    return decision


@pytest.fixture
def sel(env: Env):  # type: ignore[no-untyped-def]
    s = selection()
    env.quote(s, "bookA", 2.0)
    return s


async def test_stake_below_min(env: Env, sel) -> None:
    d = await _expect(env, make_signal(sel, env.clock.now(), stake="0.50"), Reason.STAKE_BELOW_MIN)
    assert d.details["min_stake"] == "1"


async def test_stake_above_max_rejects_without_resize(make_env) -> None:
    env = make_env(resize_to_fit=False)
    sel = selection()
    env.quote(sel)
    await _expect(env, make_signal(sel, env.clock.now(), stake="150"), Reason.STAKE_ABOVE_MAX)


async def test_stake_above_max_resized_when_configured(env: Env, sel) -> None:
    d = await env.risk.evaluate(make_signal(sel, env.clock.now(), stake="150"), None)
    assert (d.verdict, d.reason, d.stake) == (Verdict.RESIZED, "STAKE_ABOVE_MAX", Decimal(100))
    assert env.ledger.decisions(d.signal.signal_id)[0].approved_stake == Decimal(100)


async def test_odds_out_of_range(env: Env) -> None:
    sel = selection()
    env.quote(sel, "bookA", 25.0)
    d = await _expect(env, make_signal(sel, env.clock.now(), price=25.0), Reason.ODDS_OUT_OF_RANGE)
    assert d.details["range"] == [1.01, 20.0]


async def test_invalid_signal(env: Env, sel) -> None:
    await _expect(env, make_signal(sel, env.clock.now(), stake="-5"), Reason.INVALID_SIGNAL)


async def test_signal_expired(env: Env, sel) -> None:
    now = env.clock.now()
    await _expect(env, make_signal(sel, now, expires_at=now - timedelta(seconds=1)), Reason.SIGNAL_EXPIRED)


async def test_price_stale_after_stale_after_elapsed(env: Env, sel) -> None:
    env.clock.advance(env.clock.now() + timedelta(minutes=16))
    await _expect(env, make_signal(sel, env.clock.now()), Reason.PRICE_STALE)


async def test_price_stale_when_book_never_priced_it(env: Env) -> None:
    await _expect(env, make_signal(selection("away"), env.clock.now()), Reason.PRICE_STALE)


async def test_suspended(env: Env, sel) -> None:
    env.quote(sel, "bookA", None, suspended=True)
    await _expect(env, make_signal(sel, env.clock.now()), Reason.SUSPENDED)


async def test_price_moved(env: Env, sel) -> None:
    env.quote(sel, "bookA", 1.8)
    d = await _expect(env, make_signal(sel, env.clock.now(), price=2.0), Reason.PRICE_MOVED)
    assert d.details == {"best": 1.8, "min_price": 2.0, "state": "ACTIVE"}


async def test_duplicate_signal_id(env: Env, sel) -> None:
    sig = make_signal(sel, env.clock.now())
    assert (await env.risk.evaluate(sig, None)).approved
    await _expect_second(env, sig)


async def _expect_second(env: Env, sig) -> None:  # type: ignore[no-untyped-def]
    d = await env.risk.evaluate(sig, None)
    assert (d.verdict, d.reason) == (Verdict.REJECTED, "DUPLICATE_SIGNAL")


async def test_duplicate_while_same_order_in_flight(env: Env, sel) -> None:
    first = await env.risk.evaluate(make_signal(sel, env.clock.now()), None)
    env.submit(first)
    await _expect(env, make_signal(sel, env.clock.now()), Reason.DUPLICATE_SIGNAL)


@pytest.mark.parametrize(
    ("cap", "second", "reason"),
    [
        ("max_exposure_selection", {"n": 0, "outcome": "home", "book": "bookA", "strategy": "s2"},
         Reason.EXPOSURE_SELECTION),
        ("max_exposure_fixture", {"n": 0, "outcome": "away", "book": "bookA", "strategy": "s1"},
         Reason.EXPOSURE_FIXTURE),
        ("max_exposure_bookmaker", {"n": 1, "outcome": "home", "book": "bookA", "strategy": "s1"},
         Reason.EXPOSURE_BOOKMAKER),
        ("max_exposure_strategy", {"n": 1, "outcome": "home", "book": "bookB", "strategy": "s1"},
         Reason.EXPOSURE_STRATEGY),
        ("max_exposure_total", {"n": 1, "outcome": "home", "book": "bookB", "strategy": "s2"},
         Reason.EXPOSURE_TOTAL),
    ],
)
async def test_exposure_caps(make_env, cap: str, second: dict, reason: Reason) -> None:
    env = make_env(resize_to_fit=False, **{cap: Decimal(15)})
    first = selection("home", 0)
    other = selection(second["outcome"], second["n"])
    for s in (first, other):
        for b in ("bookA", "bookB"):
            env.quote(s, b, 2.0)
    assert (await env.risk.evaluate(make_signal(first, env.clock.now(), stake="10"), None)).approved
    sig = make_signal(other, env.clock.now(), stake="10", bookmakers=(second["book"],), strategy=second["strategy"])
    d = await _expect(env, sig, reason)
    assert d.details["current"] == "10" and d.details["adding"] == "10" and d.details["cap"] == "15"


async def test_exposure_resized_to_fit(make_env) -> None:
    env = make_env(max_exposure_selection=Decimal(15))
    sel = selection()
    env.quote(sel)
    await env.risk.evaluate(make_signal(sel, env.clock.now(), stake="10", strategy="a"), None)
    d = await env.risk.evaluate(make_signal(sel, env.clock.now(), stake="10", strategy="b"), None)
    assert (d.verdict, d.reason, d.stake) == (Verdict.RESIZED, "EXPOSURE_SELECTION", Decimal("5.00"))


async def test_lay_exposure_is_liability(make_env) -> None:
    env = make_env(max_exposure_selection=Decimal(25), resize_to_fit=False)
    sel = selection()
    env.quote(sel, "bookA", 4.0, lay=4.0)
    # lay 10 at 4.0: liability 30 > 25
    sig = make_signal(sel, env.clock.now(), stake="10", price=4.0, side=Side.LAY)
    d = await _expect(env, sig, Reason.EXPOSURE_SELECTION)
    assert d.details["adding"] == "30.0"


async def test_exposure_market_counts_the_other_outcome(make_env) -> None:
    env = make_env(max_exposure_market=Decimal(15), resize_to_fit=False)
    home, away = selection("home"), selection("away")
    env.quote(home)
    env.quote(away)
    assert (await env.risk.evaluate(make_signal(home, env.clock.now(), stake="10"), None)).approved
    # pending backs on both sides: either winner loses the other's stake, 10 or 8; a third back on
    # home takes "away wins" to -10 - 8 = -18 > 15 (the selection caps see 10 + 8 each)
    assert (await env.risk.evaluate(make_signal(away, env.clock.now(), stake="8", strategy="b"), None)).approved
    d = await _expect(env, make_signal(home, env.clock.now(), stake="8", strategy="c"), Reason.EXPOSURE_MARKET)
    assert (d.details["current"], d.details["after"], d.details["cap"]) == ("10", "18", "15")


async def test_rate_limit(make_env) -> None:
    env = make_env(max_orders_per_window=1)
    a, b = selection("home"), selection("away")
    env.quote(a)
    env.quote(b)
    assert (await env.risk.evaluate(make_signal(a, env.clock.now()), None)).approved
    await _expect(env, make_signal(b, env.clock.now()), Reason.RATE_LIMIT)
    env.clock.advance(env.clock.now() + timedelta(seconds=61))
    env.quote(b)
    assert (await env.risk.evaluate(make_signal(b, env.clock.now()), None)).approved


async def test_breaker_open_after_consecutive_declines(env: Env) -> None:
    for n in range(5):
        sel = selection(n=n)
        env.quote(sel)
        d = await env.risk.evaluate(make_signal(sel, env.clock.now()), None)
        env.order_update(env.submit(d), OrderStatus.DECLINED)
    sel = selection(n=9)
    env.quote(sel)
    d = await _expect(env, make_signal(sel, env.clock.now()), Reason.BREAKER_OPEN)
    assert d.details["breaker"] == "bookA"


def _book_pnl(env: Env, bet_id: int, pnl: str) -> None:
    """A settlement the bot did not see as an event (another process, a restart)."""
    env.ledger.add_settlement(SettlementRow(bet_id=bet_id, request_uuid="x", strategy="s1", status="LOST",
                                            stake=Decimal(10), amount=Decimal(0), pnl=Decimal(pnl),
                                            at=env.clock.now()))


async def test_loss_limit_halts(env: Env, sel) -> None:
    d = await env.risk.evaluate(make_signal(sel, env.clock.now()), None)
    uuid_ = env.submit(d)
    env.settle(env.fill(uuid_, "bookA", Decimal(10), 2.0), uuid_, Decimal(1000), Decimal(-1000))
    assert env.risk.control.state == "HALTED"
    env.risk.control.resume()  # acknowledges today's loss ...
    env.settle(99, uuid_, Decimal(1000), Decimal(-1000))  # ... then another full limit is lost
    assert env.risk.control.state == "HALTED"
    env.risk.control.resume()
    _book_pnl(env, 7, "-1000")
    d2 = await _expect(env, make_signal(sel, env.clock.now()), Reason.LOSS_LIMIT)
    assert d2.details["day_loss"] == "1000" and env.risk.control.state == "HALTED"


async def test_drawdown_halts_on_settlement(make_env) -> None:
    env = make_env(daily_loss_limit=Decimal(100000), max_drawdown=Decimal(300))
    env.settle(1, "u", Decimal(10), Decimal(500))
    env.settle(2, "u", Decimal(10), Decimal(-200))
    assert env.risk.control.state == "ACTIVE"
    env.settle(3, "u", Decimal(10), Decimal(-100))  # 500 peak -> 200 equity: drawdown 300
    assert env.risk.control.state == "HALTED"
    stored = env.ledger.get_state("risk")
    assert stored["state"] == "HALTED" and "drawdown" in stored["reason"] and stored["peak_equity"] == "500"


async def test_drawdown_reason_code_on_evaluate(make_env) -> None:
    env = make_env(daily_loss_limit=Decimal(100000), max_drawdown=Decimal(300))
    sel = selection()
    env.quote(sel)
    _book_pnl(env, 1, "500")
    assert (await env.risk.evaluate(make_signal(sel, env.clock.now()), None)).approved  # peak 500 seen
    _book_pnl(env, 2, "-300")
    d = await _expect(env, make_signal(selection("away"), env.clock.now()), Reason.DRAWDOWN)
    assert d.details["drawdown"] == "300" and env.risk.control.state == "HALTED"


async def test_trading_halted(env: Env, sel) -> None:
    env.risk.control.halt("operator")
    d = await _expect(env, make_signal(sel, env.clock.now()), Reason.TRADING_HALTED)
    assert d.details["halted_reason"] == "operator"


async def test_reducing_only(env: Env, sel) -> None:
    d = await env.risk.evaluate(make_signal(sel, env.clock.now(), stake="10"), None)
    u = env.submit(d)
    env.fill(u, "bookA", Decimal(10), 2.0)
    env.order_update(u, OrderStatus.FILLED, Decimal(10))
    env.risk.control.reduce("winding down")
    await _expect(env, make_signal(sel, env.clock.now(), stake="5"), Reason.REDUCING_ONLY)
    env.quote(sel, "bookA", 2.0, lay=2.0)
    hedge = make_signal(sel, env.clock.now(), stake="5", side=Side.LAY)
    assert (await env.risk.evaluate(hedge, None)).approved


async def test_emergency(env: Env, sel) -> None:
    env.risk.control.set_emergency(True, "venue maintenance")
    await _expect(env, make_signal(sel, env.clock.now()), Reason.EMERGENCY)
    assert env.risk.control.state == "HALTED"


async def test_kill_switch_file(env: Env, sel) -> None:
    halted: list[str] = []
    env.risk.control.on_halt(halted.append)
    (env.state_dir / "KILL").write_text("")
    await _expect(env, make_signal(sel, env.clock.now()), Reason.KILL_SWITCH)
    assert env.risk.control.state == "HALTED" and len(halted) == 1


async def test_unmapped(make_env) -> None:
    env = make_env(requires_mapping=True)
    sel = selection()
    env.quote(sel)
    await _expect(env, make_signal(sel, env.clock.now()), Reason.UNMAPPED)
    ok = await env.risk.evaluate(make_signal(sel, env.clock.now()), Instrument("id1", 101))
    assert ok.approved


async def test_bookmaker_unavailable_until_the_route_loads(make_env) -> None:
    # old: no such check; a live signal went out although nothing said ABP reaches its book.
    # Loaded routes: tests/risk/test_bookmaker_route.py (against the local ABP server).
    env = make_env(requires_mapping=True, route=BookmakerRoute(BookmakerMap()))
    sel = selection()
    env.quote(sel, "pinnacle")
    d = await _expect(env, make_signal(sel, env.clock.now(), bookmakers=("pinnacle",)), Reason.BOOKMAKER_UNAVAILABLE,
                      Instrument("id1", 101))
    assert d.details["why"] == "the books ABP reaches are not loaded yet"


async def test_group_incomplete(env: Env) -> None:
    home, away = selection("home"), selection("away")
    env.quote(home, "bookA", 2.1)
    env.quote(away, "bookB", 2.1)
    legs = [make_signal(home, env.clock.now(), group="g", price=2.1),
            make_signal(away, env.clock.now(), group="g", price=2.1, bookmakers=("bookB",), stake="0.1")]
    decisions = await env.risk.evaluate_many([(s, None) for s in legs])
    assert [d.reason for d in decisions] == ["GROUP_INCOMPLETE", "STAKE_BELOW_MIN"]
    assert env.risk.exposure()["total"]["total"] == 0


async def test_risk_unavailable_when_ledger_fails(env: Env, sel) -> None:
    """Signals and decisions are group-committed: once a commit fails, every later signal is
    refused until the ledger writes again (and the failed one's intent commit fails too)."""
    with sqlite3.connect(env.ledger.path) as con:
        con.execute("drop table signals")
    first = await env.risk.evaluate(make_signal(sel, env.clock.now()), None)
    with pytest.raises(OperationalError):
        env.ledger.flush()
    d = await env.risk.evaluate(make_signal(sel, env.clock.now()), None)
    assert (d.verdict, d.reason) == (Verdict.REJECTED, "RISK_UNAVAILABLE")
    assert "no such table: signals" in d.details["error"]
    env.risk.release(first.signal.signal_id)
    assert env.risk.exposure()["total"]["total"] == 0


async def test_mm_stale_while_combined_exposure_has_no_fresh_data(env: Env, sel) -> None:
    """`mm.combined_exposure` (bot/risk/external.py): no MM snapshot yet, or one older than
    `stale_after`, rejects at the fixture cap with MM_STALE (fail closed); a fresh one passes."""
    from bot.risk.external import ExternalExposure, ExternalSnapshot
    from bot.risk.manager import RiskManager

    external = ExternalExposure(env.clock, timedelta(seconds=60))
    risk = RiskManager(env.config, clock=env.clock, book=env.book, ledger=env.ledger, requires_mapping=False,
                       state_dir=env.state_dir, external=external)
    d = await risk.evaluate(make_signal(sel, env.clock.now()), Instrument("id1", 101))
    assert (d.reason, d.details["why"]) == (Reason.MM_STALE, "no data yet")
    external.update(ExternalSnapshot(env.clock.now() - timedelta(seconds=61)))
    d = await risk.evaluate(make_signal(sel, env.clock.now()), Instrument("id1", 101))
    assert (d.reason, d.details["why"]) == ("MM_STALE", "data too old")
    external.update(ExternalSnapshot(env.clock.now()))
    assert (await risk.evaluate(make_signal(sel, env.clock.now()), Instrument("id1", 101))).approved


def test_every_reason_code_is_tested() -> None:
    source = Path(__file__).read_text()
    untested = [r.value for r in Reason if f"Reason.{r.name}" not in source and f'"{r.value}"' not in source]
    assert untested == []
