"""The batch hook (docs/architecture.md, Strategies): the host calls `on_market` once per changed
market after the whole batch is in the book, or `on_odds` per update for strategies written
before it; the built-in strategies evaluate each market once, know the 3-way `1x2` markets, refuse
market names no feed produces, and do not signal again what the ledger shows they already
ordered (a restart)."""

from __future__ import annotations

import inspect
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from bot.config.settings import StrategySpec
from bot.market.book import OddsBook
from bot.strategy.api import Strategy, StrategyContext, StrategyParams
from bot.strategy.host import StrategyHost
from bot.strategy.loader import StrategyLoadError
from bot.types import Decision, FixtureKey, MarketKey, OddsBatch, OddsUpdate, Selection, Signal, Verdict
from tests.risk.factories import Env, fixture_key

ML, X12 = MarketKey("moneyline"), MarketKey("1x2")
NFL_BOOKS = ["betmgm", "betonlineag", "betrivers", "draftkings", "fanduel", "lowvig"]


def host_for(env: Env, path: str, book: OddsBook | None = None, name: str | None = None,
             **params: object) -> StrategyHost:
    return StrategyHost.load([StrategySpec(name=name or path, path=path, params=params)],
                             book=env.book if book is None else book, clock=env.clock, ledger=env.ledger)


def batch(at: datetime, prices: dict[str, dict[str, float | None]], market: MarketKey = ML) -> OddsBatch:
    return OddsBatch("test", at, tuple(
        OddsUpdate("test", book, Selection(fixture_key(), market, outcome), price, None, price is None, at, at)
        for book, by_outcome in prices.items() for outcome, price in by_outcome.items()))


async def feed(book: OddsBook, host: StrategyHost, prices: dict[str, dict[str, float | None]], *,
               at: datetime, market: MarketKey = ML) -> list[Signal]:
    """One batch through the book, then the host: what the engine does with an OddsBatch."""
    changes = book.apply_batch(batch(at, prices, market))
    return await host.on_markets(changes)


def board(outlier: float = 2.30) -> dict[str, dict[str, float | None]]:
    prices: dict[str, dict[str, float | None]] = {b: {"home": 1.91, "away": 1.91} for b in NFL_BOOKS}
    prices["fanduel"] = {"home": outlier, "away": 1.65}
    return prices


class Counting(Strategy):
    """Counts its hook calls; `on_market` evaluates a whole market."""

    def __init__(self, ctx: StrategyContext) -> None:
        super().__init__(ctx)
        self.markets: list[tuple[FixtureKey, MarketKey, int, int]] = []

    def on_market(self, *, fixture: FixtureKey, market: MarketKey, updates: tuple[OddsUpdate, ...],
                  **kwargs: Any) -> None:
        quoted = sum(len(self.ctx.book.market(fixture, market, b)) for b in self.ctx.book.bookmakers(fixture, market))
        self.markets.append((fixture, market, len(updates), quoted))


class OddsOnly(Strategy):
    class Params(StrategyParams):
        bookmakers: tuple[str, ...] = ()

    def __init__(self, ctx: StrategyContext) -> None:
        super().__init__(ctx)
        self.seen: list[tuple[str, int]] = []

    async def on_odds(self, *, update: OddsUpdate, **kwargs: Any) -> list[Signal]:  # async: awaited too
        self.seen.append((update.bookmaker, len(self.ctx.book)))
        return [self.ctx.signal(update.selection, stake=1, price=update.price or 2.0, bookmakers=(update.bookmaker,))]


async def test_the_host_calls_each_changed_market_once_after_the_whole_batch(env: Env) -> None:
    ctx = StrategyContext("count", StrategyParams(), book=env.book, clock=env.clock, ledger=env.ledger)
    odds_ctx = StrategyContext("odds", OddsOnly.Params(bookmakers=("fanduel", "lowvig")), book=env.book,
                               clock=env.clock, ledger=env.ledger)
    counting, odds_only = Counting(ctx), OddsOnly(odds_ctx)
    host = StrategyHost({"count": counting, "odds": odds_only}, ledger=env.ledger)
    prices = board()
    signals = await feed(env.book, host, prices, at=env.clock.now())
    # one market, one call, with all 12 updates and all 12 quotes already in the book
    assert counting.markets == [(fixture_key(), ML, 12, 12)]
    # the on_odds-only strategy: each update of its bookmakers, each on the whole board
    assert sorted(odds_only.seen) == [("fanduel", 12), ("fanduel", 12), ("lowvig", 12), ("lowvig", 12)]
    assert len(signals) == 4 and host.errors == {}
    # the base class's default on_market does the same when called directly (async on_odds too)
    direct = odds_only.on_market(fixture=fixture_key(), market=ML, updates=batch(env.clock.now(), prices).updates)
    assert inspect.isawaitable(direct)
    result = await direct
    assert isinstance(result, list) and len(result) == 12
    # a batch that changes nothing calls nobody
    assert await feed(env.book, host, prices, at=env.clock.now()) == [] and len(counting.markets) == 1


async def test_value_trades_3_way_1x2_markets_by_default(env: Env) -> None:
    host = host_for(env, "value")
    three_way: dict[str, dict[str, float | None]] = {b: {"home": 2.40, "draw": 3.40, "away": 3.00} for b in NFL_BOOKS}
    three_way["fanduel"] = {"home": 2.80, "draw": 3.20, "away": 2.60}
    signals = await feed(env.book, host, three_way, market=X12, at=env.clock.now())
    assert [(s.selection.market, s.selection.outcome, s.bookmakers, s.price) for s in signals] == [
        (X12, "home", ("fanduel",), 2.80)]


def test_unknown_market_names_are_rejected_at_load(env: Env, warnings: list[str]) -> None:
    host_for(env, "value", markets=["moneyline", "1x2", "spread", "total", "team_total"])
    host_for(env, "arbitrage")
    assert warnings == []
    with pytest.raises(StrategyLoadError) as exc:
        host_for(env, "value", name="value_h2h", markets=["h2h", "moneyline"])
    [line] = exc.value.lines
    assert "'value_h2h'" in line and "param markets" in line and "'h2h'" in line
    assert "known: 1x2, match_odds, moneyline, place, spread, team_total, total, win" in line
    assert warnings == []  # an error, not a warning
    # a reload naming one is refused and changes nothing
    host = host_for(env, "value", markets=["moneyline"])
    with pytest.raises(StrategyLoadError, match="param markets: 'h2h'"):
        host.reload_params("value", {"markets": ["h2h"]})
    assert host.strategy("value").ctx.params.model_dump()["markets"] == ["moneyline"]


async def test_value_does_not_signal_again_what_the_ledger_holds(env: Env) -> None:
    first = host_for(env, "value", bankroll="1000")
    await first.start()
    signals = await feed(env.book, first, board(), at=env.clock.now())
    assert [(s.selection.outcome, s.bookmakers, s.price) for s in signals] == [("home", ("fanduel",), 2.30)]
    for signal in signals:  # what risk records, then the executor commits, for an approved signal
        env.ledger.record_signal(signal)
        env.submit(Decision(signal, Verdict.APPROVED, signal.stake))
    # a restart: a new process, a new book, the same ledger
    book = OddsBook(env.clock)
    restarted = host_for(env, "value", book, bankroll="1000")
    await restarted.start()
    assert await feed(book, restarted, board(), at=env.clock.now()) == []
    # without the ledger (what a strategy knew before) the same board is signalled again
    amnesic = StrategyHost.load([StrategySpec(name="value", path="value", params={"bankroll": "1000"})],
                                book=book, clock=env.clock, ledger=None)
    await amnesic.start()
    assert len(await feed(book, amnesic, {"fanduel": {"home": 2.30, "away": 1.66}}, at=env.clock.now())) == 1
    # a new price is a new bet
    moved = await feed(book, restarted, {"fanduel": {"home": 2.35, "away": 1.65}}, at=env.clock.now())
    assert [(s.selection.outcome, s.price) for s in moved] == [("home", 2.35)]


async def test_arbitrage_does_not_signal_again_a_leg_the_ledger_holds(env: Env) -> None:
    prices: dict[str, dict[str, float | None]] = {"bookA": {"home": 2.10, "away": 1.80},
                                                  "bookB": {"home": 1.80, "away": 2.10}}
    first = host_for(env, "arbitrage", total_stake="100", min_margin=0.01)
    await first.start()
    legs = await feed(env.book, first, prices, at=env.clock.now())
    assert len(legs) == 2
    for leg in legs:
        env.submit(Decision(leg, Verdict.APPROVED, leg.stake))
    book = OddsBook(env.clock)
    restarted = host_for(env, "arbitrage", book, total_stake="100", min_margin=0.01)
    await restarted.start()
    assert await feed(book, restarted, prices, at=env.clock.now()) == []
    # one leg moves: both legs would be new, but the other is held at its price: no arb is signalled
    assert await feed(book, restarted, {"bookA": {"home": 2.12}}, at=env.clock.now()) == []
    # both legs at new prices: a new arb
    fresh = await feed(book, restarted, {"bookB": {"away": 2.15}}, at=env.clock.now())
    assert sorted((s.bookmakers[0], s.price) for s in fresh) == [("bookA", 2.12), ("bookB", 2.15)]
    assert sum(s.stake for s in fresh) <= Decimal(100)


async def test_value_remembers_a_signal_risk_rejected_as_a_run_that_never_stopped_does(env: Env) -> None:
    first = host_for(env, "value", bankroll="1000")
    await first.start()
    [signal] = await feed(env.book, first, board(), at=env.clock.now())
    env.ledger.record_signal(signal)  # risk recorded it, then rejected it: no order
    book = OddsBook(env.clock)
    restarted = host_for(env, "value", book, bankroll="1000")
    await restarted.start()
    assert await feed(book, restarted, board(), at=env.clock.now()) == []
