"""The MM API folded into risk over loopback (bot/execution/mm.py, bot/risk/external.py,
bot/risk/control.py; docs/reference/mm.md): combined exposure changes decisions at the fixture
and bookmaker caps, stale or unreadable MM data fails closed (MM_STALE), and an MM emergency
halts like ABP's with its source named, resuming by the same rules."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from bot.execution.currency import CurrencyRates
from bot.execution.mm import MmLink
from bot.execution.mm_config import MmConfig
from bot.risk.external import ExternalExposure
from bot.risk.manager import RiskManager
from bot.risk.reasons import Reason
from bot.sim.mm_server import LocalMmServer
from bot.types import Instrument, VenueAlert, VenueAlertKind
from tests.execution.helpers import eventually
from tests.risk.factories import Env, make_signal, selection

KEY = str(uuid.UUID(int=4242))
FIXTURE_ID = "id1000000861624412"  # the MM docs' example fixture


@pytest.fixture
async def mm() -> AsyncIterator[LocalMmServer]:
    server = LocalMmServer(api_key=KEY)
    await server.start()
    yield server
    await server.stop()


def _config(server: LocalMmServer, **kw: Any) -> MmConfig:
    base: dict[str, Any] = {"enabled": True, "api_key": KEY, "base_url": server.base_url, "ws_url": server.ws_url,
                            "combined_exposure": True, "emergency": False, "stale_after_seconds": 60,
                            "backoff_initial_seconds": 0.01, "backoff_max_seconds": 0.05,
                            "ws_reconnect_initial_seconds": 0.02, "ws_reconnect_max_seconds": 0.1}
    return MmConfig(**{**base, **kw})


def _combined(env: Env, server: LocalMmServer, rates: CurrencyRates | None = None,
              **kw: Any) -> tuple[RiskManager, MmLink]:
    """A risk manager wired as build_engine wires it with `mm.combined_exposure`."""
    cfg = _config(server, **kw)
    exposure = ExternalExposure(env.clock, timedelta(seconds=cfg.stale_after_seconds))

    async def on_alert(alert: VenueAlert) -> None:
        env.risk.on_execution_event(alert)

    link = MmLink(cfg, exposure=exposure, on_alert=on_alert, currency="USD", rates=rates,
                  clock=env.clock)
    env.risk = RiskManager(env.config, clock=env.clock, book=env.book, ledger=env.ledger, requires_mapping=False,
                           state_dir=env.state_dir, external=exposure)
    return env.risk, link


def _position(stake: float, exchange: str = "polymarket", fixture_id: str = FIXTURE_ID) -> dict[str, Any]:
    return {"fixtureId": fixture_id, "outcomeId": 161, "exchange": exchange, "totalStake": stake,
            "matchedStake": stake, "openStake": 0.0}


def _order(stake: float, matched: float = 0.0, exchange: str = "polymarket") -> dict[str, Any]:
    return {"orderId": 123, "fixtureId": FIXTURE_ID, "outcomeId": 161, "exchange": exchange,
            "exchangeOrderId": "0x1a2b3c", "orderStatus": "PLACED", "matchedStatus": "NOT_MATCHED",
            "orderCents": 0.45, "orderStake": stake, "matchedStake": matched, "settlementStatus": "UNDECIDED"}


async def test_an_mm_position_on_the_fixture_turns_an_approval_into_exposure_fixture(
        make_env: Callable[..., Env], mm: LocalMmServer) -> None:
    instrument = Instrument(FIXTURE_ID, 101)
    decisions = []
    for held in (None, 495.0):
        env = make_env(max_exposure_fixture=Decimal(500), resize_to_fit=False)
        risk, link = _combined(env, mm)
        mm.set_positions([] if held is None else [_position(held)])
        assert await link.refresh() is True
        sel = selection()
        env.quote(sel)
        decisions.append(await risk.evaluate(make_signal(sel, env.clock.now(), stake="10"), instrument))
        await link.stop()
    without, with_mm = decisions
    assert without.approved
    assert with_mm.reason == Reason.EXPOSURE_FIXTURE
    assert Decimal(with_mm.details["current"]) == Decimal(with_mm.details["mm_exposure"]) == 495


async def test_open_orders_count_their_unmatched_part_at_the_exchange_as_a_bookmaker(
        make_env: Callable[..., Env], mm: LocalMmServer) -> None:
    env = make_env(max_exposure_bookmaker=Decimal(100), max_exposure_fixture=Decimal(10_000), resize_to_fit=True)
    risk, link = _combined(env, mm)
    mm.set_positions([_position(30.0, exchange="kalshi")])
    mm.set_open_orders([_order(100.0, matched=40.0)])  # 60 still on polymarket
    assert await link.refresh() is True
    snap = link.exposure.snapshot if link.exposure else None
    assert snap is not None and dict(snap.bookmaker) == {"kalshi": Decimal(30), "polymarket": Decimal(60)}
    assert snap.fixture == {FIXTURE_ID: Decimal(90)}
    sel = selection()
    env.quote(sel, "polymarket")
    d = await risk.evaluate(make_signal(sel, env.clock.now(), stake="50", bookmakers=("polymarket",)),
                            Instrument(FIXTURE_ID, 101))
    assert d.verdict.value == "RESIZED" and d.stake == Decimal(40)  # 100 cap - 60 held by MM there
    assert d.reason == Reason.EXPOSURE_BOOKMAKER
    await link.stop()


async def test_stale_or_unreadable_mm_data_fails_closed(make_env: Callable[..., Env], mm: LocalMmServer) -> None:
    env = make_env()
    risk, link = _combined(env, mm, stale_after_seconds=30)
    sel = selection()
    env.quote(sel)
    instrument = Instrument(FIXTURE_ID, 101)

    calls = iter(range(100))

    async def decide() -> str | None:  # a fresh quote and strategy each time: only MM can reject
        env.quote(sel)
        signal = make_signal(sel, env.clock.now(), strategy=f"s{next(calls)}")
        return (await risk.evaluate(signal, instrument)).reason

    assert await decide() == Reason.MM_STALE  # never loaded
    assert await link.refresh() is True
    assert await decide() is None
    env.clock.advance(env.clock.now() + timedelta(seconds=20))
    mm.set_positions([_position(5.0), {"fixtureId": FIXTURE_ID, "matchedStake": 5.0}])  # no exchange: unreadable
    assert await link.refresh() is False and link.stats["poll_failed"] == 1
    assert await decide() is None  # the last good snapshot is 20 s old: still fresh
    env.clock.advance(env.clock.now() + timedelta(seconds=11))
    env.quote(sel)
    d = await risk.evaluate(make_signal(sel, env.clock.now(), strategy="other"), instrument)
    assert d.reason == Reason.MM_STALE and "[1]: exchange" in d.details["error"]  # all rows or none
    mm.set_positions([])
    mm.faults.fail_5xx = 99  # MM down: retried, then the data stays stale
    assert await link.refresh() is False
    assert await decide() == Reason.MM_STALE
    mm.faults.fail_5xx = 0
    assert await link.refresh() is True
    assert await decide() is None
    await link.stop()


async def test_a_refused_key_or_429_leaves_the_data_stale(make_env: Callable[..., Env], mm: LocalMmServer) -> None:
    env = make_env()
    risk, link = _combined(env, mm, api_key=str(uuid.UUID(int=1)))
    assert await link.refresh() is False and link.stats["auth_failed"] == 1
    assert "refused the API key" in (link.exposure.last_error if link.exposure else "")
    await link.stop()
    risk, link = _combined(env, mm)
    mm.rate_limit = 0
    assert await link.refresh() is False and link.stats["rate_limited"] == 1
    sel = selection()
    env.quote(sel)
    assert (await risk.evaluate(make_signal(sel, env.clock.now()), None)).reason == Reason.MM_STALE
    await link.stop()


async def test_amounts_are_converted_to_the_bot_currency(make_env: Callable[..., Env], mm: LocalMmServer) -> None:
    env = make_env()
    rates = CurrencyRates("USD")
    _, link = _combined(env, mm, currency="EUR", rates=rates)
    mm.set_positions([_position(92.0)])
    assert await link.refresh() is False and link.stats["poll_failed"] == 1  # no EUR rate: fail closed
    rates.set("EUR", "0.92")
    assert await link.refresh() is True
    assert link.exposure is not None and link.exposure.fixture(FIXTURE_ID) == Decimal(100)
    await link.stop()


# -- emergency --------------------------------------------------------------------------------


async def _mm_emergency_env(make_env: Callable[..., Env], mm: LocalMmServer, **risk: Any) -> tuple[Env, MmLink]:
    env = make_env(**risk)

    async def on_alert(alert: VenueAlert) -> None:
        env.risk.on_execution_event(alert)

    link = MmLink(_config(mm, emergency=True, combined_exposure=False), exposure=None, on_alert=on_alert,
                  currency="USD", clock=env.clock)
    await link.start()
    return env, link


async def test_an_mm_emergency_halts_and_only_an_operator_resumes(make_env: Callable[..., Env],
                                                                  mm: LocalMmServer) -> None:
    env, link = await _mm_emergency_env(make_env, mm)
    halts: list[str] = []
    env.risk.control.on_halt(halts.append)
    sel = selection()
    env.quote(sel)
    mm.set_emergency(True, "Manual trigger")
    await eventually(lambda: env.risk.control.state == "HALTED")
    assert halts == ["venue emergency: MM: Manual trigger"]
    d = await env.risk.evaluate(make_signal(sel, env.clock.now()), None)
    assert (d.reason, d.details["emergency"]) == (Reason.EMERGENCY, "MM: Manual trigger")
    with pytest.raises(Exception, match="venue emergency is active"):
        env.risk.control.resume()
    mm.set_emergency(False, "resolved")
    await eventually(lambda: not env.risk.control.record.emergency)
    assert env.risk.control.state == "HALTED"  # risk.emergency_resume: operator (the default)
    env.risk.control.resume()
    assert (await env.risk.evaluate(make_signal(sel, env.clock.now()), None)).approved
    await link.stop()


async def test_mm_emergency_auto_resume_and_two_sources(make_env: Callable[..., Env], mm: LocalMmServer) -> None:
    env, link = await _mm_emergency_env(make_env, mm, emergency_resume="auto")
    control = env.risk.control
    mm.set_emergency(True, "Manual trigger")
    await eventually(lambda: control.state == "HALTED")
    mm.set_emergency(False, "resolved")
    await eventually(lambda: control.state == "ACTIVE")  # auto: the emergency put it there
    # ABP and MM both on: MM clearing leaves ABP's emergency in force
    env.risk.on_execution_event(VenueAlert(VenueAlertKind.EMERGENCY_ON, "maintenance", env.clock.now()))
    mm.set_emergency(True, "Manual trigger")
    await eventually(lambda: "mm" in control.record.emergency_sources)
    assert control.record.emergency_reason == "maintenance; MM: Manual trigger"
    mm.set_emergency(False, "resolved")
    await eventually(lambda: "mm" not in control.record.emergency_sources)
    assert control.record.emergency and control.state == "HALTED"
    env.risk.on_execution_event(VenueAlert(VenueAlertKind.EMERGENCY_OFF, "", env.clock.now()))
    assert not control.record.emergency and control.state == "ACTIVE"
    # the sources survive a restart (the record is in the ledger)
    mm.set_emergency(True, "again")
    await eventually(lambda: control.record.emergency)
    assert env.new_risk().control.record.emergency_sources == {"mm": "again"}
    await link.stop()
