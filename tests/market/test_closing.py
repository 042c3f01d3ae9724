"""Closing lines (bot/market/closing.py): the close is the board just before the first event at
or after kickoff, at the bet's own book (its lay price for a lay); the reference probability is
the no-vig of the chosen books (or the consensus) at that moment; CLV = placed price x closing
probability - 1 for a back, 1 - placed price x closing probability for a lay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.clock import ReplayClock
from bot.market.book import OddsBook
from bot.market.closing import ClosingLines
from bot.market.config import ClvConfig
from bot.types import FixtureKey, Ladder, MarketKey, OddsBatch, OddsUpdate, Selection

KICKOFF = datetime(2025, 11, 16, 18, 0, tzinfo=UTC)
GAME = FixtureKey("NFL", "Chicago Bears", "Minnesota Vikings", KICKOFF)
ML = MarketKey("moneyline")
HOME, AWAY = Selection(GAME, ML, "home"), Selection(GAME, ML, "away")


def board(at: datetime, prices: dict[str, tuple[float | None, float | None]]) -> OddsBatch:
    """One snapshot: bookmaker -> (home price, away price); None = withdrawn."""
    updates = tuple(
        OddsUpdate("test", book, sel, price, None, price is None, at, at, {})
        for book, pair in prices.items() for sel, price in zip((HOME, AWAY), pair, strict=True)
    )
    return OddsBatch("test", at, updates)


def no_vig(home: float, away: float) -> tuple[float, float]:
    q = (1 / home, 1 / away)
    return q[0] / sum(q), q[1] / sum(q)


def setup(reference: list[str]) -> tuple[OddsBook, ReplayClock, ClosingLines]:
    clock = ReplayClock()
    book = OddsBook(clock, stale_after=timedelta(minutes=15))
    return book, clock, ClosingLines(book, ClvConfig(reference_books=reference))


def test_the_close_is_the_board_before_kickoff_at_the_bets_book_against_the_sharp_reference() -> None:
    book, clock, closing = setup(["pinnacle"])
    t0 = KICKOFF - timedelta(hours=6)
    clock.advance(t0)
    book.apply_batch(board(t0, {"pinnacle": (2.10, 1.80), "fanduel": (2.30, 1.65)}))
    assert closing.watch(7, HOME, "fanduel", 2.30, clock.now(), back=True) is None
    last = KICKOFF - timedelta(hours=2)  # older than stale_after at kickoff: still the last price said
    clock.advance(last)
    book.apply_batch(board(last, {"pinnacle": (2.00, 1.90), "fanduel": (2.15, 1.75)}))
    assert closing.due(KICKOFF - timedelta(seconds=1)) == []  # not kicked off yet
    # the first event at kickoff: the engine asks before it applies it
    (close,) = closing.due(KICKOFF)
    p_home, _ = no_vig(2.00, 1.90)
    assert close.bet_id == 7 and close.kickoff == KICKOFF
    assert close.price == 2.15
    assert close.probability == pytest.approx(p_home, abs=1e-12)
    assert close.clv == pytest.approx(2.30 * p_home - 1, abs=1e-12)
    book.apply_batch(board(KICKOFF, {"pinnacle": (3.0, 1.4), "fanduel": (3.1, 1.35)}))  # in play: not the close
    assert closing.due(KICKOFF + timedelta(hours=1)) == []  # captured once


def test_consensus_averages_the_complete_books_and_skips_incomplete_ones() -> None:
    book, clock, closing = setup([])
    t = KICKOFF - timedelta(minutes=30)
    clock.advance(t)
    book.apply_batch(board(t, {"a": (2.0, 1.9), "b": (2.2, 1.7), "c": (2.05, None)}))  # c lacks away
    closing.watch(1, AWAY, "c", 1.95, clock.now(), back=True)
    (close,) = closing.due(KICKOFF)
    expected = (no_vig(2.0, 1.9)[1] + no_vig(2.2, 1.7)[1]) / 2
    assert close.probability == pytest.approx(expected, abs=1e-12)
    assert close.price is None  # c no longer quoted the away side at close
    assert close.clv == pytest.approx(1.95 * expected - 1, abs=1e-12)


def test_no_reference_book_at_close_gives_no_probability_and_in_play_bets_have_no_close() -> None:
    book, clock, closing = setup(["pinnacle"])
    t = KICKOFF - timedelta(hours=1)
    clock.advance(t)
    book.apply_batch(board(t, {"fanduel": (2.0, 1.8)}))
    closing.watch(1, HOME, "fanduel", 2.0, clock.now(), back=True)
    in_play = closing.watch(2, HOME, "fanduel", 2.5, KICKOFF + timedelta(minutes=5), back=True)
    assert in_play is not None and (in_play.price, in_play.probability, in_play.clv) == (None, None, None)
    (close,) = closing.due(KICKOFF)
    assert (close.price, close.probability, close.clv) == (2.0, None, None)


def test_close_all_takes_the_last_quotes_when_the_data_ends_before_kickoff() -> None:
    book, clock, closing = setup([])
    t = KICKOFF - timedelta(days=1)
    clock.advance(t)
    book.apply_batch(board(t, {"a": (2.0, 1.9), "b": (2.1, 1.8)}))
    closing.watch(3, HOME, "a", 2.0, clock.now(), back=True)
    assert closing.next_kickoff == KICKOFF
    (close,) = closing.close_all()
    assert close.price == 2.0 and close.bet_id == 3
    assert closing.next_kickoff is None and closing.due(KICKOFF) == []


@given(home=st.floats(1.05, 20), away=st.floats(1.05, 20), placed=st.floats(1.05, 20))
def test_clv_is_zero_exactly_when_the_placed_price_is_the_fair_closing_price(home: float, away: float,
                                                                             placed: float) -> None:
    book, clock, closing = setup(["sharp"])
    t = KICKOFF - timedelta(hours=1)
    clock.advance(t)
    book.apply_batch(board(t, {"sharp": (home, away)}))
    fair_home = 1 / no_vig(home, away)[0]
    closing.watch(1, HOME, "sharp", fair_home, clock.now(), back=True)
    closing.watch(2, HOME, "sharp", placed, clock.now(), back=True)
    at_fair, other = closing.due(KICKOFF)
    assert at_fair.clv == pytest.approx(0.0, abs=1e-9)
    assert other.clv is not None
    if abs(placed - fair_home) > 1e-6:
        assert (other.clv > 0) == (placed > fair_home)


def exchange_board(at: datetime, back: tuple[float, float], lay: tuple[float, float]) -> OddsBatch:
    """One exchange snapshot: best back and best lay of (home, away), 100 at each."""
    updates = tuple(
        OddsUpdate("test", "betfair-ex", sel, b, None, False, at, at, {}, ladder=Ladder(((b, 100.0),), ((l, 100.0),)))
        for sel, b, l in zip((HOME, AWAY), back, lay, strict=True)
    )
    return OddsBatch("test", at, updates)


def test_a_lays_close_is_the_lay_price_and_its_clv_is_what_the_layer_expects_to_win() -> None:
    book, clock, closing = setup(["pinnacle"])
    t = KICKOFF - timedelta(hours=1)
    clock.advance(t)
    book.apply_batch(board(t, {"pinnacle": (2.00, 1.90)}))
    book.apply_batch(exchange_board(t, back=(2.02, 1.94), lay=(2.06, 1.98)))
    closing.watch(1, HOME, "betfair-ex", 1.90, clock.now(), back=False)  # laid below the fair 1.95
    closing.watch(2, HOME, "betfair-ex", 2.10, clock.now(), back=True)
    lay, back = closing.due(KICKOFF)
    p_home, _ = no_vig(2.00, 1.90)
    assert (lay.price, back.price) == (2.06, 2.02)  # each at the side it was struck on
    assert lay.probability == back.probability == pytest.approx(p_home, abs=1e-12)
    # the layer wins the backer's stake with 1 - p and pays P - 1 with p: 1 - P x p per unit
    assert lay.clv == pytest.approx((1 - p_home) * 1 - p_home * (1.90 - 1), abs=1e-12)
    assert lay.clv is not None and lay.clv > 0
    assert back.clv == pytest.approx(2.10 * p_home - 1, abs=1e-12)


@given(home=st.floats(1.05, 20), away=st.floats(1.05, 20), placed=st.floats(1.05, 20))
def test_a_lay_beats_the_close_exactly_when_it_was_laid_below_the_fair_closing_price(
        home: float, away: float, placed: float) -> None:
    book, clock, closing = setup(["sharp"])
    t = KICKOFF - timedelta(hours=1)
    clock.advance(t)
    book.apply_batch(board(t, {"sharp": (home, away)}))
    closing.watch(1, HOME, "sharp", placed, clock.now(), back=False)
    closing.watch(2, HOME, "sharp", placed, clock.now(), back=True)
    lay, back = closing.due(KICKOFF)
    assert lay.clv is not None and back.clv is not None
    assert lay.clv == pytest.approx(-back.clv, abs=1e-12)  # the two sides of one bet at one price
    fair_home = 1 / no_vig(home, away)[0]
    if abs(placed - fair_home) > 1e-6:
        assert (lay.clv > 0) == (placed < fair_home)
