"""The exchange strategy (bot/strategy/builtin/exchange.py) on a real OddsBook.

- Fed by the real Betfair reader with a recorded WIN market (tests/data/betfair_stream/): its
  signals equal those computed here from the reader's quotes with plain arithmetic (the backs'
  sum S = sum(1/b), fair price b x S, back when S x (1 + edge) < 1, lay when l < b x S x (1 -
  edge)).
- Hand-built ladders for the exact cases: back and lay, the stake capped by the size offered, a
  removed runner left out, an incomplete or stale or thin book skipped, no repeat of a price
  (across a restart too), a lay's exposure through risk is its liability.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

from bot.clock import ReplayClock
from bot.config.settings import StrategySpec
from bot.feeds.history.betfair import BetfairStreamReader
from bot.market.book import OddsBook
from bot.strategy.host import StrategyHost
from bot.types import FixtureKey, Ladder, MarketKey, OddsBatch, OddsUpdate, Selection, Side, Signal
from tests.risk.factories import Env

DATA = Path(__file__).resolve().parents[1] / "data" / "betfair_stream"
CENT = Decimal("0.01")


def _host(book: OddsBook, clock: ReplayClock, env: Env | None = None, **params: object) -> StrategyHost:
    return StrategyHost.load([StrategySpec(name="ex", path="exchange", params=params)], book=book, clock=clock,
                             ledger=None if env is None else env.ledger)


def _cents(size: float) -> Decimal:
    return Decimal(repr(size)).quantize(CENT, rounding=ROUND_DOWN)


async def test_signals_on_a_recorded_win_market_equal_an_independent_computation() -> None:
    path = DATA / "nautilus/1-206064380.bz2"  # horse racing WIN, a removed runner, in play at the end
    batches = list(BetfairStreamReader(path).batches())
    clock = ReplayClock(batches[0].received_at)
    book = OddsBook(clock, stale_after=timedelta(days=1))  # staleness is not the subject here
    host = _host(book, clock)
    min_edge, stake, min_stake, max_overround = 0.02, Decimal(10), Decimal(2), 0.05

    got: list[Signal] = []
    expected: list[tuple[str, Side, float, Decimal]] = []
    edges: list[float] = []
    latest: dict[str, OddsUpdate] = {}  # outcome -> its last update, in order of first sight
    last: dict[tuple[str, Side], float] = {}
    for batch in batches:
        clock.advance(batch.received_at)
        got.extend(await host.on_markets(book.apply_batch(batch)))
        for u in batch.updates:
            latest[u.selection.outcome] = u
        start = batch.updates[0].selection.fixture.start_time
        active = [u for u in latest.values() if not u.suspended]
        if clock.now() >= start or len(active) < 2 or any(u.price is None for u in active):
            continue
        total = sum(1 / u.price for u in active if u.price is not None)  # S
        if total - 1 > max_overround:
            continue
        for u in active:
            assert u.price is not None and u.ladder is not None
            fair = u.price * total
            sides = []
            if total * (1 + min_edge) < 1:
                sides.append((Side.BACK, u.ladder.back[0], u.price / fair - 1))
            if u.ladder.lay and u.ladder.lay[0][0] < fair * (1 - min_edge):
                sides.append((Side.LAY, u.ladder.lay[0], 1 - u.ladder.lay[0][0] / fair))
            for side, (price, size), edge in sides:
                amount = min(stake, _cents(size))
                if amount < min_stake or not 1.01 <= price <= 50 or last.get((u.selection.outcome, side)) == price:
                    continue
                last[(u.selection.outcome, side)] = price
                expected.append((u.selection.outcome, side, price, amount))
                edges.append(edge)

    assert [(s.selection.outcome, s.side, s.price, s.stake) for s in got] == expected
    assert len(expected) >= 5 and {side for _, side, _, _ in expected} == {Side.LAY}
    for signal, edge in zip(got, edges, strict=True):
        assert abs(signal.edge - edge) < 1e-12 and signal.edge > min_edge
        assert signal.min_price == signal.price and signal.bookmakers == ("betfair-ex",)
        assert signal.selection.market == MarketKey("win")


# -- hand-built ladders ---------------------------------------------------------------------------

START = datetime(2023, 11, 14, 20, tzinfo=UTC)
RACE = FixtureKey("Horse Racing", "Ascot 14th Nov", "field", START + timedelta(hours=1))
WIN = MarketKey("win")

Board = dict[str, tuple[tuple[tuple[float, float], ...], tuple[tuple[float, float], ...]] | None]
"""outcome -> (back levels, lay levels), None = a removed runner (suspended)."""


async def _feed(book: OddsBook, host: StrategyHost, clock: ReplayClock, board: Board,
                bookmaker: str = "betfair-ex") -> list[Signal]:
    """The board as one batch (a stream message), then the strategy on the markets it changed."""
    now = clock.now()
    updates = []
    for outcome, ladder in board.items():
        back, lay = ladder if ladder is not None else ((), ())
        updates.append(OddsUpdate("betfair_stream", bookmaker, Selection(RACE, WIN, outcome),
                                  back[0][0] if back and ladder else None, None, ladder is None, now, now, {}, None,
                                  Ladder(back, lay)))
    return await host.on_markets(book.apply_batch(OddsBatch("betfair_stream", now, tuple(updates))))


def _setup(env: Env | None = None, **params: object) -> tuple[OddsBook, StrategyHost, ReplayClock]:
    clock = ReplayClock(START)
    book = OddsBook(clock)
    return book, _host(book, clock, env, **params), clock


def _summary(signals: list[Signal]) -> list[tuple[str, Side, float, Decimal]]:
    return [(s.selection.outcome, s.side, s.price, s.stake) for s in signals]


async def test_backs_every_runner_of_an_under_round_book_capped_by_the_size_offered() -> None:
    book, host, clock = _setup(lay=False)
    # 1/2.2 + 1/2.2 = 0.909: fair prices 2.0 each, 10 % over them; 4 on offer at one, 1.5 at the other
    signals = await _feed(book, host, clock, {"A": (((2.2, 4.0), (2.1, 50.0)), ()), "B": (((2.2, 1.5),), ())})
    assert _summary(signals) == [("A", Side.BACK, 2.2, Decimal("4.00"))]  # B's 1.50 is below min_stake 2
    assert abs(signals[0].edge - (0.5 * 2.2 - 1)) < 1e-12
    # the same board again: nothing; a new price: signalled
    assert await _feed(book, host, clock, {"A": (((2.2, 4.0),), ())}) == []
    assert _summary(await _feed(book, host, clock, {"A": (((2.22, 30.0),), ())})) == [
        ("A", Side.BACK, 2.22, Decimal("10.00"))]


async def test_lays_where_the_best_lay_is_under_the_fair_price() -> None:
    book, host, clock = _setup()
    # backs 1.9 / 1.9 / 19: S = 2/1.9 + 1/19 = 1.1053 (too thin at max_overround 0.05) ...
    board: Board = {"A": (((1.9, 100.0),), ((1.92, 7.345),)), "B": (((1.9, 100.0),), ((2.5, 100.0),)),
                    "C": (((19.0, 5.0),), ((20.8, 5.0),))}
    assert await _feed(book, host, clock, board) == []
    # ... but allowed at 0.2: fair A = 1.9 x 1.1053 = 2.1; 1.92 < 2.1 x 0.98; B's 2.5 and C's 20.8
    # (fair 21.0, 21.0 x 0.98 = 20.58) are not
    book, host, clock = _setup(max_overround=0.2)
    signals = await _feed(book, host, clock, board)
    assert _summary(signals) == [("A", Side.LAY, 1.92, Decimal("7.34"))]
    total = 2 / 1.9 + 1 / 19
    assert abs(signals[0].edge - (1 - 1.92 / (1.9 * total))) < 1e-12
    assert signals[0].min_price == 1.92  # the highest price this lay accepts


async def test_a_removed_runner_is_left_out_and_an_incomplete_or_stale_book_skipped() -> None:
    book, host, clock = _setup(lay=False)
    board: Board = {"A": (((2.2, 50.0),), ()), "B": (((2.2, 50.0),), ()), "C": None}  # C removed
    assert [s.selection.outcome for s in await _feed(book, host, clock, board)] == ["A", "B"]

    book, host, clock = _setup(lay=False)
    board = {"A": (((2.2, 50.0),), ()), "B": ((), ((2.3, 50.0),))}  # B is ACTIVE with a lay alone
    assert await _feed(book, host, clock, board) == []

    book, host, clock = _setup(lay=False)
    await _feed(book, host, clock, {"A": (((2.2, 50.0),), ())})
    clock.advance(START + timedelta(minutes=16))  # A's quote is stale when B comes
    assert await _feed(book, host, clock, {"B": (((2.2, 50.0),), ())}) == []
    assert await _feed(book, host, clock, {"A": (((2.21, 50.0),), ())}) != []  # fresh again

    book, host, clock = _setup(lay=False)
    clock.advance(RACE.start_time)  # in play
    assert await _feed(book, host, clock, {"A": (((2.2, 50.0),), ()), "B": (((2.2, 50.0),), ())}) == []


async def test_other_exchanges_and_price_limits_are_left_alone() -> None:
    book, host, clock = _setup(lay=False, max_price=2.0)
    board: Board = {"A": (((2.2, 50.0),), ()), "B": (((2.2, 50.0),), ())}
    assert await _feed(book, host, clock, board) == []  # above max_price
    book, host, clock = _setup(lay=False)
    assert await _feed(book, host, clock, board, bookmaker="matchbook") == []


async def test_no_repeat_across_a_restart_and_a_lay_counts_its_liability(env: Env) -> None:
    board: Board = {"A": (((1.9, 100.0),), ((1.92, 100.0),)), "B": (((1.9, 100.0),), ((2.5, 100.0),)),
                    "C": (((19.0, 5.0),), ((20.8, 5.0),))}
    params = {"max_overround": 0.2, "pre_match_only": False}  # the env's clock is past RACE's start
    host = _host(env.book, env.clock, env, **params)
    await host.start()
    signals = await _feed(env.book, host, env.clock, board)
    assert _summary(signals) == [("A", Side.LAY, 1.92, Decimal("10.00"))]
    decision = await env.risk.evaluate(signals[0], None)
    assert decision.approved
    assert env.risk.exposure()["total"]["total"] == (Decimal("1.92") - 1) * Decimal(10)  # the liability
    env.ledger.record_signal(signals[0])
    # a restarted strategy on the same ledger does not signal the same lay again
    again = _host(env.book, env.clock, env, **params)
    await again.start()
    assert await _feed(env.book, again, env.clock, {"A": (((1.9, 100.0),), ((1.92, 50.0),))}) == []
    assert _summary(await _feed(env.book, again, env.clock, {"A": (((1.9, 100.0),), ((1.91, 50.0),))})) == [
        ("A", Side.LAY, 1.91, Decimal("10.00"))]
