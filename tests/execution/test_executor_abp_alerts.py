"""Venue news for risk: emergency state and breakers as `VenueAlert`s, emergency gating without
the undocumented GET /status (docs/architecture.md, "Live venue (ABP)"; docs/reference/abp.md §3,
§10, §13.2)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from bot.clock import WallClock
from bot.execution.abp_venue import AbpVenue
from bot.execution.config import ExecutionConfig
from bot.execution.executor import Executor
from bot.execution.venue import VenueAuthError
from bot.ledger.store import Ledger
from bot.sim.abp_server import LocalAbpServer
from bot.sim.paper import StakeLimits
from bot.types import VenueAlert, VenueAlertKind
from tests.execution.conftest import API_KEY, abp_config
from tests.execution.helpers import Events, eventually, intent
from tests.execution.test_executor_abp_outcomes import FAST, live


def alerts(events: Events, kind: VenueAlertKind | None = None, *, assumed: bool = False) -> list[VenueAlert]:
    """The alerts, without the all-clear assumed after each login unless `assumed`."""
    return [a for a in events.of(VenueAlert) if (kind is None or a.kind is kind)
            and (assumed or "no emergency frame" not in a.reason)]


async def test_emergency_frames_become_alerts_once_per_change(tmp_path: Path, server: LocalAbpServer) -> None:
    # Old behaviour caught: emergency frames were only logged; risk got no VenueAlert.
    ledger, _venue, events, ex = await live(tmp_path, server)
    # no frame after login: the state is taken as clear, and risk is told so (an emergency that
    # ended while the bot was away must end in risk too)
    await eventually(lambda: len(alerts(events, assumed=True)) == 1)
    assumed = alerts(events, assumed=True)[0]
    assert assumed.kind is VenueAlertKind.EMERGENCY_OFF and "no emergency frame" in assumed.reason
    server.venue.set_emergency(True, "upstream maintenance")
    server.venue.set_emergency(True, "upstream maintenance")  # a repeat is not news
    server.venue.set_emergency(False, "")
    await eventually(lambda: len(alerts(events, assumed=True)) == 3)
    assert [(a.kind, a.reason) for a in alerts(events, assumed=True)[1:]] == [
        (VenueAlertKind.EMERGENCY_ON, "upstream maintenance"), (VenueAlertKind.EMERGENCY_OFF, "")]
    async with httpx.AsyncClient(base_url=server.base_url) as http:  # the flag on the `status` channel
        await http.post("/_admin/status", json={"status": "degraded", "emergency": {"active": True, "reason": "db"}})
    await eventually(lambda: len(alerts(events, assumed=True)) == 4)
    assert (alerts(events, assumed=True)[-1].kind, alerts(events, assumed=True)[-1].reason) == (VenueAlertKind.EMERGENCY_ON, "db")
    await ex.stop(cancel_pending=False)
    ledger.close()


@pytest.mark.parametrize("status_endpoint", [False, True])
async def test_status_endpoint_is_asked_only_when_configured(tmp_path: Path, server: LocalAbpServer,
                                                             status_endpoint: bool) -> None:
    # Old behaviour caught (False): with the stream's state unknown, GET /status (not in the ABP
    # documents) was asked, and without it every order was declined "emergency state unknown".
    ledger = Ledger(tmp_path / "bot.db")
    venue = AbpVenue(abp_config(server, emergency_wait_seconds=0.5, status_endpoint=status_endpoint), ledger)
    ex = Executor(venue, ledger, WallClock(), ExecutionConfig(**FAST), Events())
    await ex.start()
    assert venue.stream.emergency is None  # no emergency frame yet: unknown
    (u,) = await ex.submit([intent()])
    assert ledger.get_order(u).status == "FILLED"  # GET /status said clear, or the bounded wait ended
    # True: GET /status answered at once, before the stream's wait ended; False: it waited for the stream
    assert venue.stream.emergency is (None if status_endpoint else False)
    await ex.stop(cancel_pending=False)
    ledger.close()


async def test_orders_wait_while_the_emergency_state_is_unknown_then_fail_closed(
        tmp_path: Path, server: LocalAbpServer) -> None:
    # Fail closed: a stream that cannot log in never makes the state known; the order waits the
    # bounded time and is then declined without a request (never sent on an unknown state).
    ledger = Ledger(tmp_path / "bot.db")
    venue = AbpVenue(abp_config(server, emergency_wait_seconds=0.2, api_key="wrong-key"), ledger)
    ex = Executor(venue, ledger, WallClock(), ExecutionConfig(**FAST), Events())
    await ex.start()
    (u,) = await ex.submit([intent()])
    row = ledger.get_order(u)
    assert (row.status, row.status_reason) == ("DECLINED", "not sent: emergency state unknown (fail closed)")
    assert not [r for r in server.requests if r["path"] == "/place-orders"]
    await ex.stop(cancel_pending=False)
    ledger.close()


async def test_unavailable_venue_alerts_with_the_orders_books(tmp_path: Path, server: LocalAbpServer) -> None:
    # Old behaviour caught: 5xx on a placement or a lookup reached no breaker (no VenueAlert).
    ledger, _venue, events, ex = await live(tmp_path, server, max_attempts=1)
    server.faults.fail_5xx = 2  # the placement, then the first lookup
    (u,) = await ex.submit([intent(books=("paper",), expires_in=10)])
    await eventually(lambda: ledger.get_order(u).status == "FILLED")  # 503: not processed; resent
    unavailable = alerts(events, VenueAlertKind.UNAVAILABLE)
    assert [a.bookmakers for a in unavailable] == [("paper",), ()]  # placement: its books; lookup: none
    assert len(server.venue.orders(request_uuids=[u])) == 1
    await ex.stop(cancel_pending=False)
    ledger.close()


async def test_refused_key_alerts_auth_failed(tmp_path: Path, server: LocalAbpServer) -> None:
    # Old behaviour caught: a 401 closed the order DECLINED with no alert, so trading went on.
    ledger, _venue, events, ex = await live(tmp_path, server)
    server.api_key = "rotated-key"  # the stream stays logged in; every REST request is now 401
    (u,) = await ex.submit([intent()])
    assert ledger.get_order(u).status == "DECLINED"
    with pytest.raises(VenueAuthError):
        await ex.cancel([u])
    assert [a.kind for a in alerts(events)] == [VenueAlertKind.AUTH_FAILED] * 2
    server.api_key = API_KEY
    await ex.stop(cancel_pending=False)
    ledger.close()


async def test_bookmaker_not_available_alerts_that_book(tmp_path: Path, server: LocalAbpServer) -> None:
    # Old behaviour caught: the decline closed the order but no breaker heard of the book.
    ledger, _venue, events, ex = await live(tmp_path, server)
    (u,) = await ex.submit([intent(books=("sharpbet",))])  # not offered to this key
    row = ledger.get_order(u)
    assert row.status == "DECLINED" and row.status_reason.startswith("Bookmaker not available")
    (alert,) = alerts(events)
    assert (alert.kind, alert.bookmakers) == (VenueAlertKind.BOOKMAKER_UNAVAILABLE, ("sharpbet",))
    await ex.stop(cancel_pending=False)
    ledger.close()


async def test_stake_limit_decline_records_the_limit(tmp_path: Path) -> None:
    # Old behaviour caught: the limit of a "Stake exceeds limit" decline was not recorded.
    server = LocalAbpServer(api_key=API_KEY, ping_seconds=0.2, bookmakers=["paper"], accounts=[],
                            book_limits={"paper": StakeLimits(max_stake=Decimal(50))})
    server.base_url = await server.start()
    try:
        ledger, _venue, _events, ex = await live(tmp_path, server, execution={"accept_partial_stake": False})
        (u,) = await ex.submit([intent("100")])
        assert ledger.get_order(u).status == "DECLINED"
        (limit,) = ledger.events("venue.stake_limit")
        assert (limit.request_uuid, limit.payload["limit"], limit.payload["currency"]) == (u, "50.00", "USD")
        await ex.stop(cancel_pending=False)
        ledger.close()
    finally:
        await server.stop()
