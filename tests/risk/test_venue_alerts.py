"""Risk acts on `VenueAlert`s (bot/risk/tracking.py): the venue emergency (two tiers,
docs/reference/abp.md §8.3; `risk.emergency_action` / `risk.emergency_resume`), outages and
"Bookmaker not available" in the breakers (bot/risk/breakers.py), refused keys and missing rates
halt, mismatches are warned about. Each kind is counted as `alert_<kind>`.

Old behaviour all of these catch: the tracker ignored every VenueAlert (trading went on through an
emergency, a refused key or a missing rate; outages never opened a breaker), and an emergency could
only halt and never resumed by itself.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.risk.config import BreakerConfig, RiskConfig
from bot.risk.reasons import Reason
from bot.types import OrderStatus, OrderUpdate, VenueAlert, VenueAlertKind
from tests.risk.factories import Env, make_signal, selection

Kind = VenueAlertKind


def _alert(env: Env, kind: VenueAlertKind, reason: str = "", books: tuple[str, ...] = (), **details: object) -> None:
    env.risk.on_execution_event(VenueAlert(kind, reason, env.clock.now(), books, dict(details)))


def _halts(env: Env) -> list[str]:
    seen: list[str] = []
    env.risk.control.on_halt(seen.append)
    return seen


# -- emergency ----------------------------------------------------------------------------------


async def test_emergency_halts_at_once_and_only_an_operator_resumes(env: Env) -> None:
    halts = _halts(env)
    sel = selection()
    env.quote(sel)
    _alert(env, Kind.EMERGENCY_ON, "maintenance")
    _alert(env, Kind.EMERGENCY_ON, "maintenance")  # a repeat changes nothing
    assert env.risk.control.state == "HALTED" and halts == ["venue emergency: maintenance"]
    assert (await env.risk.evaluate(make_signal(sel, env.clock.now()), None)).reason == Reason.EMERGENCY
    _alert(env, Kind.EMERGENCY_OFF, "resolved")
    assert env.risk.control.state == "HALTED" and not env.risk.control.record.emergency
    assert (await env.risk.evaluate(make_signal(sel, env.clock.now()), None)).reason == Reason.TRADING_HALTED
    env.risk.control.resume()
    assert (await env.risk.evaluate(make_signal(sel, env.clock.now()), None)).approved
    assert (env.risk.counters["alert_emergency_on"], env.risk.counters["alert_emergency_off"]) == (2, 1)


async def test_emergency_reduce_leaves_pending_orders_and_stays_reducing(make_env: Callable[..., Env]) -> None:
    env = make_env(emergency_action="reduce")
    halts = _halts(env)
    _alert(env, Kind.EMERGENCY_ON, "soft pause")
    assert env.risk.control.state == "REDUCING" and halts == []  # no halt: pending orders are not cancelled
    _alert(env, Kind.EMERGENCY_OFF)
    assert env.risk.control.state == "REDUCING"  # operator resume (the default)
    sel = selection()
    env.quote(sel)
    assert (await env.risk.evaluate(make_signal(sel, env.clock.now()), None)).reason == Reason.REDUCING_ONLY


def test_emergency_auto_resume_only_when_the_emergency_caused_the_state(make_env: Callable[..., Env]) -> None:
    for action in ("halt", "reduce"):
        env = make_env(emergency_action=action, emergency_resume="auto")
        _alert(env, Kind.EMERGENCY_ON, "x")
        assert env.risk.control.state != "ACTIVE"
        _alert(env, Kind.EMERGENCY_OFF, "cleared")
        assert env.risk.control.state == "ACTIVE", action
    env = make_env(emergency_resume="auto")
    _alert(env, Kind.EMERGENCY_ON, "x")
    env.risk.control.halt("operator halt (CLI)")  # the operator's halt now owns the HALTED state
    _alert(env, Kind.EMERGENCY_OFF, "cleared")
    assert (env.risk.control.state, env.risk.control.record.reason) == ("HALTED", "operator halt (CLI)")
    env = make_env(emergency_resume="auto")
    env.risk.control.halt("daily loss limit")  # halted before the emergency: its end is not ours to resume
    _alert(env, Kind.EMERGENCY_ON, "x")
    _alert(env, Kind.EMERGENCY_OFF, "cleared")
    assert (env.risk.control.state, env.risk.control.record.reason) == ("HALTED", "daily loss limit")


def test_emergency_auto_resume_survives_a_restart(make_env: Callable[..., Env]) -> None:
    env = make_env(emergency_resume="auto")
    _alert(env, Kind.EMERGENCY_ON, "x")
    env.risk = env.new_risk()  # the record (state, reason, emergency) comes back from the ledger
    assert env.risk.control.state == "HALTED" and env.risk.control.record.emergency
    _alert(env, Kind.EMERGENCY_OFF)
    assert env.risk.control.state == "ACTIVE"


# -- refused key, missing rate, mismatch -------------------------------------------------------


def test_auth_failure_and_missing_rate_halt_with_the_reason(make_env: Callable[..., Env]) -> None:
    env = make_env()
    halts = _halts(env)
    _alert(env, Kind.AUTH_FAILED, "401 Invalid or inactive API key")
    assert halts == ["ABP refused the API key: 401 Invalid or inactive API key"]
    env = make_env()
    halts = _halts(env)
    _alert(env, Kind.MISSING_RATE, "bet 7 in EUR", currency="EUR", bet_id=7)
    assert halts == ["no exchange rate for EUR: amounts cannot be converted"]
    assert env.risk.counters["alert_missing_rate"] == 1


def test_a_mismatch_is_warned_and_counted_without_changing_the_state(env: Env, warnings: list[str]) -> None:
    _alert(env, Kind.MISMATCH, "open stake at pinnacle", ledger="10.00", venue="12.00")
    assert env.risk.control.state == "ACTIVE" and env.risk.counters["alert_mismatch"] == 1
    assert any("open stake at pinnacle" in w and "12.00" in w for w in warnings)


# -- breakers -------------------------------------------------------------------------------------

BOOK_MAX, GLOBAL_MAX, COOLDOWN = 3, 5, 30
BOOK_SETS = st.sampled_from([(), ("bookA",), ("bookB",), ("bookA", "bookB")])


@settings(max_examples=25, deadline=None)
@given(st.lists(BOOK_SETS, max_size=12))
def test_unavailable_alerts_open_breakers_and_a_success_after_cooldown_closes_them(alerts: list[tuple[str, ...]],
                                                                                   ) -> None:
    config = RiskConfig(
        bookmaker_breaker=BreakerConfig(max_consecutive_failures=BOOK_MAX, min_samples=1000, cooldown_seconds=COOLDOWN),
        global_breaker=BreakerConfig(max_consecutive_failures=GLOBAL_MAX, min_samples=1000, cooldown_seconds=COOLDOWN))
    with tempfile.TemporaryDirectory() as tmp:
        env = Env(Path(tmp), config=config)
        try:
            for books in alerts:
                _alert(env, Kind.UNAVAILABLE, "503 Service temporarily unavailable", books)
            states = env.risk.breaker_states()
            for book in ("bookA", "bookB"):
                failures = sum(book in books for books in alerts)
                assert states.get(book, "CLOSED") == ("OPEN" if failures >= BOOK_MAX else "CLOSED"), (book, states)
            assert states["global"] == ("OPEN" if len(alerts) >= GLOBAL_MAX else "CLOSED")
            asyncio.run(_probe_closes(env))
        finally:
            env.ledger.close()


async def _probe_closes(env: Env) -> None:
    """After the cooldown a probe order at bookA is let through; its placed bet closes the breakers."""
    env.clock.advance(env.clock.now() + timedelta(seconds=COOLDOWN))
    sel = selection()
    env.quote(sel)
    decision = await env.risk.evaluate(make_signal(sel, env.clock.now(), bookmakers=("bookA",)), None)
    assert decision.approved, decision
    env.fill(env.submit(decision), "bookA", decision.stake, 2.0)
    states = env.risk.breaker_states()
    assert (states["global"], states.get("bookA", "CLOSED")) == ("CLOSED", "CLOSED"), states


async def test_bookmaker_not_available_counts_for_its_books_only_and_once(make_env: Callable[..., Env]) -> None:
    env = make_env(bookmaker_breaker=BreakerConfig(max_consecutive_failures=2, cooldown_seconds=COOLDOWN))
    sel = selection()
    for book in ("bookA", "bookB"):
        env.quote(sel, book)
    decision = await env.risk.evaluate(make_signal(sel, env.clock.now(), bookmakers=("bookA", "bookB")), None)
    uuid = env.submit(decision)
    # what the executor emits for a "Bookmaker not available" decline: the order update, then the alert
    env.risk.on_execution_event(OrderUpdate(uuid, OrderStatus.DECLINED, Decimal(0), env.clock.now(),
                                            reason="Bookmaker not available"))
    _alert(env, Kind.BOOKMAKER_UNAVAILABLE, "Bookmaker not available", ("bookA", "bookB"))
    snap = env.risk.snapshot()["breakers"]
    assert [snap[b]["consecutive_failures"] for b in ("global", "bookA", "bookB")] == [1, 1, 1]
    d = await env.risk.evaluate(make_signal(sel, env.clock.now(), stake="5", bookmakers=("bookA",)), None)
    assert d.approved, d
    single = env.submit(d)
    env.risk.on_execution_event(OrderUpdate(single, OrderStatus.DECLINED, Decimal(0), env.clock.now(),
                                            reason="Bookmaker not available"))
    _alert(env, Kind.BOOKMAKER_UNAVAILABLE, "Bookmaker not available", ("bookA",))
    snap = env.risk.snapshot()["breakers"]  # the single-book decline and its alert count once for bookA
    assert [snap[b]["consecutive_failures"] for b in ("global", "bookA", "bookB")] == [2, 2, 1]
    states = env.risk.breaker_states()
    assert (states["bookA"], states["bookB"], states["global"]) == ("OPEN", "CLOSED", "CLOSED")
    other = selection(n=2)
    env.quote(other, "bookA")
    blocked = await env.risk.evaluate(make_signal(other, env.clock.now(), bookmakers=("bookA",)), None)
    assert (blocked.reason, blocked.details["breaker"]) == (Reason.BREAKER_OPEN, "bookA")


def test_a_broken_alert_is_counted_and_the_next_one_still_applies(env: Env) -> None:
    env.risk.on_execution_event(VenueAlert("NOT_A_KIND", "x", env.clock.now()))  # type: ignore[arg-type]
    _alert(env, Kind.AUTH_FAILED, "403 Access denied to endpoint")
    assert env.risk.counters["event_errors"] == 1 and env.risk.control.state == "HALTED"
