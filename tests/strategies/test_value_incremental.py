"""The value strategy on the book's incremental derived state (bot/strategy/builtin/value.py)
signals exactly what the original evaluation did: every book de-vigged and every offer scanned
from scratch on each update. Random boards, update sequences (suspensions, staleness, stale marks,
clears) and params; both run on the same book, each with its own memory of signalled prices.

The from-scratch oracle is the original code with one change: the consensus mean is the exact
mean (Fraction), as the incremental one now is (the original float sum differed in the last bits
with the order of the books)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.clock import ReplayClock
from bot.market.book import OddsBook
from bot.market.odds import OddsError, expected_value, no_vig_probabilities
from bot.strategy.api import StrategyContext
from bot.strategy.builtin.value import ValueStrategy
from bot.types import BookCleared, FeedStatus, FixtureKey, MarketKey, OddsUpdate, Selection, Signal

T0 = datetime(2025, 9, 8, 10, 0, tzinfo=UTC)
FIXTURE = FixtureKey("EPL", "Arsenal", "Chelsea", datetime(2025, 9, 9, 15, 0, tzinfo=UTC))
MARKET = MarketKey("1x2")
BOOKS = ["pinnacle", "bet365", "bwin", "unibet", "williamhill"]
OUTCOMES = ["home", "draw", "away"]
PRICES = [1.4, 1.7, 1.9, 2.0, 2.2, 2.6, 3.1, 3.5, 4.2, 6.0, 11.0]


class FromScratch(ValueStrategy):
    """The original evaluation: every book's market de-vigged, every offer scanned."""

    def _fair(self, books: list[str]) -> dict[str, dict[str, float]]:
        boards = {b: self.ctx.book.market(FIXTURE, MARKET, b) for b in books}
        outcomes = set().union(*(board.keys() for board in boards.values()))
        if len(outcomes) < 2:
            return {}
        order = sorted(outcomes)
        fair: dict[str, dict[str, float]] = {}
        for b, board in boards.items():
            quotes = [board.get(o) for o in order]
            if any(q is None or not q.usable for q in quotes):
                continue
            try:
                probs = no_vig_probabilities([q.price for q in quotes], self.params.devig)  # type: ignore[union-attr,misc]
            except OddsError:
                continue
            fair[b] = dict(zip(order, probs, strict=True))
        return fair

    def _reference(self, fair: dict[str, dict[str, float]], offer: str) -> dict[str, float] | None:
        p = self.params
        if p.sharp_books:
            refs = [fair[b] for b in p.sharp_books if b in fair]
            if not refs:
                return None
            return {o: sum(r[o] for r in refs) / len(refs) for o in refs[0]}
        refs = [f for b, f in fair.items() if not (p.consensus_exclude_offer and b == offer)]
        if len(refs) < p.min_consensus_books:
            return None
        return {o: float(sum(Fraction(r[o]) for r in refs) / len(refs)) for o in refs[0]}  # exact mean

    def _evaluate(self, fixture: FixtureKey, market: MarketKey) -> list[Signal]:
        p = self.params
        if p.pre_match_only and self.ctx.now() >= fixture.start_time:
            return []
        books = self.ctx.book.bookmakers(fixture, market)
        fair = self._fair(books)
        if not fair:
            return []
        offers = p.bookmakers or [b for b in books if b not in p.sharp_books]
        out: list[Signal] = []
        for offer in offers:
            reference = self._reference(fair, offer)
            if reference is None:
                continue
            for outcome, quote in self.ctx.book.market(fixture, market, offer).items():
                prob = reference.get(outcome)
                if prob is None or not quote.usable or quote.price is None:
                    continue
                price = quote.price
                if not p.min_price <= price <= p.max_price:
                    continue
                edge = expected_value(price, prob)
                if edge < p.min_edge:
                    continue
                selection = Selection(fixture, market, outcome)
                if self.ctx.last_price(selection, offer) == price:
                    continue
                stake = self._stake(price, prob)
                if stake < p.min_stake or stake <= 0:
                    continue
                out.append(self.ctx.signal(selection, stake=stake, price=price, bookmakers=(offer,), edge=edge,
                                           expires_in=p.expiry_seconds))
        return out


def _strategy(cls: type[ValueStrategy], book: OddsBook, clock: ReplayClock, params: dict[str, Any]) -> ValueStrategy:
    return cls(StrategyContext(cls.__name__, ValueStrategy.Params(**params), book=book, clock=clock, ledger=None))


def _key(signals: list[Signal]) -> list[tuple[str, tuple[str, ...], float, float, str]]:
    return [(s.selection.key, s.bookmakers, s.price, s.edge, str(s.stake)) for s in signals]


params = st.fixed_dictionaries({
    "min_edge": st.sampled_from([0.0, 0.01, 0.05]),
    "sharp_books": st.sampled_from([[], ["pinnacle"], ["pinnacle", "bwin"]]),
    "min_consensus_books": st.integers(1, 4),
    "consensus_exclude_offer": st.booleans(),
    "devig": st.sampled_from(["multiplicative", "additive", "power"]),
    "bookmakers": st.sampled_from([[], ["bwin", "bet365"], ["unibet", "pinnacle", "bwin", "unibet"]]),
    "min_stake": st.sampled_from([0, 1]),
    "min_price": st.sampled_from([1.05, 1.8]),
    "max_price": st.sampled_from([10.0, 4.0]),
})
op = st.one_of(
    *[st.tuples(st.just("upd"), st.sampled_from(BOOKS), st.sampled_from(OUTCOMES),
                st.sampled_from([*PRICES, None]))] * 10,
    st.tuples(st.just("tick"), st.sampled_from([0, 1, 2, 4, 16])),  # minutes; quotes age out at 15
    st.tuples(st.just("stale"), st.sampled_from(BOOKS)),
    st.tuples(st.just("alive"), st.sampled_from(BOOKS)),
    st.tuples(st.just("clear"), st.sampled_from(BOOKS)),
)


@settings(max_examples=300, deadline=None)
@given(params, st.lists(st.sampled_from(PRICES), min_size=15, max_size=15), st.lists(op, max_size=60))
def test_incremental_value_signals_what_a_scan_from_scratch_signals(
    kw: dict[str, Any], board: list[float], ops: list[tuple]
) -> None:
    clock = ReplayClock(T0)
    book = OddsBook(clock, stale_after=timedelta(minutes=15))
    ours, oracle = _strategy(ValueStrategy, book, clock, kw), _strategy(FromScratch, book, clock, kw)
    first = [("upd", b, o, board[3 * i + j]) for i, b in enumerate(BOOKS) for j, o in enumerate(OUTCOMES)]
    for kind, *args in first + ops:
        now = clock.now()
        if kind == "tick":
            clock.advance(now + timedelta(minutes=args[0]))
            continue
        if kind == "upd":  # each book is its own source, so stale marks and clears hit one book
            b, outcome, price = args
            update = OddsUpdate(b, b, Selection(FIXTURE, MARKET, outcome), price, None, price is None, now, now)
            if not book.apply(update):
                continue
            got, want = ours.on_odds(update=update), oracle.on_odds(update=update)
        else:
            event = (FeedStatus(args[0], now, connected=False, stale=True) if kind == "stale"
                     else FeedStatus(args[0], now, connected=True, stale=False) if kind == "alive"
                     else BookCleared(args[0], now))
            book.apply(event)
            got = ours.on_market(fixture=FIXTURE, market=MARKET, updates=())
            want = oracle.on_market(fixture=FIXTURE, market=MARKET, updates=())
        assert _key(got) == _key(want)
