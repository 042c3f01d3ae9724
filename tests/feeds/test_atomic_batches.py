"""A snapshot or batched frame reaches the book whole before any strategy runs
(docs/architecture.md, Pipeline), on the real The Odds API and BoltOdds data: the engine with a
real OddsBook and StrategyHost, probe strategies that look at the book from inside their hooks,
and stand-ins only for risk and execution (never reached: the probes signal nothing)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import orjson
import pytest

from bot.clock import ReplayClock
from bot.config.settings import Settings
from bot.engine.core import Engine
from bot.feeds.boltodds_decode import BoltOddsStream
from bot.feeds.oddsapi_decode import OddsApiDiffer
from bot.ledger.store import Ledger
from bot.market.book import OddsBook, Quote
from bot.market.mapping import InstrumentMapper
from bot.strategy.api import Strategy, StrategyContext, StrategyParams
from bot.strategy.host import StrategyHost
from bot.types import FeedEvent, FeedStatus, FixtureKey, MarketKey, OddsBatch, OddsUpdate, Selection

from .conftest import VIKINGS_GAME
from .test_oddsapi_replay import DOLPHINS, FIRST3, snapshots

T0 = datetime.fromisoformat(snapshots(FIRST3)[0]["timestamp"])
T1 = T0 + timedelta(minutes=30)
ML = MarketKey("moneyline")
DK_HOME = Selection(DOLPHINS, ML, "home")


class Unreached:
    """Risk and execution: the probes signal nothing, so the engine must not touch them."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected use of {name}")


class MarketProbe(Strategy):
    """Implements the batch hook: records each call with what the book shows at that moment."""

    def __init__(self, ctx: StrategyContext) -> None:
        super().__init__(ctx)
        self.calls: list[tuple[FixtureKey, MarketKey, tuple[OddsUpdate, ...], dict[str, Any]]] = []

    def view(self) -> dict[str, Any]:
        book = self.ctx.book
        return {"dk_home": book.quote(DK_HOME, "draftkings"), "fd": book.market(DOLPHINS, ML, "fanduel"),
                "fixtures": set(book.fixtures()), "quotes": len(book)}

    def on_market(self, *, fixture: FixtureKey, market: MarketKey, updates: tuple[OddsUpdate, ...],
                  **kwargs: Any) -> None:
        self.calls.append((fixture, market, updates, self.view()))


class OddsProbe(MarketProbe):
    """Implements only on_odds (a user strategy written before the batch hook)."""

    on_market = Strategy.on_market  # type: ignore[assignment]  # the base class's default

    def __init__(self, ctx: StrategyContext) -> None:
        super().__init__(ctx)
        self.seen: list[tuple[OddsUpdate, dict[str, Any]]] = []

    def on_odds(self, *, update: OddsUpdate, **kwargs: Any) -> None:
        self.seen.append((update, self.view()))


def engine(tmp_path: Path, clock: ReplayClock, **probes: type[MarketProbe]) -> tuple[Engine, dict[str, Any]]:
    book = OddsBook(clock, stale_after=timedelta(hours=1))
    instances = {name: cls(StrategyContext(name, StrategyParams(), book=book, clock=clock, ledger=None))
                 for name, cls in probes.items()}
    host = StrategyHost(dict(instances), ledger=None)
    eng = Engine(Settings(), clock=clock, ledger=Ledger(tmp_path / "bot.db", clock=clock), book=book, feeds=[],
                 mapper=InstrumentMapper(), strategies=host, risk=cast(Any, Unreached()),
                 executor=cast(Any, Unreached()))
    return eng, instances


def _second_board(first: list[dict]) -> list[dict]:
    """The first real board, then: draftkings moves Miami -148 -> -160; fanduel withdraws its
    Dolphins moneyline; the Falcons game (the second event) leaves the board."""
    board = copy.deepcopy(first)
    dolphins = board[0]
    for book in dolphins["bookmakers"]:
        if book["key"] == "draftkings":
            [h2h] = [m for m in book["markets"] if m["key"] == "h2h"]
            [miami] = [o for o in h2h["outcomes"] if o["name"] == "Miami Dolphins"]
            miami["price"] = -160
        if book["key"] == "fanduel":
            book["markets"] = [m for m in book["markets"] if m["key"] != "h2h"]
    del board[1]
    return board


async def test_a_changed_price_and_a_withdrawal_reach_the_hooks_already_applied(tmp_path: Path) -> None:
    clock = ReplayClock(T0)
    eng, probes = engine(tmp_path, clock, market=MarketProbe, odds=OddsProbe)
    differ = OddsApiDiffer()
    first = snapshots(FIRST3)[0]["data"]
    falcons = FixtureKey("NFL", first[1]["home_team"], first[1]["away_team"],
                         datetime.fromisoformat(first[1]["commence_time"]))
    initial = batch_of(differ.snapshot(first, T0))
    await eng.on_feed_event(initial)
    probes["market"].calls.clear()
    probes["odds"].seen.clear()
    clock.advance(T1)
    batch = batch_of(differ.snapshot(_second_board(first), T1))
    assert len(batch.cleared) == 1
    await eng.on_feed_event(batch)
    assert eng.stats.odds_updates == len(initial.updates) + len(batch.updates)

    # The batch hook: once for the Dolphins moneyline, with the change and both withdrawals ...
    market_calls = [c for c in probes["market"].calls if (c[0], c[1]) == (DOLPHINS, ML)]
    assert len(market_calls) == 1
    _, _, updates, _ = market_calls[0]
    assert {(u.bookmaker, u.selection.outcome, u.american, u.suspended) for u in updates} == {
        ("draftkings", "home", -160, False), ("fanduel", "home", None, True), ("fanduel", "away", None, True)}
    # ... and every call, this one or another market's, saw the whole snapshot applied.
    for _, _, _, seen in probes["market"].calls:
        assert_applied(seen, falcons)
    # The on_odds-only strategy got each of those updates, each on the complete new board.
    assert {(u.bookmaker, u.selection.outcome) for u, _ in probes["odds"].seen} == {
        ("draftkings", "home"), ("fanduel", "home"), ("fanduel", "away")}
    for _, seen in probes["odds"].seen:
        assert_applied(seen, falcons)


def assert_applied(view: dict[str, Any], gone: FixtureKey) -> None:
    dk: Quote = view["dk_home"]
    assert dk.american == -160 and dk.usable
    assert {o: (q.suspended, q.usable) for o, q in view["fd"].items()} == {"home": (True, False),
                                                                           "away": (True, False)}
    assert gone not in view["fixtures"]


def batch_of(events: list[FeedEvent]) -> OddsBatch:
    """The one OddsBatch a snapshot decodes to."""
    [batch] = events
    assert isinstance(batch, OddsBatch)
    return batch


def _quotes(book: OddsBook) -> dict[tuple[Selection, str], tuple[float | None, bool, bool]]:
    return {(Selection(f, m, o), b): (q.price, q.suspended, q.usable)
            for f in book.fixtures() for m in book.markets(f) for b in book.bookmakers(f, m)
            for o, q in book.market(f, m, b).items()}


@pytest.mark.parametrize("garbage", ["commence_time", "bookmakers", "whole_event"])
def test_a_malformed_event_changes_nothing_else(garbage: str) -> None:
    first = snapshots(FIRST3)[0]["data"]
    differ = OddsApiDiffer()
    clock = ReplayClock(T0)
    book = OddsBook(clock, stale_after=timedelta(hours=1))
    book.apply_batch(batch_of(differ.snapshot(first, T0)))
    before = _quotes(book)
    board = copy.deepcopy(first)
    if garbage == "commence_time":
        board[0]["commence_time"] = "soon"  # the id is readable: this event's state is kept
    elif garbage == "bookmakers":
        board[0]["bookmakers"] = 7
    else:
        board[0] = "garbage"  # no id: it could be any missing event, so none leaves the board
    clock.advance(T1)
    batch = batch_of(differ.snapshot(board, T1))
    assert batch.updates == () and batch.cleared == ()
    assert batch.unconfirmed == ((DOLPHINS, None),)
    assert not book.apply_batch(batch)
    assert _quotes(book) == before
    assert differ.stats["bad_event"] == 1
    # The kept prices are not vouched for: they age out while the confirmed ones stay usable.
    clock.advance(T0 + timedelta(hours=1, minutes=1))
    book.apply_batch(batch_of(differ.snapshot(board, clock.now())))
    assert not book.quote(DK_HOME, "draftkings").usable  # type: ignore[union-attr]
    other = next(s for s, _ in before if s.fixture != DOLPHINS)
    assert all(q.usable for q in book.quotes(other).values())
    # The event reads again: its prices are confirmed by the snapshot, nothing was lost.
    book.apply_batch(batch_of(differ.snapshot(first, clock.now())))
    assert _quotes(book) == before


def test_a_malformed_bookmaker_keeps_its_prices_and_the_rest_of_the_event_updates() -> None:
    first = snapshots(FIRST3)[0]["data"]
    differ = OddsApiDiffer()
    book = OddsBook(ReplayClock(T1))
    book.apply_batch(batch_of(differ.snapshot(first, T0)))
    board = _second_board(first)
    for b in board[0]["bookmakers"]:
        if b["key"] == "betmgm":  # one outcome's price is junk: betmgm's section is dropped
            b["markets"][0]["outcomes"][0]["price"] = "abc"
    betmgm = book.market(DOLPHINS, ML, "betmgm")
    batch = batch_of(differ.snapshot(board, T1))
    book.apply_batch(batch)
    assert batch.unconfirmed == ((DOLPHINS, "betmgm"),) and differ.stats["bad_bookmaker"] == 1
    assert {o: q.price for o, q in book.market(DOLPHINS, ML, "betmgm").items()} == {
        o: q.price for o, q in betmgm.items()}
    assert not any(u.bookmaker == "betmgm" for u in batch.updates)
    assert book.quote(DK_HOME, "draftkings").american == -160  # type: ignore[union-attr]


async def test_boltodds_initial_state_is_one_batch_applied_whole(tmp_path: Path,
                                                                 bolt_samples: dict[str, list[dict]]) -> None:
    frame = next(f for f in bolt_samples["initial_state"] if f["data"]["game"] == VIKINGS_GAME)
    at = datetime(2025, 9, 8, 10, 52, 40, tzinfo=UTC)
    batch = batch_of(BoltOddsStream().decode(orjson.dumps(frame), at))
    assert not batch.complete and len(batch.updates) == 1784
    clock = ReplayClock(at)
    eng, probes = engine(tmp_path, clock, market=MarketProbe)
    await eng.on_feed_event(batch)
    calls = probes["market"].calls
    markets = {(u.selection.fixture, u.selection.market) for u in batch.updates}
    # one call per market, each after all 1784 quotes were in the book
    assert sorted(map(str, (c[1] for c in calls))) == sorted(str(m) for _, m in markets)
    assert all(view["quotes"] == 1784 for *_, view in calls)
    assert sum(len(c[2]) for c in calls) == 1784 and eng.stats.odds_updates == 1784


def test_boltodds_batched_array_is_one_batch_in_wire_order(bolt_samples: dict[str, list[dict]]) -> None:
    """A JSON-array frame is one batch; a game_removed after a game's set in the same frame
    leaves that game out of the book, as the wire order says."""
    updates = bolt_samples["game_update"]
    at = datetime(2025, 9, 8, 10, 52, 40, tzinfo=UTC)
    removed = {"action": "game_removed", "data": {**updates[0]["data"], "outcomes": {}}}
    batch = batch_of(BoltOddsStream().decode(orjson.dumps([*updates, removed]), at))
    assert len(batch.cleared) == 1
    book = OddsBook(ReplayClock(at))
    book.apply_batch(batch)
    gone = batch.cleared[0]
    assert gone.fixture is not None and not any(
        gone.bookmaker in book.bookmakers(gone.fixture, m) for m in book.markets(gone.fixture))
    in_order = OddsBook(ReplayClock(at))  # the same messages one frame each, in wire order
    stream = BoltOddsStream()
    for message in [*updates, removed]:
        for event in stream.decode(orjson.dumps(message), at):
            in_order.apply(event)
    assert _quotes(book) == _quotes(in_order)


def test_a_complete_snapshot_confirms_its_source_and_revives_after_a_stale_mark() -> None:
    first = snapshots(FIRST3)[0]["data"]
    clock = ReplayClock(T0)
    book = OddsBook(clock, stale_after=timedelta(hours=1))
    differ = OddsApiDiffer()
    book.apply_batch(batch_of(differ.snapshot(first, T0)))
    clock.advance(T0 + timedelta(hours=2))
    assert not book.quote(DK_HOME, "draftkings").usable  # type: ignore[union-attr]
    same = batch_of(differ.snapshot(first, clock.now()))  # nothing changed: the board vouches for it
    assert same.updates == () and same.complete
    book.apply_batch(same)
    assert book.quote(DK_HOME, "draftkings").usable  # type: ignore[union-attr]
    book.apply(FeedStatus("oddsapi", clock.now(), connected=False, stale=True, detail="disconnected"))
    assert not book.quote(DK_HOME, "draftkings").usable  # type: ignore[union-attr]
    book.apply_batch(batch_of(differ.snapshot(first, clock.now())))
    assert book.quote(DK_HOME, "draftkings").usable  # type: ignore[union-attr]
