"""The odds book: the current price of every (selection, bookmaker) with its suspended and
stale state (docs/architecture.md, Pipeline).

Fed by `apply(event)` for single feed events and `apply_batch(batch)` for an `OddsBatch` (a
whole snapshot or batched frame, applied as one step before any strategy runs; it returns the
(fixture, market) pairs it changed), read by strategies and risk. Staleness is judged at query
time on the engine clock, so a replay is deterministic:
- after `FeedStatus(stale=True)` from a source, every quote of that source that has not been
  re-sent (or confirmed by a complete snapshot) since is stale: a reconnecting feed re-sends its
  snapshot, so pre-disconnect prices are never traded on (docs/architecture.md, Invariants >
  Fail closed);
- a quote not confirmed for longer than `stale_after` is stale. A quote is confirmed by an
  update for it, by a `FeedStatus(connected=True, stale=False)` of its source (a live push
  connection vouches for every price it did not change), or by a complete `OddsBatch` of its
  source (a poll snapshot vouches for every price it did not change or withdraw, except those
  of the (fixture, bookmaker) pairs it lists as `unconfirmed`).
`BookCleared` forgets the matching quotes of its source and frees their memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.clock import Clock
from bot.types import BookCleared, FeedEvent, FeedStatus, FixtureKey, MarketKey, OddsBatch, OddsUpdate, Selection

_EPOCH = datetime.min.replace(tzinfo=UTC)

MarketChanges = dict[tuple[FixtureKey, MarketKey], list[OddsUpdate]]
"""What a batch changed: (fixture, market) -> the updates of the batch that changed a quote of
it, in batch order (empty for a market only a clear touched)."""


@dataclass(frozen=True, slots=True)
class Quote:
    """One bookmaker's price for one selection as of the query.

    `price` is decimal odds (None when suspended), `american` the American odds; `stale` is
    evaluated at query time; `updated_at` is the clock time of the last price change (UTC).
    """

    bookmaker: str
    price: float | None
    american: int | None
    suspended: bool
    stale: bool
    updated_at: datetime
    source: str

    @property
    def usable(self) -> bool:
        """A price one may bet on now: present, not suspended, not stale."""
        return self.price is not None and not self.suspended and not self.stale


class _Entry:
    """Mutable state behind a quote (one per selection and bookmaker); shared by both indexes."""

    __slots__ = ("american", "cell", "feed", "generation", "price", "seen_at", "source", "suspended",
                 "updated_at")

    def __init__(self, update: OddsUpdate, feed: _Source, cell: _Cell) -> None:
        self.price = update.price
        self.american = update.american
        self.suspended = update.suspended
        self.updated_at = update.received_at
        self.seen_at = update.received_at
        self.generation = feed.generation
        self.source = update.source
        self.feed = feed
        self.cell = cell


class _Cell:
    """What complete snapshots of a source confirmed of one (fixture, bookmaker): `alive_at` the
    last snapshot time, `generation` the source's generation then."""

    __slots__ = ("alive_at", "generation")

    def __init__(self) -> None:
        self.alive_at = _EPOCH
        self.generation = 0


class _Source:
    """Per-source staleness: `generation` rises with each stale mark; `alive_at` is the last
    confirmation that all of the source's unchanged prices still hold (a live connection);
    `cells` the per-(fixture, bookmaker) confirmations of complete snapshots."""

    __slots__ = ("alive_at", "cells", "generation")

    def __init__(self) -> None:
        self.generation = 0
        self.alive_at = _EPOCH
        self.cells: dict[tuple[FixtureKey, str], _Cell] = {}

    def cell(self, fixture: FixtureKey, bookmaker: str) -> _Cell:
        cell = self.cells.get((fixture, bookmaker))
        if cell is None:
            cell = self.cells[(fixture, bookmaker)] = _Cell()
        return cell


# fixture -> market -> bookmaker -> outcome -> entry
_Tree = dict[FixtureKey, dict[MarketKey, dict[str, dict[str, _Entry]]]]


class OddsBook:
    """Current prices per (selection, bookmaker).

    `apply` takes every `FeedEvent` and `apply_batch` an `OddsBatch` (returning what changed);
    the query methods return `Quote`s built at call time.
    Times are the engine clock (UTC); an entry's times are its updates' `received_at` (the
    engine clock at receipt).
    """

    def __init__(self, clock: Clock, stale_after: timedelta = timedelta(minutes=15)) -> None:
        self._clock = clock
        self._stale_after = stale_after
        self._by_selection: dict[Selection, dict[str, _Entry]] = {}
        self._tree: _Tree = {}
        self._sources: dict[str, _Source] = {}
        self._keys: dict[str, Selection] = {}
        # Selections added since the text-key index was built (a list: appending needs no hash).
        self._unindexed: list[Selection] = []
        # Hot path: feeds reuse Selection objects, and an id lookup is ~10x cheaper than hashing
        # a Selection (three nested dataclasses). `_pinned` holds every selection registered in
        # `_by_id` (both are cleared together), so a registered id cannot be reused meanwhile.
        self._by_id: dict[int, dict[str, _Entry]] = {}
        self._pinned: list[Selection] = []

    # -- updates -----------------------------------------------------------------------------

    def apply(self, event: FeedEvent) -> bool:
        """Apply one feed event. Returns True when a price (or suspended flag) changed.

        `OddsUpdate` upserts one quote; `BookCleared` forgets the matching quotes of its source;
        `FeedStatus` marks the source stale (stale=True) or confirms it alive; an `OddsBatch` is
        applied whole (see `apply_batch`).
        """
        if type(event) is not OddsUpdate:
            if isinstance(event, OddsBatch):
                return bool(self.apply_batch(event))
            if isinstance(event, BookCleared):
                return bool(self._clear(event))
            if isinstance(event, FeedStatus):
                self._status(event)
            return False
        # The hot path (one call per outcome update), kept inline; `apply_batch` repeats it.
        selection = event.selection
        books = self._by_id.get(id(selection))
        if books is None:
            books = self._books(selection)
        entry = books.get(event.bookmaker)
        if entry is None:
            self._add(books, event)
            return True
        if entry.source != event.source:  # another feed now prices this bookmaker
            self._move(entry, event)
        entry.seen_at = event.received_at
        entry.generation = entry.feed.generation
        if entry.price == event.price and entry.suspended == event.suspended:
            return False
        entry.price = event.price
        entry.american = event.american
        entry.suspended = event.suspended
        entry.updated_at = event.received_at
        return True

    def apply_batch(self, batch: OddsBatch) -> MarketChanges:
        """Apply a whole snapshot or batched frame: its clears first, then its updates in order,
        then (a complete batch) confirm its source's other quotes as of `received_at`, except
        the `unconfirmed` (fixture, bookmaker) pairs (bot.types.OddsBatch).

        Returns the (fixture, market) pairs whose quotes changed, each with the updates that
        changed them (see `MarketChanges`); pairs come in the order they first changed.
        """
        changed: MarketChanges = {}
        for cleared in batch.cleared:
            for pair in self._clear(cleared):
                changed.setdefault(pair, [])
        # Changed updates grouped by the identity of their fixture and market keys (cheap to
        # hash; feeds reuse key objects), merged by equality below.
        groups: dict[tuple[int, int], list[OddsUpdate]] = {}
        by_id, new_books = self._by_id, self._books
        for event in batch.updates:  # the hot loop: the body of `apply` for an OddsUpdate
            selection = event.selection
            books = by_id.get(id(selection))
            if books is None:
                books = new_books(selection)
            entry = books.get(event.bookmaker)
            if entry is None:
                self._add(books, event)
            else:
                if entry.source != event.source:
                    self._move(entry, event)
                entry.seen_at = event.received_at
                entry.generation = entry.feed.generation
                if entry.price == event.price and entry.suspended == event.suspended:
                    continue
                entry.price = event.price
                entry.american = event.american
                entry.suspended = event.suspended
                entry.updated_at = event.received_at
            key = (id(selection.fixture), id(selection.market))
            group = groups.get(key)
            if group is None:
                groups[key] = [event]
            else:
                group.append(event)
        for group in groups.values():
            first = group[0].selection
            pair = (first.fixture, first.market)
            if pair in changed:
                changed[pair].extend(group)
            else:
                changed[pair] = group
        if batch.complete:
            self._confirm(batch)
        return changed

    def _add(self, books: dict[str, _Entry], update: OddsUpdate) -> None:
        selection = update.selection
        feed = self._source(update.source)
        entry = books[update.bookmaker] = _Entry(update, feed, feed.cell(selection.fixture, update.bookmaker))
        self._tree_slot(selection, update.bookmaker)[selection.outcome] = entry

    def _move(self, entry: _Entry, update: OddsUpdate) -> None:
        """Another feed now prices this entry's bookmaker: it follows that feed's staleness."""
        feed = self._source(update.source)
        entry.source, entry.feed = update.source, feed
        entry.cell = feed.cell(update.selection.fixture, update.bookmaker)

    def _confirm(self, batch: OddsBatch) -> None:
        """A complete snapshot vouches for every quote of its source it did not withdraw."""
        source = self._source(batch.source)
        skip = set(batch.unconfirmed)
        at, generation = batch.received_at, source.generation
        for (fixture, bookmaker), cell in source.cells.items():
            if skip and ((fixture, None) in skip or (fixture, bookmaker) in skip):
                continue
            cell.alive_at = max(cell.alive_at, at)
            cell.generation = generation

    def _source(self, name: str) -> _Source:
        source = self._sources.get(name)
        if source is None:
            source = self._sources[name] = _Source()
        return source

    def _books(self, selection: Selection) -> dict[str, _Entry]:
        """The bookmaker -> entry dict of a selection (created if new), registered by id."""
        fresh: dict[str, _Entry] = {}
        books = self._by_selection.setdefault(selection, fresh)  # one hash of the selection
        if books is fresh:
            self._unindexed.append(selection)
        if len(self._pinned) > 2 * len(self._by_selection) + 10_000:
            self._unpin()  # a feed that builds new Selection objects per update
        self._by_id[id(selection)] = books
        self._pinned.append(selection)
        return books

    def _unpin(self) -> None:
        self._by_id.clear()
        self._pinned.clear()

    def _tree_slot(self, selection: Selection, bookmaker: str) -> dict[str, _Entry]:
        markets = self._tree.setdefault(selection.fixture, {})
        return markets.setdefault(selection.market, {}).setdefault(bookmaker, {})

    def _status(self, status: FeedStatus) -> None:
        source = self._source(status.source)
        if status.stale:
            source.generation += 1
        elif status.connected and status.at > source.alive_at:
            source.alive_at = status.at

    def _clear(self, cleared: BookCleared) -> list[tuple[FixtureKey, MarketKey]]:
        """Forget quotes of `cleared.source` matching every field that is set; free empty nodes.
        Returns the (fixture, market) pairs that lost a quote."""
        if cleared.fixture is not None:
            fixtures = [cleared.fixture] if cleared.fixture in self._tree else []
        else:
            fixtures = [f for f in self._tree if cleared.sport is None or f.sport == cleared.sport]
        removed: list[tuple[FixtureKey, MarketKey]] = []
        for fixture in fixtures:
            markets = self._tree[fixture]
            for market in list(markets):
                books = markets[market]
                names = [cleared.bookmaker] if cleared.bookmaker is not None else list(books)
                lost = False
                for bookmaker in names:
                    outcomes = books.get(bookmaker)
                    if outcomes is None:
                        continue
                    for outcome in [o for o, e in outcomes.items() if e.source == cleared.source]:
                        del outcomes[outcome]
                        self._forget(Selection(fixture, market, outcome), bookmaker)
                        lost = True
                    if not outcomes:
                        del books[bookmaker]
                if lost:
                    removed.append((fixture, market))
                if not books:
                    del markets[market]
            if not markets:
                del self._tree[fixture]
        if removed:
            self._unpin()  # `_by_id` may point at emptied dicts; rebuilt on the next updates
            if len(self._unindexed) > len(self._by_selection):  # drop forgotten selections
                self._unindexed = [s for s in self._unindexed if s in self._by_selection]
            source = self._sources.get(cleared.source)
            if source is not None:  # no quote of the source is left where it cleared: free the cells
                wanted = set(fixtures)
                for fixture, bookmaker in [k for k in source.cells if k[0] in wanted]:
                    if cleared.bookmaker is None or bookmaker == cleared.bookmaker:
                        del source.cells[(fixture, bookmaker)]
        return removed

    def _forget(self, selection: Selection, bookmaker: str) -> None:
        books = self._by_selection[selection]
        del books[bookmaker]
        if not books:
            del self._by_selection[selection]
            self._keys.pop(selection.key, None)

    # -- queries -----------------------------------------------------------------------------

    def _quote(self, bookmaker: str, entry: _Entry, now: datetime) -> Quote:
        source, cell = entry.feed, entry.cell
        stale = max(entry.generation, cell.generation) < source.generation or (
            now - max(entry.seen_at, cell.alive_at, source.alive_at) > self._stale_after
        )
        return Quote(
            bookmaker, entry.price, entry.american, entry.suspended, stale, entry.updated_at, entry.source
        )

    def quote(self, selection: Selection, bookmaker: str) -> Quote | None:
        """One bookmaker's quote for a selection, or None if the book never priced it."""
        entry = self._by_selection.get(selection, {}).get(bookmaker)
        return None if entry is None else self._quote(bookmaker, entry, self._clock.now())

    def quotes(self, selection: Selection) -> dict[str, Quote]:
        """Every bookmaker's quote for a selection: bookmaker -> quote (usable or not)."""
        now = self._clock.now()
        return {b: self._quote(b, e, now) for b, e in self._by_selection.get(selection, {}).items()}

    def best(self, selection: Selection) -> Quote | None:
        """The highest usable price for a selection across bookmakers, or None."""
        usable = [q for q in self.quotes(selection).values() if q.usable]
        return max(usable, key=lambda q: q.price or 0.0, default=None)

    def market(self, fixture: FixtureKey, market: MarketKey, bookmaker: str) -> dict[str, Quote]:
        """One bookmaker's full market (for de-vigging): outcome -> quote."""
        now = self._clock.now()
        outcomes = self._tree.get(fixture, {}).get(market, {}).get(bookmaker, {})
        return {o: self._quote(bookmaker, e, now) for o, e in outcomes.items()}

    def markets(self, fixture: FixtureKey) -> list[MarketKey]:
        """Markets of a fixture priced by at least one bookmaker."""
        return list(self._tree.get(fixture, {}))

    def bookmakers(self, fixture: FixtureKey, market: MarketKey) -> list[str]:
        """Bookmakers pricing a market of a fixture."""
        return list(self._tree.get(fixture, {}).get(market, {}))

    def fixtures(self) -> list[FixtureKey]:
        """Every fixture with at least one quote."""
        return list(self._tree)

    def selection(self, key: str) -> Selection | None:
        """The selection whose `Selection.key` is `key`, if the book holds it."""
        if self._unindexed:
            # Text keys are built lazily: formatting them on the hot path would cost more than
            # the update itself.
            for sel in self._unindexed:
                if sel in self._by_selection:
                    self._keys[sel.key] = sel
            self._unindexed.clear()
        return self._keys.get(key)

    def __len__(self) -> int:
        """Number of (selection, bookmaker) quotes held."""
        return sum(len(b) for b in self._by_selection.values())
