"""REST recovery of what the stream missed, and DELETE events (docs/reference/abp.md §13.3-13.4;
docs/architecture.md, "Live venue (ABP)")."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx

from bot.ledger.store import Ledger
from bot.risk.positions import PositionBook
from bot.sim.abp_server import LocalAbpServer
from bot.types import BetStatus, ExecutionEvent, Fill, Settlement, SettlementStatus
from tests.execution.helpers import Events, eventually, intent
from tests.execution.test_executor_abp_outcomes import live


async def _filled_bet(tmp_path: Path, server: LocalAbpServer, events: Events | None = None, **abp):
    ledger, venue, events, ex = await live(tmp_path, server, events, **abp)
    (u,) = await ex.submit([intent()])
    await eventually(lambda: len(ledger.bets(u)) == 1)
    return ledger, venue, events, ex, u, ledger.bets(u)[0].bet_id


async def test_settlement_lost_while_the_stream_is_down_is_recovered(tmp_path: Path, server: LocalAbpServer) -> None:
    # Old behaviour caught: after a reconnect only orders not final were looked up; the settlement of
    # a FILLED order's bet, sent while the stream was down, stayed UNSETTLED for ever.
    ledger, venue, events, ex, u, bet_id = await _filled_bet(tmp_path, server)
    logins = venue.stream.logins
    server.drop_streams()  # POST /_admin/ws-drop and /_admin/settle in one step: the settlement
    server.venue.settle(bet_id, SettlementStatus.WON)  # surely falls while down (lose_while_down)
    await eventually(lambda: venue.stream.logins > logins)
    await eventually(lambda: ledger.bets(u)[0].settlement_status == "WON")
    (settled,) = events.of(Settlement)
    assert settled.bet_id == bet_id and settled.amount == Decimal("20.00") and ledger.settled_pnl() == Decimal(10)
    assert any(r["path"] == "/bets" and r["query"]["orderIds"] == str(ledger.get_order(u).order_id)
               for r in server.requests)
    await ex.stop(cancel_pending=False)
    ledger.close()


async def test_recovery_runs_every_interval_without_a_resync(tmp_path: Path, server: LocalAbpServer) -> None:
    # Old behaviour caught: a message lost with nothing after it (no gap seen, no reconnect) was
    # never fetched: there was no periodic GET /bets.
    ledger, _venue, events, ex, u, bet_id = await _filled_bet(tmp_path, server, recovery_interval_seconds=0.3)
    server.faults.ws_gap = 1  # the settlement frame is numbered but never sent, and nothing follows
    server.venue.settle(bet_id, SettlementStatus.LOST)
    await eventually(lambda: ledger.bets(u)[0].settlement_status == "LOST", timeout=3.0)
    assert [s.pnl for s in events.of(Settlement)] == [Decimal(-10)]
    await ex.stop(cancel_pending=False)
    ledger.close()


class Exposure(Events):
    """The executor's events applied to a PositionBook, as the risk manager applies fills."""

    def __init__(self) -> None:
        super().__init__()
        self.book = PositionBook()
        self.ledger: Ledger | None = None

    async def __call__(self, event: ExecutionEvent) -> None:
        await super().__call__(event)
        if isinstance(event, Fill) and self.ledger is not None:
            self.book.apply_fill(event, self.ledger.get_order)


async def test_deleted_bet_leaves_exposure(tmp_path: Path, server: LocalAbpServer) -> None:
    # Old behaviour caught: a `bets` DELETE was applied as an update: the bet stayed CONFIRMED in
    # the ledger and in exposure.
    events = Exposure()
    events.ledger = Ledger(tmp_path / "bot.db")
    ledger, _venue, _events, ex, u, bet_id = await _filled_bet(tmp_path, server, events, ledger=events.ledger)
    assert events.book.summary().total == Decimal(10)
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        assert (await http.post("/_admin/delete-bet", json={"betId": bet_id})).status_code == 200
    await eventually(lambda: ledger.bets(u)[0].bet_status == "CANCELLED")
    assert events.book.summary().total == 0 and events.book.summary().open_bets == 0
    assert PositionBook.from_ledger(ledger).summary().total == 0  # after a restart too
    assert [f.status for f in events.of(Fill)] == [BetStatus.CONFIRMED, BetStatus.CANCELLED]
    (deleted,) = ledger.events("venue.bet_deleted")
    assert deleted.request_uuid == u and deleted.payload["betId"] == bet_id
    await ex.recover()  # GET /bets no longer lists it: nothing revives it
    assert ledger.bets(u)[0].bet_status == "CANCELLED" and len(events.of(Fill)) == 2
    await ex.stop(cancel_pending=False)
    ledger.close()


async def test_a_bet_deleted_while_the_stream_was_down_leaves_at_the_next_recovery(
        tmp_path: Path, server: LocalAbpServer) -> None:
    # Old behaviour caught: the DELETE frame fell while the stream was down and GET /bets simply no
    # longer listed the bet, so the ledger kept it CONFIRMED in exposure for ever (a ghost bet).
    events = Exposure()
    events.ledger = Ledger(tmp_path / "bot.db")
    ledger, venue, _events, ex, u, bet_id = await _filled_bet(tmp_path, server, events, ledger=events.ledger)
    logins = venue.stream.logins
    server.drop_streams()  # the DELETE frame is lost (lose_while_down)
    server.venue.delete_bet(bet_id)
    await eventually(lambda: venue.stream.logins > logins)  # the reconnect's recovery finds it gone
    await eventually(lambda: ledger.bets(u)[0].bet_status == "CANCELLED")
    assert events.book.summary().total == 0
    (deleted,) = ledger.events("venue.bet_deleted")
    assert deleted.payload["betId"] == bet_id and deleted.payload["raw"] == {"source": "bets.recovery", "listed": False}
    await ex.stop(cancel_pending=False)
    ledger.close()
