"""Built-in strategies on a real OddsBook: value (consensus and sharp-book references, staleness,
no repeats), arbitrage (2- and 3-way, payouts equalised, all-or-none through risk), template."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from bot.config.settings import StrategySpec
from bot.strategy.host import StrategyHost
from bot.types import MarketKey, Selection, Signal
from tests.risk.factories import Env, fixture_key, make_signal, odds, selection

MONEYLINE = MarketKey("moneyline")
NFL_BOOKS = ["betmgm", "betonlineag", "betrivers", "draftkings", "fanduel", "lowvig"]


def _host(env: Env, path: str, **params: object) -> StrategyHost:
    return StrategyHost.load([StrategySpec(name=path, path=path, params=params)],
                             book=env.book, clock=env.clock, ledger=env.ledger)


async def _feed(env: Env, host: StrategyHost, prices: dict[str, dict[str, float | None]],
                market: MarketKey = MONEYLINE) -> list[Signal]:
    out: list[Signal] = []
    for book, by_outcome in prices.items():
        for outcome, price in by_outcome.items():
            update = odds(Selection(fixture_key(), market, outcome), book, price, env.clock.now())
            if env.book.apply(update):
                out.extend(await host.on_odds(update))
    return out


def _board(outlier: float = 2.30) -> dict[str, dict[str, float | None]]:
    board: dict[str, dict[str, float | None]] = {b: {"home": 1.91, "away": 1.91} for b in NFL_BOOKS}
    board["fanduel"] = {"home": outlier, "away": 1.65}
    return board


async def test_value_consensus_reference(env: Env) -> None:
    host = _host(env, "value", bankroll="1000", kelly_multiplier=0.5, max_stake="500")
    signals = await _feed(env, host, _board())
    assert [(s.selection.outcome, s.bookmakers, s.price) for s in signals] == [("home", ("fanduel",), 2.30)]
    sig = signals[0]
    # consensus without fanduel: five books at 1.91/1.91 -> fair 0.5; edge = 0.5 * 2.3 - 1
    assert abs(sig.edge - 0.15) < 1e-12
    kelly = 0.15 / 1.30 * 0.5
    assert sig.stake == Decimal(str(1000 * min(kelly, 0.05))).quantize(Decimal("0.01"))  # capped at 5 %
    assert sig.expires_at == env.clock.now() + timedelta(seconds=30)


async def test_value_sharp_books_and_stale_reference(env: Env) -> None:
    host = _host(env, "value", sharp_books=["lowvig", "betonlineag"])
    board = _board()
    board["lowvig"] = {"home": 2.10, "away": 1.80}  # sharp books think home is likelier than 1.91
    board["betonlineag"] = {"home": 2.10, "away": 1.80}
    signals = await _feed(env, host, board)
    assert {s.bookmakers[0] for s in signals} == {"fanduel"}
    # the sharp books go stale: nothing new is signalled even on a better price
    env.clock.advance(env.clock.now() + timedelta(minutes=20))
    assert await _feed(env, host, {"fanduel": {"home": 2.40}}) == []
    # they are back: the new price is signalled once, then not repeated while unchanged
    fresh = await _feed(env, host, {"lowvig": {"home": 2.11, "away": 1.79}, "betonlineag": {"home": 2.11, "away": 1.79},
                                     "fanduel": {"home": 2.40}})
    assert [(s.bookmakers, s.price) for s in fresh] == [(("fanduel",), 2.40)]
    assert await _feed(env, host, {"lowvig": {"home": 2.12}}) == []


async def test_value_skips_suspended_reference(env: Env) -> None:
    host = _host(env, "value", sharp_books=["lowvig"])
    board = _board()
    board["lowvig"] = {"home": None, "away": 1.80}
    assert await _feed(env, host, board) == []


async def test_arbitrage_two_way_equalises_payout_and_is_all_or_none(env: Env, make_env) -> None:
    host = _host(env, "arbitrage", total_stake="100", min_margin=0.01)
    board = {"bookA": {"home": 2.10, "away": 1.80}, "bookB": {"home": 1.80, "away": 2.10}}
    legs = await _feed(env, host, board)
    assert sorted((s.selection.outcome, s.bookmakers[0], s.price) for s in legs) == [
        ("away", "bookB", 2.10), ("home", "bookA", 2.10)]
    assert len({s.group for s in legs}) == 1 and legs[0].group is not None
    payouts = [s.stake * Decimal(str(s.price)) for s in legs]
    assert max(payouts) - min(payouts) <= Decimal("0.03")
    assert sum(s.stake for s in legs) <= Decimal(100)
    assert abs(legs[0].edge - (1 / (2 / 2.10) - 1)) < 1e-12
    # unchanged board: nothing new
    assert await _feed(env, host, {"bookA": {"home": 2.10}}) == []
    # all or none through risk: bookB already holds 20 of a 60 cap, so the bookB leg (~50) cannot
    # fit and the bookA leg, which would fit alone, is rejected with it
    risk_env = make_env(max_exposure_bookmaker=Decimal(60))
    filler = selection("home", n=5)
    risk_env.quote(filler, "bookB", 2.0)
    assert (await risk_env.risk.evaluate(make_signal(filler, risk_env.clock.now(), stake="20",
                                                     bookmakers=("bookB",)), None)).approved
    for s in legs:
        risk_env.quote(s.selection, s.bookmakers[0], s.price)
    decisions = await risk_env.risk.evaluate_many([(s, None) for s in legs])
    assert {d.signal.bookmakers[0]: d.reason for d in decisions} == {
        "bookA": "GROUP_INCOMPLETE", "bookB": "EXPOSURE_BOOKMAKER"}
    assert risk_env.risk.exposure()["total"]["total"] == Decimal(20)


async def test_arbitrage_three_way_and_margin_threshold(env: Env) -> None:
    host = _host(env, "arbitrage", total_stake="300", min_margin=0.02)
    board = {"b1": {"home": 3.3, "draw": 3.2, "away": 3.1}, "b2": {"home": 2.9, "draw": 3.6, "away": 3.0},
             "b3": {"home": 3.0, "draw": 3.0, "away": 3.5}}
    # the board builds up first (partial boards are surebets of their own), then one update arrives
    await _feed(env, _host(env, "template", min_price=100), board)
    legs = await _feed(env, host, {"b3": {"away": 3.5001}})
    s = 1 / 3.3 + 1 / 3.6 + 1 / 3.5001
    assert len(legs) == 3 and abs(legs[0].edge - (1 / s - 1)) < 1e-12
    assert {leg.bookmakers[0] for leg in legs} == {"b1", "b2", "b3"}
    payouts = [leg.stake * Decimal(str(leg.price)) for leg in legs]
    assert max(payouts) - min(payouts) <= Decimal("0.04")
    # a margin below the threshold signals nothing
    host2 = _host(env, "arbitrage", min_margin=0.5)
    assert await _feed(env, host2, {"b1": {"home": 3.31}}) == []


async def test_template_signals_at_or_above_its_price(env: Env) -> None:
    host = _host(env, "template", min_price=2.5, stake="3")
    signals = await _feed(env, host, {"bookA": {"home": 2.4, "away": 2.6}})
    assert [(s.selection.outcome, s.stake) for s in signals] == [("away", Decimal("3.00"))]
