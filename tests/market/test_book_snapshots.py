"""Complete snapshots confirm a source's quotes, except the (fixture, bookmaker) pairs they leave
`unconfirmed` (bot/market/book.py `_confirm`). The book stamps each snapshot once per source;
this checks the stamps against a plain model that writes every pair's confirmation at every
snapshot, over random sequences of updates, snapshots, stale marks, liveness, clears and time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.market.book import OddsBook
from bot.types import BookCleared, FeedStatus, OddsBatch, OddsUpdate, Selection
from tests.market.test_book import BEARS, PACKERS, make, sel, upd

STALE_AFTER = timedelta(minutes=15)
SOURCES = ["s0", "s1"]
BOOKS = ["draftkings", "fanduel"]
SELECTIONS = [sel(o, f) for o in ("home", "away") for f in (BEARS, PACKERS)]
EPOCH = datetime.min.replace(tzinfo=BEARS.start_time.tzinfo)


@dataclass
class Entry:
    source: str
    seen_at: datetime
    generation: int


class Model:
    """The staleness rule of bot/market/book.py, with every (source, fixture, bookmaker)
    confirmation written out at each snapshot."""

    def __init__(self) -> None:
        self.generation = dict.fromkeys(SOURCES, 0)
        self.alive_at = dict.fromkeys(SOURCES, EPOCH)
        self.cells: dict[tuple[str, object, str], tuple[datetime, int]] = {}
        self.entries: dict[tuple[Selection, str], Entry] = {}

    def update(self, u: OddsUpdate) -> None:
        self.entries[(u.selection, u.bookmaker)] = Entry(u.source, u.received_at, self.generation[u.source])
        self.cells.setdefault((u.source, u.selection.fixture, u.bookmaker), (EPOCH, 0))

    def snapshot(self, source: str, at: datetime, skip: set[tuple[object, str | None]]) -> None:
        for (src, fixture, bookmaker), (alive, _) in list(self.cells.items()):
            if src == source and (fixture, None) not in skip and (fixture, bookmaker) not in skip:
                self.cells[(src, fixture, bookmaker)] = (max(alive, at), self.generation[source])

    def clear(self, source: str, bookmaker: str | None) -> None:
        gone = [k for k, e in self.entries.items() if e.source == source and bookmaker in (None, k[1])]
        for key in gone:
            del self.entries[key]
        if gone:  # the book frees the cleared cells only when something was cleared
            for cell in [c for c in self.cells if c[0] == source and bookmaker in (None, c[2])]:
                del self.cells[cell]

    def stale(self, key: tuple[Selection, str], now: datetime) -> bool:
        e = self.entries[key]
        alive, generation = self.cells.get((e.source, key[0].fixture, key[1]), (EPOCH, 0))
        return max(e.generation, generation) < self.generation[e.source] or (
            now - max(e.seen_at, alive, self.alive_at[e.source]) > STALE_AFTER)


skips = st.lists(st.tuples(st.sampled_from([BEARS, PACKERS]), st.sampled_from([*BOOKS, None])), max_size=2)
op = st.one_of(
    st.tuples(st.just("upd"), st.sampled_from(SOURCES), st.sampled_from(SELECTIONS), st.sampled_from(BOOKS),
              st.sampled_from([1.5, 2.0, 2.5])),
    st.tuples(st.just("upd"), st.sampled_from(SOURCES), st.sampled_from(SELECTIONS), st.sampled_from(BOOKS),
              st.sampled_from([1.5, 2.0])),
    st.tuples(st.just("snapshot"), st.sampled_from(SOURCES), skips),
    st.tuples(st.just("snapshot"), st.sampled_from(SOURCES), st.just([])),
    st.tuples(st.just("tick"), st.integers(0, 12)),
    st.tuples(st.just("stale"), st.sampled_from(SOURCES)),
    st.tuples(st.just("alive"), st.sampled_from(SOURCES)),
    st.tuples(st.just("clear"), st.sampled_from(SOURCES), st.sampled_from([*BOOKS, None])),
)


def check(book: OddsBook, model: Model, now: datetime) -> None:
    assert len(book) == len(model.entries)
    for key in model.entries:
        q = book.quote(*key)
        assert q is not None and q.stale == model.stale(key, now), (key, q)


@settings(max_examples=300, deadline=None)
@given(st.lists(op, min_size=5, max_size=60))
def test_snapshot_stamps_equal_a_per_pair_model(ops: list[tuple]) -> None:
    book, clock = make()
    model = Model()
    for kind, *args in ops:
        now = clock.now()
        if kind == "upd":
            source, selection, bookmaker, price = args
            u = upd(selection, bookmaker, price, now, source=source)
            book.apply(u)
            model.update(u)
        elif kind == "snapshot":
            source, skip = args
            book.apply(OddsBatch(source, now, complete=True, unconfirmed=tuple(skip)))
            model.snapshot(source, now, set(skip))
        elif kind == "tick":
            clock.advance(now + timedelta(minutes=args[0]))
        elif kind == "stale":
            book.apply(FeedStatus(args[0], now, connected=False, stale=True))
            model.generation[args[0]] += 1
        elif kind == "alive":
            book.apply(FeedStatus(args[0], now, connected=True, stale=False))
            model.alive_at[args[0]] = max(model.alive_at[args[0]], now)
        else:
            book.apply(BookCleared(args[0], now, bookmaker=args[1]))
            model.clear(args[0], args[1])
        check(book, model, clock.now())


def test_a_pair_left_unconfirmed_keeps_its_earlier_confirmation_only() -> None:
    book, clock = make()
    t0 = clock.now()
    for selection in SELECTIONS:
        book.apply(upd(selection, "draftkings", 2.0, t0, source="s0"))
    clock.advance(t0 + timedelta(minutes=10))
    book.apply(OddsBatch("s0", clock.now(), complete=True))  # all confirmed at 10 min
    clock.advance(t0 + timedelta(minutes=20))
    book.apply(OddsBatch("s0", clock.now(), complete=True, unconfirmed=((BEARS, "draftkings"),)))
    clock.advance(t0 + timedelta(minutes=26))  # 16 min after the last confirmation of BEARS
    stale = {s.fixture for s in SELECTIONS if book.quote(s, "draftkings").stale}  # type: ignore[union-attr]
    assert stale == {BEARS}
