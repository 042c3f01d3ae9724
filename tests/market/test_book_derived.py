"""OddsBook derived state (bot/market/book.py: `fair`, `consensus`, `quotes_between`): after any
sequence of updates, suspensions, stale marks, liveness confirmations, complete snapshots, clears
and clock advances, queried in between so caches exist, the incrementally kept values equal a
from-scratch recomputation from the book's own quotes (bot.market.odds.no_vig_probabilities,
exact means with Fraction)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.clock import ReplayClock
from bot.market.book import OddsBook
from bot.market.odds import DevigMethod, OddsError, no_vig_probabilities
from bot.types import BookCleared, FeedStatus, FixtureKey, MarketKey, OddsBatch, OddsUpdate, Selection

T0 = datetime(2025, 9, 8, 10, 0, tzinfo=UTC)
FIXTURE = FixtureKey("EPL", "Arsenal", "Chelsea", datetime(2025, 9, 9, 15, 0, tzinfo=UTC))
ML = MarketKey("1x2")
BOOKS = ["b0", "b1", "b2", "b3"]
SOURCES = ["s0", "s1"]
HOME = {"b0": "s0", "b1": "s0", "b2": "s1", "b3": "s1"}  # the source that usually prices a book
OUTCOMES = ["home", "away", "draw"]
METHODS: list[DevigMethod] = ["multiplicative", "additive"]
PRICES = [1.5, 1.8, 1.91, 2.0, 2.5, 3.4, 9.0, 41.0]


def make() -> tuple[OddsBook, ReplayClock]:
    clock = ReplayClock(T0)
    return OddsBook(clock, stale_after=timedelta(minutes=15)), clock


def update(book: str, outcome: str, price: float | None, at: datetime, source: str) -> OddsUpdate:
    return OddsUpdate(source, book, Selection(FIXTURE, ML, outcome), price, None, price is None, at, at)


def priced(b: str, outcome: str, price: float | None, own_source: bool, at: datetime) -> OddsUpdate:
    """An update from the book's usual source, or (own_source False) from the other one."""
    return update(b, outcome, price, at, HOME[b] if own_source else next(s for s in SOURCES if s != HOME[b]))


def expected_fair(book: OddsBook, method: DevigMethod) -> tuple[list[str], dict[str, tuple[float, ...]]]:
    """From scratch: the sorted outcome set and bookmaker -> fair probabilities of every book
    whose market is complete and usable now (the value strategy's original definition)."""
    boards = {b: book.market(FIXTURE, ML, b) for b in book.bookmakers(FIXTURE, ML)}
    order = sorted(set().union(*(board.keys() for board in boards.values())))
    fair: dict[str, tuple[float, ...]] = {}
    for b, board in boards.items():
        quotes = [board.get(o) for o in order]
        if len(order) < 2 or any(q is None or not q.usable for q in quotes):
            continue
        try:
            fair[b] = tuple(no_vig_probabilities([q.price for q in quotes], method))  # type: ignore[union-attr,misc]
        except OddsError:
            continue
    return order, fair


def check(book: OddsBook) -> None:
    for method in METHODS:
        order, fair = expected_fair(book, method)
        cons = book.consensus(FIXTURE, ML, method)
        if len(order) < 2:
            assert cons is None
            assert all(book.fair(FIXTURE, ML, b, method) is None for b in BOOKS)
            continue
        assert cons is not None and cons.outcomes == tuple(order)
        assert dict(cons.fair) == fair and cons.count == len(fair)
        for b in BOOKS:
            want = dict(zip(order, fair[b], strict=True)) if b in fair else None
            assert book.fair(FIXTURE, ML, b, method) == want
        for exclude in [None, *BOOKS]:
            refs = [f for b, f in fair.items() if b != exclude]
            means = tuple(float(sum(map(Fraction, col)) / len(refs)) for col in zip(*refs, strict=True))
            assert cons.mean(exclude) == (means or None)
            for i in range(len(order)):
                assert cons.probability(i, exclude) == (means[i] if means else None)
        sums = [float(sum(Fraction(f[i]) for f in fair.values())) for i in range(len(order))]
        assert list(cons.sums) == sums
    for outcome in OUTCOMES:
        usable = sorted((q.price, b) for b, q in book.quotes(Selection(FIXTURE, ML, outcome)).items()
                        if q.usable and q.price is not None and 1.8 <= q.price <= 9.0)
        got = book.quotes_between(FIXTURE, ML, outcome, 1.8, 9.0)
        assert sorted((p, b) for b, p in got) == usable
        assert [p for _, p in got] == sorted(p for _, p in got)


upd = st.tuples(st.just("upd"), st.sampled_from(BOOKS), st.sampled_from(OUTCOMES),
                st.sampled_from([*PRICES, None]), st.sampled_from([True, True, True, False]))
op = st.one_of(
    upd, upd, upd, upd,  # mostly prices, so that markets fill up
    st.tuples(st.just("tick"), st.integers(0, 20)),
    st.tuples(st.just("stale"), st.sampled_from(SOURCES)),
    st.tuples(st.just("alive"), st.sampled_from(SOURCES)),
    st.tuples(st.just("snapshot"), st.sampled_from(SOURCES)),
    st.tuples(st.just("clear"), st.sampled_from(SOURCES), st.sampled_from([*BOOKS, None])),
    st.tuples(st.just("batch"), st.lists(upd, min_size=1, max_size=4)),
    st.tuples(st.just("check")), st.tuples(st.just("check")),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(op, min_size=8, max_size=80))
def test_derived_state_equals_a_recomputation(ops: list[tuple]) -> None:
    book, clock = make()
    for kind, *args in ops:
        now = clock.now()
        if kind == "upd":
            b, outcome, price, own = args
            book.apply(priced(b, outcome, price, own, now))
        elif kind == "batch":  # a frame of several updates, applied whole
            book.apply(OddsBatch("s0", now, tuple(priced(b, o, pr, own, now) for _, b, o, pr, own in args[0])))
        elif kind == "tick":
            clock.advance(now + timedelta(minutes=args[0]))
        elif kind == "stale":
            book.apply(FeedStatus(args[0], now, connected=False, stale=True))
        elif kind == "alive":
            book.apply(FeedStatus(args[0], now, connected=True, stale=False))
        elif kind == "snapshot":  # a complete poll that changed nothing: it confirms its quotes
            book.apply(OddsBatch(args[0], now, complete=True))
        elif kind == "clear":
            book.apply(BookCleared(args[0], now, bookmaker=args[1]))
        else:
            check(book)
    check(book)


def test_a_cached_book_goes_stale_with_time_and_comes_back_when_confirmed() -> None:
    book, clock = make()
    for b, prices in {"b0": (2.0, 1.9), "b1": (2.1, 1.8), "b2": (1.95, 1.95)}.items():
        for outcome, price in zip(("home", "away"), prices, strict=True):
            book.apply(update(b, outcome, price, T0, HOME[b]))

    def members() -> set[str]:
        cons = book.consensus(FIXTURE, ML)
        assert cons is not None
        return set(cons.fair)

    assert members() == {"b0", "b1", "b2"}
    # at 10 min s0 says it is alive and b2 re-sends its unchanged prices: all good until 25 min,
    # though the cache first held them until 15
    clock.advance(T0 + timedelta(minutes=10))
    book.apply(FeedStatus("s0", clock.now(), connected=True, stale=False))
    assert members() == {"b0", "b1", "b2"}
    assert not book.apply(update("b2", "home", 1.95, clock.now(), "s1"))
    assert not book.apply(update("b2", "away", 1.95, clock.now(), "s1"))
    clock.advance(T0 + timedelta(minutes=16))
    assert members() == {"b0", "b1", "b2"}
    # b2 confirms again at 20 min; at 26 min s0's prices have aged out
    clock.advance(T0 + timedelta(minutes=20))
    book.apply(update("b2", "home", 1.95, clock.now(), "s1"))
    book.apply(update("b2", "away", 1.95, clock.now(), "s1"))
    clock.advance(T0 + timedelta(minutes=26))
    assert members() == {"b2"}
    assert book.fair(FIXTURE, ML, "b0") is None and book.consensus(FIXTURE, ML).mean() == (0.5, 0.5)  # type: ignore[union-attr]
    # s0 is alive again: its unchanged prices count again
    book.apply(FeedStatus("s0", clock.now(), connected=True, stale=False))
    assert members() == {"b0", "b1", "b2"}
    # a stale mark takes them out at once, though their time has not come
    book.apply(FeedStatus("s0", clock.now(), connected=False, stale=True))
    assert members() == {"b2"}
    check(book)
