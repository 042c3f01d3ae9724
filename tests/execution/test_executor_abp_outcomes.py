"""Executor + AbpVenue against the local ABP server: no order is closed without the venue's word
(docs/architecture.md, "Live venue (ABP)"; docs/reference/abp.md §2, §8.4, §10)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.clock import WallClock
from bot.execution.abp_venue import AbpVenue
from bot.execution.config import ExecutionConfig
from bot.execution.executor import Executor
from bot.ledger.models import OrderRow
from bot.ledger.store import Ledger
from bot.sim.abp_server import LocalAbpServer
from bot.types import ExecutionEvent, OrderStatus, OrderUpdate
from tests.execution.conftest import API_KEY, abp_config
from tests.execution.helpers import Events, eventually, intent
from tests.execution.test_paper import BookQuotes

FAST = {"reconcile_interval_seconds": 0.05}


async def live(
    tmp_path: Path, server: LocalAbpServer, events: Events | None = None, *, ledger: Ledger | None = None,
    execution: dict[str, Any] | None = None, **abp: Any,
) -> tuple[Ledger, AbpVenue, Events, Executor]:
    """A started executor on the server, its emergency state known (clear)."""
    ledger = ledger or Ledger(tmp_path / "bot.db")
    venue = AbpVenue(abp_config(server, **{"emergency_wait_seconds": 0.1, **abp}), ledger)
    events = events or Events()
    ex = Executor(venue, ledger, WallClock(), ExecutionConfig(**{**FAST, **(execution or {})}), events)
    await ex.start()
    await eventually(lambda: venue.stream is not None and venue.stream.emergency is False)
    return ledger, venue, events, ex


def placements(server: LocalAbpServer, request_uuid: str | None = None) -> list[dict]:
    """POST /place-orders requests the server received (naming `request_uuid`, if given)."""
    return [r for r in server.requests if r["path"] == "/place-orders"
            and (request_uuid is None or any(o.get("requestUuid") == request_uuid for o in r["body"]["orders"]))]


def statuses(events: Events, request_uuid: str) -> list[OrderStatus]:
    return [e.status for e in events.of(OrderUpdate) if e.request_uuid == request_uuid]


@pytest.fixture
async def pending() -> AsyncIterator[tuple[LocalAbpServer, BookQuotes]]:
    """A server whose book offers 1.8, under the intents' 2.0 floor: orders wait until the test
    raises the price."""
    quotes = BookQuotes({"paper": 1.8})
    srv = LocalAbpServer(api_key=API_KEY, quotes=quotes, ping_seconds=0.2, bookmakers=["paper"], accounts=[])
    srv.base_url = await srv.start()
    yield srv, quotes
    await srv.stop()


@pytest.mark.parametrize("reply", ["decline", "409"])
async def test_duplicate_answer_means_look_it_up(tmp_path: Path, pending: tuple[LocalAbpServer, BookQuotes],
                                                 reply: str) -> None:
    # Old behaviour caught ("decline"): a "Duplicate requestUuid" decline (ABP R1: the first request
    # is still in flight) closed the order DECLINED, and its later FILLED was ignored.
    server, quotes = pending
    ledger, _venue, events, ex = await live(tmp_path, server, place_timeout_seconds=1.0)
    server.faults.duplicate_reply = reply
    server.faults.place_delay_seconds = 1.3  # the first request is stored after the client gave up
    submit = asyncio.create_task(ex.submit([intent(expires_in=30)]))
    await eventually(lambda: len(placements(server)) == 1)
    server.faults.place_delay_seconds = 0.6  # the resend is answered, after the first one is stored
    (u,) = await submit
    await eventually(lambda: len(ledger.events("place.response")) == 1)  # the resend's answer
    assert len(placements(server, u)) == 2 and ledger.get_order(u).status in ("UNKNOWN", "PENDING")
    await eventually(lambda: ledger.get_order(u).status == "PENDING")
    quotes.prices = {"paper": 2.2}  # the book now clears the floor: the venue fills the order
    await eventually(lambda: ledger.get_order(u).status == "FILLED")
    assert OrderStatus.DECLINED not in statuses(events, u)
    assert len(server.venue.orders(request_uuids=[u])) == 1 and ledger.get_order(u).filled_stake == Decimal(10)
    await ex.stop(cancel_pending=False)
    ledger.close()


FAULTS: dict[str, dict[str, Any]] = {  # each outlasts the 0.3 s placement timeout
    "place_delay": {"place_delay_seconds": 0.8},  # stored 0.8 s after arrival; the resend too
    "delay": {"delay_seconds": 0.5},  # the placement is handled 0.5 s after arrival
    "drop_after_store": {"drop_after_store": 1, "drop_hang_seconds": 1.0},  # stored, answer lost
}


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_lost_answer_ends_as_the_venue_says_never_expired(tmp_path: Path, server: LocalAbpServer,
                                                                 fault: str) -> None:
    # Old behaviour caught ("place_delay", "delay"): a lookup after expiresAt that did not find the
    # order (the venue still processing the slow request) closed it EXPIRED; the venue filled it.
    ledger, _venue, events, ex = await live(tmp_path, server, place_timeout_seconds=0.3, timeout_seconds=2.0,
                                            execution={"unknown_grace_seconds": 3.0})
    for run in range(3):
        for name, value in FAULTS[fault].items():
            setattr(server.faults, name, value)
        (u,) = await ex.submit([intent(expires_in=0.4 if fault == "place_delay" else 0.2)])
        assert ledger.get_order(u).status in ("UNKNOWN", "FILLED"), run  # no answer in time; the stream may tell
        server.faults.delay_seconds = 0.0  # lookups answer at once, before the slow placement is stored
        await eventually(lambda: ledger.get_order(u).status == "FILLED", timeout=4.0)  # noqa: B023
        server.faults.place_delay_seconds = 0.0
        assert OrderStatus.EXPIRED not in statuses(events, u), run
        (order,) = server.venue.orders(request_uuids=[u])
        assert order["orderStatus"] == "FILLED" and ledger.get_order(u).filled_stake == Decimal(10), run
    await ex.stop(cancel_pending=False)
    ledger.close()


async def test_rate_limited_until_expiry_is_never_sent_late(tmp_path: Path, server: LocalAbpServer) -> None:
    # Old behaviour caught: POST /place-orders kept retrying 429s past the order's expiresAt (5
    # tries), so the 4th try placed the order after its expiry.
    ledger, _venue, _events, ex = await live(tmp_path, server)
    server.faults.rate_limit = 3
    server.faults.retry_after = 0.3
    (u,) = await ex.submit([intent(expires_in=0.5)])
    row = ledger.get_order(u)
    assert (row.status, row.status_reason) == ("EXPIRED", "rate limited until expiry; never placed")
    assert len(placements(server, u)) == 2  # at 0 s and 0.3 s; the next wait would end past 0.5 s
    assert server.venue.orders(request_uuids=[u]) == []
    await ex.stop(cancel_pending=False)
    ledger.close()


class FillDuringReconcile(Events):
    """on_event that, when `trigger` expires, has the venue store and fill `body` and waits until
    the stream brought the FILLED into the ledger: the venue answers while a reconcile pass is
    between its lookup and its resends."""

    def __init__(self, server: LocalAbpServer, ledger: Ledger, trigger: str, body: dict) -> None:
        super().__init__()
        self.server, self.ledger, self.trigger, self.body = server, ledger, trigger, body

    async def __call__(self, event: ExecutionEvent) -> None:
        await super().__call__(event)
        if isinstance(event, OrderUpdate) and event.request_uuid == self.trigger and event.status is OrderStatus.EXPIRED:
            self.server.venue.place({"orders": [self.body]})
            u = self.body["requestUuid"]
            await eventually(lambda: self.ledger.get_order(u).status == "FILLED")


def _row(uuid_: str, status: str, created: datetime, expires: datetime) -> OrderRow:
    return OrderRow(request_uuid=uuid_, signal_id=uuid_, strategy="value", selection="x", order_price=2.0,
                    stake=Decimal(5), status=status, fixture_id="id1000004461512432", outcome_id=101,
                    bookmakers="paper", user_ref="value", attempts=1, created_at=created, expires_at=expires)


async def test_reconcile_never_revives_a_final_order(tmp_path: Path, server: LocalAbpServer) -> None:
    # Old behaviour caught: the reconcile pass resent an order its lookup had not found although the
    # stream had FILLED it meanwhile: `_send` wrote SENT over FILLED and placed it again.
    now = datetime.now(UTC)
    stale = _row("00000000-0000-4000-8000-00000000000b", "SENT", now - timedelta(minutes=3), now - timedelta(minutes=2))
    lost = _row("00000000-0000-4000-8000-00000000000a", "UNKNOWN", now, now + timedelta(seconds=30))
    ledger = Ledger(tmp_path / "bot.db")
    ledger.add_orders([stale, lost])  # stale first: the pass settles it before deciding on `lost`
    body = {"requestUuid": lost.request_uuid, "fixtureId": lost.fixture_id, "outcomeId": 101, "playerId": 0,
            "orderPrice": 2.0, "orderStake": 5.0, "userRef": "value", "testOrder": False, "bookmakers": "paper"}
    events = FillDuringReconcile(server, ledger, stale.request_uuid, body)
    ledger, _venue, _events, ex = await live(tmp_path, server, events, ledger=ledger,
                                             execution={"unknown_grace_seconds": 1.0})
    assert ledger.get_order(stale.request_uuid).status == "EXPIRED"
    assert ledger.get_order(lost.request_uuid).status == "FILLED"
    assert placements(server) == []  # the FILLED order was not sent again
    assert statuses(events, lost.request_uuid).count(OrderStatus.FILLED) == 1
    await ex.stop(cancel_pending=False)
    ledger.close()


class PollDuringScreen(Events):
    """on_event that, on the decline of an unmapped order (made while its batch is screened, before
    the batch's other orders leave), waits for two more reconcile passes (GET /orders requests)."""

    def __init__(self, server: LocalAbpServer) -> None:
        super().__init__()
        self.server = server

    async def __call__(self, event: ExecutionEvent) -> None:
        await super().__call__(event)
        if isinstance(event, OrderUpdate) and (event.reason or "").startswith("not sent: unmapped"):
            seen = len(lookups(self.server))
            await eventually(lambda: len(lookups(self.server)) >= seen + 2)


def lookups(server: LocalAbpServer) -> list[dict]:
    return [r for r in server.requests if r["path"] == "/orders"]


async def test_reconcile_keeps_off_orders_a_placement_owns(tmp_path: Path, pending: tuple[LocalAbpServer, BookQuotes]) -> None:
    # Old behaviour caught: between the INTENT commit and the request, the reconcile pass took the
    # new order for a lost one, looked it up and placed it itself; then submit placed it again.
    server, _quotes = pending
    now = datetime.now(UTC)
    polled = _row("00000000-0000-4000-8000-00000000000c", "PENDING", now, now + timedelta(seconds=60))
    server.venue.place({"orders": [{"requestUuid": polled.request_uuid, "fixtureId": polled.fixture_id,
                                    "outcomeId": 101, "playerId": 0, "orderPrice": 2.0, "orderStake": 5.0,
                                    "userRef": "value", "testOrder": False, "bookmakers": "paper"}]})
    ledger = Ledger(tmp_path / "bot.db")
    ledger.add_orders([polled])  # PENDING: looked up by every reconcile pass
    ledger, _venue, _events, ex = await live(tmp_path, server, PollDuringScreen(server), ledger=ledger)
    _unmapped, u = await ex.submit([intent(mapped=False), intent(expires_in=30)])
    assert ledger.get_order(u).status == "PENDING"
    assert len(placements(server, u)) == 1
    assert not any(u in r["query"].get("requestUuids", "") for r in lookups(server))
    await ex.stop(cancel_pending=False)
    ledger.close()
