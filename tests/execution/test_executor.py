"""Executor over the in-process PaperVenue and over AbpVenue against the local ABP server."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.clock import ReplayClock, WallClock
from bot.execution.abp_venue import AbpVenue
from bot.execution.config import ExecutionConfig, PaperConfig
from bot.execution.executor import Executor
from bot.execution.venue import PlaceReply, VenueMessage
from bot.ledger.models import OrderRow
from bot.ledger.store import Ledger
from bot.sim.abp_server import LocalAbpServer
from bot.sim.paper import PaperVenue
from bot.types import Fill, OrderStatus, OrderUpdate, Settlement, SettlementStatus
from tests.execution.conftest import abp_config
from tests.execution.helpers import KICKOFF, Events, eventually, intent
from tests.execution.test_paper import BookQuotes

CFG = ExecutionConfig(reconcile_interval_seconds=0.1)


def paper_setup(tmp_path: Path, prices: dict[str, float | None]) -> tuple[PaperVenue, Ledger, ReplayClock, Events, Executor]:
    clock = ReplayClock(KICKOFF - timedelta(hours=2))
    venue = PaperVenue(clock, BookQuotes(prices), PaperConfig(default_max_stake=100))
    ledger = Ledger(tmp_path / "bot.db", clock=clock)
    events = Events()
    return venue, ledger, clock, events, Executor(venue, ledger, clock, CFG, events)


async def test_paper_fill_settle_and_meta(tmp_path: Path) -> None:
    venue, ledger, clock, events, ex = paper_setup(tmp_path, {"paper": 2.1})
    await ex.start()
    now = clock.now()
    uuids = await ex.submit([intent(now=now, tag="arb-7"), intent(mapped=False, now=now), intent("150", now=now)])
    rows = {r.request_uuid: r for r in ledger.orders()}
    assert [rows[u].status for u in uuids] == ["FILLED", "FILLED", "PARTIALLY_FILLED"]
    assert rows[uuids[2]].filled_stake == Decimal(80)  # limit 100 per selection and book, 20 used
    (order,) = venue.orders(request_uuids=[uuids[0]])
    assert order["meta"] == {"selection": rows[uuids[0]].selection, "signal_id": rows[uuids[0]].signal_id,
                             "strategy": "value"}
    assert order["userRef"] == "arb-7" and venue.orders(request_uuids=[uuids[2]])[0]["userRef"] == "value"
    assert venue.orders(request_uuids=[uuids[1]])[0]["fixtureId"] is None  # unmapped: paper only
    fills = events.of(Fill)
    assert len(fills) == 3 and {f.request_uuid for f in fills} == set(uuids)
    assert [u.status for u in events.of(OrderUpdate) if u.request_uuid == uuids[0]][-1] is OrderStatus.FILLED
    venue.settle(fills[0].bet_id, SettlementStatus.WON)
    await venue.flush()
    (settled,) = events.of(Settlement)
    assert settled.amount == Decimal("21.00") and settled.pnl == Decimal("11.00")
    assert ledger.settled_pnl() == Decimal("11.00")
    assert [b.settlement_status for b in ledger.bets(uuids[0])] == ["WON"]
    await ex.stop(cancel_pending=True)


async def test_paper_expiry_and_emergency(tmp_path: Path) -> None:
    venue, ledger, clock, _events, ex = paper_setup(tmp_path, {"paper": 1.8})
    await ex.start()
    (u,) = await ex.submit([intent(now=clock.now())])
    assert ledger.get_order(u).status == "PENDING"
    clock.advance(clock.now() + timedelta(seconds=6))
    venue.advance()
    await venue.flush()
    assert ledger.get_order(u).status == "EXPIRED"
    venue.set_emergency(True, "maintenance")
    (blocked,) = await ex.submit([intent(now=clock.now())])
    row = ledger.get_order(blocked)
    assert row.status == "DECLINED" and row.status_reason.startswith("not sent: emergency")
    assert venue.orders(request_uuids=[blocked]) == []  # nothing left the process
    await ex.stop(cancel_pending=False)


async def test_startup_reconciles_before_new_orders(tmp_path: Path) -> None:
    venue, ledger, clock, _events, ex = paper_setup(tmp_path, {"paper": 2.1})
    now = clock.now()
    # left by a crashed run: committed, never sent; sent and stored; expired past the unknown grace
    never_sent = OrderRow(request_uuid="00000000-0000-4000-8000-000000000001", signal_id="a", strategy="value",
                          selection="x", order_price=2.0, stake=Decimal(5), status="INTENT",
                          fixture_id="id1", outcome_id=101, expires_at=now + timedelta(seconds=30))
    stale = OrderRow(request_uuid="00000000-0000-4000-8000-000000000002", signal_id="b", strategy="value",
                     selection="x", order_price=2.0, stake=Decimal(5), status="SENT",
                     fixture_id="id1", outcome_id=101, expires_at=now - timedelta(minutes=2))
    ledger.add_orders([never_sent, stale])
    stored = ex.order_body(ledger.get_order(never_sent.request_uuid) or never_sent)
    stored["requestUuid"] = "00000000-0000-4000-8000-000000000003"
    ledger.add_orders([OrderRow(request_uuid=stored["requestUuid"], signal_id="c", strategy="value",
                                selection="x", order_price=2.0, stake=Decimal(5), status="UNKNOWN",
                                fixture_id="id1", outcome_id=101, expires_at=now + timedelta(seconds=30))])
    venue.place({"orders": [stored]})  # the venue has this one already
    await ex.start()
    assert ledger.get_order(never_sent.request_uuid).status == "FILLED"  # resent, same uuid
    assert ledger.get_order(stale.request_uuid).status == "EXPIRED"  # unknown to venue, past expiry + grace
    assert ledger.get_order(stored["requestUuid"]).status == "FILLED"  # found, not re-placed
    assert len(venue.orders(request_uuids=[stored["requestUuid"]])) == 1
    assert venue.orders(request_uuids=[stale.request_uuid]) == []
    await ex.stop(cancel_pending=False)


class CorruptingVenue:
    """A venue whose answers and pushes are damaged on demand (bad venue input)."""

    name = "corrupt"
    accepts_unmapped = True
    recovery = None

    def __init__(self, inner: PaperVenue) -> None:
        self.inner = inner
        self.mangle: Any = None
        self.on_message: Any = None

    async def connect(self, on_message) -> None:
        self.on_message = on_message  # the inner venue's clean pushes stay off: answers only

    async def close(self) -> None:
        await self.inner.close()

    async def place_orders(self, orders: Sequence[dict]) -> PlaceReply:
        reply = await self.inner.place_orders(orders)
        return PlaceReply(reply.status, self.mangle(reply.body)) if self.mangle else reply

    async def find_orders(self, uuids: Sequence[str]) -> list[Any]:
        rows = await self.inner.find_orders(uuids)
        return [self.mangle({"acceptedOrders": [r]})["acceptedOrders"][0] for r in rows] if self.mangle else rows

    async def cancel_orders(self, uuids):
        return await self.inner.cancel_orders(uuids)

    async def cancel_all_orders(self):
        return await self.inner.cancel_all_orders()

    async def emergency_active(self):
        return False


def _each_order(fn):
    def mangle(body: dict) -> dict:
        return {**body, "acceptedOrders": [fn(dict(o)) for o in body["acceptedOrders"]]}
    return mangle


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda o: {**o, "orderStatus": "HALF_BAKED"}, id="unknown-status"),
        pytest.param(lambda o: {**o, "filledStake": "lots"}, id="wrong-type"),
        pytest.param(lambda o: {k: v for k, v in o.items() if k != "orderStatus"}, id="missing-field"),
        pytest.param(lambda o: {**o, "bets": [{**o["bets"][0], "betStatus": 7}]}, id="bad-bet"),
    ],
)
async def test_bad_venue_input_is_stored_marked_unknown_then_reconciled(tmp_path: Path, damage) -> None:
    clock = ReplayClock(KICKOFF - timedelta(hours=2))
    inner = PaperVenue(clock, BookQuotes({"paper": 2.1}))
    venue = CorruptingVenue(inner)
    ledger = Ledger(tmp_path / "bot.db", clock=clock)
    events = Events()
    ex = Executor(venue, ledger, clock, CFG, events)
    await ex.start()
    venue.mangle = _each_order(damage)
    (u,) = await ex.submit([intent(now=clock.now())])
    row = ledger.get_order(u)
    assert row.status == "UNKNOWN"
    (bad,) = [e for e in ledger.events("venue.bad_input")][:1]
    assert bad.payload["raw"]["requestUuid"] == u and bad.payload["source"] == "place.accepted"
    assert ex.bad_input_count >= 1
    # garbage on the stream is stored too, and never stops the executor
    await venue.on_message(VenueMessage("orders", "UPDATE", {"requestUuid": u, "orderStatus": 42}))
    await venue.on_message(VenueMessage("bets", "INSERT", ["not", "a", "bet"]))
    assert len(ledger.events("venue.bad_input")) >= 3
    venue.mangle = None  # the venue recovers: reconciliation resolves the order
    await eventually(lambda: ledger.get_order(u).status == "FILLED")
    assert len(inner.orders(request_uuids=[u])) == 1  # never placed twice
    (u2,) = await ex.submit([intent(now=clock.now())])
    assert ledger.get_order(u2).status == "FILLED"
    await ex.stop(cancel_pending=False)


async def test_unknown_fields_are_logged_but_applied(tmp_path: Path) -> None:
    clock = ReplayClock(KICKOFF - timedelta(hours=2))
    inner = PaperVenue(clock, BookQuotes({"paper": 2.1}))
    venue = CorruptingVenue(inner)
    ledger = Ledger(tmp_path / "bot.db", clock=clock)
    ex = Executor(venue, ledger, clock, CFG, Events())
    await ex.start()
    venue.mangle = _each_order(lambda o: {**o, "brandNewField": {"x": 1}})
    (u,) = await ex.submit([intent(now=clock.now())])
    assert ledger.get_order(u).status == "FILLED"
    (ev,) = ledger.events("venue.unknown_fields")
    assert ev.payload["fields"] == ["brandNewField"] and ev.payload["raw"]["brandNewField"] == {"x": 1}
    await ex.stop(cancel_pending=False)


# -- AbpVenue over loopback -------------------------------------------------------------------


async def abp_setup(tmp_path: Path, server: LocalAbpServer, **cfg: Any):
    ledger = Ledger(tmp_path / "bot.db")
    venue = AbpVenue(abp_config(server, **cfg), ledger)
    events = Events()
    ex = Executor(venue, ledger, WallClock(), CFG, events)
    await ex.start()
    return ledger, venue, events, ex


def placements(server: LocalAbpServer) -> list[dict]:
    return [r for r in server.requests if r["path"] == "/place-orders"]


async def test_intents_ready_together_go_in_one_call(tmp_path: Path, server: LocalAbpServer) -> None:
    ledger, _venue, _events, ex = await abp_setup(tmp_path, server)
    uuids = await ex.submit([intent() for _ in range(5)])
    assert len(placements(server)) == 1 and len(placements(server)[0]["body"]["orders"]) == 5
    assert [ledger.get_order(u).status for u in uuids] == ["FILLED"] * 5
    await ex.stop(cancel_pending=False)
    ledger.close()


async def test_response_dropped_after_store_ends_filled_once(tmp_path: Path, server: LocalAbpServer) -> None:
    ledger, _venue, events, ex = await abp_setup(tmp_path, server, timeout_seconds=0.3)
    server.faults.drop_after_store = 1
    (u,) = await ex.submit([intent()])
    await eventually(lambda: ledger.get_order(u).status == "FILLED")
    assert ledger.get_order(u).filled_stake == Decimal(10)
    assert len(placements(server)) == 1  # no second placement
    assert len(server.venue.orders(request_uuids=[u])) == 1
    assert [f.request_uuid for f in events.of(Fill)] == [u]
    await ex.stop(cancel_pending=False)
    ledger.close()


async def test_emergency_on_no_order_leaves(tmp_path: Path, server: LocalAbpServer) -> None:
    ledger, venue, _events, ex = await abp_setup(tmp_path, server)
    server.venue.set_emergency(True, "upstream maintenance")
    await eventually(lambda: venue.stream.emergency is True)
    uuids = await ex.submit([intent(), intent()])
    assert placements(server) == []
    assert {ledger.get_order(u).status for u in uuids} == {"DECLINED"}
    server.venue.set_emergency(False)
    await eventually(lambda: venue.stream.emergency is False)
    (u,) = await ex.submit([intent()])
    assert ledger.get_order(u).status == "FILLED" and len(placements(server)) == 1
    await ex.stop(cancel_pending=False)
    ledger.close()


async def test_ws_drop_missing_fills_recovered_via_rest(tmp_path: Path) -> None:
    quotes = BookQuotes({"paper": 1.8})
    server = LocalAbpServer(api_key="local-test-key", quotes=quotes, ping_seconds=0.2, bookmakers=["paper"])
    server.base_url = await server.start()
    try:
        ledger, venue, events, ex = await abp_setup(tmp_path, server)
        (u,) = await ex.submit([intent(expires_in=30)])
        assert ledger.get_order(u).status == "PENDING"
        logins = venue.stream.logins
        server.drop_streams()  # messages while down are lost (lose_while_down)
        quotes.prices = {"paper": 2.2}  # the server fills while we are away
        await eventually(lambda: server.venue.orders(request_uuids=[u])[0]["orderStatus"] == "FILLED")
        await eventually(lambda: ledger.get_order(u).status == "FILLED")
        await eventually(lambda: venue.stream.logins > logins)  # the re-login may come after the REST recovery
        (bet,) = ledger.bets(u)
        assert bet.placed_price == 2.2 and [f.request_uuid for f in events.of(Fill)] == [u]
        # a seq gap (messages numbered but never sent) also triggers REST reconciliation
        quotes.prices = {"paper": 1.8}
        (u2,) = await ex.submit([intent(expires_in=30)])
        server.faults.ws_gap = 2  # the bet INSERT and order UPDATE of the fill vanish
        quotes.prices = {"paper": 2.3}
        await eventually(lambda: server.venue.orders(request_uuids=[u2])[0]["orderStatus"] == "FILLED")
        server.venue.set_emergency(False, "")  # any later message reveals the gap
        await eventually(lambda: ledger.get_order(u2).status == "FILLED")
        assert venue.stream.gaps >= 1 and len(ledger.bets(u2)) == 1
        await ex.stop(cancel_pending=False)
        ledger.close()
    finally:
        await server.stop()


async def test_stream_betslip_ping_replay(tmp_path: Path, server: LocalAbpServer) -> None:
    received: list[VenueMessage] = []

    async def collect(msg: VenueMessage) -> None:
        received.append(msg)

    from bot.execution.abp_stream import AbpStream

    ledger = Ledger(tmp_path / "bot.db")
    cfg = abp_config(server, ws_channels=[])
    stream = AbpStream(cfg, ledger, collect)
    await stream.start()
    await stream.subscribe_betslip("id1000004461512432", 101, 0, ["paper"], ttl=5)
    await eventually(lambda: any(m.channel == "betslip" for m in received))
    slip = next(m for m in received if m.channel == "betslip")
    assert slip.payload["odds"]["paper"]
    await stream.unsubscribe_betslip("id1000004461512432", 101, 0)
    await asyncio.sleep(0.7)  # several ping rounds both ways (0.2 s): the session stays up
    assert stream.logins == 1 and stream.logged_in.is_set()
    seq_before = stream.last_seq
    assert ledger.get_state("abp.stream")["seq"] == seq_before  # persisted after processing
    await stream.stop()
    # a message while we are away is replayed after reconnect from the persisted seq
    server.faults.lose_while_down = False
    server.venue.set_emergency(True, "x")
    again = AbpStream(cfg, ledger, collect)
    assert again.last_seq == seq_before
    await again.start()
    await eventually(lambda: again.emergency is True)
    assert again.last_seq > seq_before
    await again.stop()
    ledger.close()
