"""Closing lines (bot/market/closing.py): the close is the board just before the first event at
or after kickoff, at the bet's own book; the reference probability is the no-vig of the chosen
books (or the consensus) at that moment; CLV = placed price x closing probability - 1."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.clock import ReplayClock
from bot.market.book import OddsBook
from bot.market.closing import ClosingLines
from bot.market.config import ClvConfig
from bot.types import FixtureKey, MarketKey, OddsBatch, OddsUpdate, Selection

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
    assert closing.watch(7, HOME, "fanduel", 2.30, clock.now()) is None
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
    closing.watch(1, AWAY, "c", 1.95, clock.now())
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
    closing.watch(1, HOME, "fanduel", 2.0, clock.now())
    in_play = closing.watch(2, HOME, "fanduel", 2.5, KICKOFF + timedelta(minutes=5))
    assert in_play is not None and (in_play.price, in_play.probability, in_play.clv) == (None, None, None)
    (close,) = closing.due(KICKOFF)
    assert (close.price, close.probability, close.clv) == (2.0, None, None)


def test_close_all_takes_the_last_quotes_when_the_data_ends_before_kickoff() -> None:
    book, clock, closing = setup([])
    t = KICKOFF - timedelta(days=1)
    clock.advance(t)
    book.apply_batch(board(t, {"a": (2.0, 1.9), "b": (2.1, 1.8)}))
    closing.watch(3, HOME, "a", 2.0, clock.now())
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
    closing.watch(1, HOME, "sharp", fair_home, clock.now())
    closing.watch(2, HOME, "sharp", placed, clock.now())
    at_fair, other = closing.due(KICKOFF)
    assert at_fair.clv == pytest.approx(0.0, abs=1e-9)
    assert other.clv is not None
    if abs(placed - fair_home) > 1e-6:
        assert (other.clv > 0) == (placed > fair_home)
