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

Derived state per market, for strategies (`fair`, `consensus`, `quotes_between`): built on the
first query of a market and then kept up to date at each query for only the bookmakers whose
quotes were touched since, so a strategy pays O(outcomes x changed books) per update, and several
strategies share the work (bench/strategy_books.py):
- a bookmaker's market is *complete and usable* when it prices every outcome any book quotes in
  the market (sorted: the order of every tuple below), none suspended or stale; its no-vig fair
  probabilities (bot.market.odds.no_vig_probabilities) are memoised per de-vig method for its
  current prices;
- the consensus per method keeps exact sums of those probabilities over the complete, usable
  books (fixed point, `_fixed`), so the mean leaving one book out is (sum - own) / (n - 1),
  correctly rounded, and never drifts however many updates came;
- a price ladder per outcome (the non-suspended prices, sorted) finds the few quotes above a
  price without looking at every book.
Staleness changes without an update to the quote, so the cache cannot simply trust itself:
- every update of a quote (changed or not: an unchanged price still confirms it) queues its
  (market, bookmaker) for the next query;
- a usable book is held with the time its first quote ages out (min over its quotes of the last
  confirmation + `stale_after`) in a heap; a query at a later time takes it out (or keeps it,
  re-checked, when a confirmation extended its life);
- a stale mark of a source (`FeedStatus(stale=True)`) rebuilds the derived state of every
  market on its next query; a liveness confirmation (`FeedStatus(connected=True)`, a complete
  `OddsBatch`) re-checks the complete books held out as stale; a `BookCleared` or a new outcome
  drops the derived state of its markets; a clock that moved backwards rebuilds too.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from heapq import heapify, heappop, heappush
from types import MappingProxyType
from typing import Final

from bot.clock import Clock
from bot.market.odds import DevigMethod, OddsError, no_vig_probabilities
from bot.types import (
    BookCleared,
    FeedEvent,
    FeedStatus,
    FixtureKey,
    Ladder,
    MarketKey,
    OddsBatch,
    OddsUpdate,
    Selection,
)

_EPOCH = datetime.min.replace(tzinfo=UTC)

MarketChanges = dict[tuple[FixtureKey, MarketKey], list[OddsUpdate]]
"""What a batch changed: (fixture, market) -> the updates of the batch that changed a quote of
it, in batch order (empty for a market only a clear touched)."""


@dataclass(slots=True)
class Quote:
    """One bookmaker's price for one selection as of the query.

    `price` is decimal odds (None when suspended, or on an exchange when nothing is offered to
    back), `american` the American odds; `stale` is evaluated at query time; `updated_at` is the
    clock time of the last change of price, suspension or ladder (UTC); `ladder` the exchange
    depth (bot.types.Ladder: back and lay levels (price, size) best first, last traded price,
    traded volume; None for a sportsbook, whose quote is a back price alone).

    Read-only by type (`Final` fields, as bot.types.OddsUpdate) rather than `frozen=True`: a
    frozen dataclass's `__init__` costs 1.4 us to this one's 0.3 us, and `market()` builds one
    per runner on every call a strategy makes (bench/betfair_vs_flumine.py). Not hashable.
    """

    bookmaker: Final[str]
    price: Final[float | None]
    american: Final[int | None]
    suspended: Final[bool]
    stale: Final[bool]
    updated_at: Final[datetime]
    source: Final[str]
    ladder: Final[Ladder | None] = None

    @property
    def usable(self) -> bool:
        """A price one may bet on now: present, not suspended, not stale."""
        return self.price is not None and not self.suspended and not self.stale

    @property
    def lay_price(self) -> float | None:
        """The best available-to-lay price (exchanges), None when none is offered."""
        best = None if self.ladder is None else self.ladder.best_lay
        return None if best is None else best[0]

    @property
    def layable(self) -> bool:
        """A lay price one may lay at now: present, not suspended, not stale."""
        return self.lay_price is not None and not self.suspended and not self.stale


class _Cell:
    """What complete snapshots of a source confirmed of one (fixture, bookmaker): `alive_at` the
    last snapshot time and `generation` the source's generation then, as of the source's
    snapshot number `base`; each later snapshot confirms it too (`_Source.confirmed`), so a
    snapshot costs O(the pairs it leaves unconfirmed), not O(every pair of the source)."""

    __slots__ = ("alive_at", "base", "generation")

    def __init__(self, base: int) -> None:
        self.alive_at = _EPOCH
        self.generation = 0
        self.base = base


class _Source:
    """Per-source staleness: `generation` rises with each stale mark; `alive_at` is the last
    confirmation that all of the source's unchanged prices still hold (a live connection);
    `cells` the per-(fixture, bookmaker) confirmations of complete snapshots: `snapshots`
    counts them, `snapshot_at` / `snapshot_generation` are the latest one's time and generation
    (snapshot times of one source follow the engine clock: they do not go backwards)."""

    __slots__ = ("alive_at", "cells", "generation", "snapshot_at", "snapshot_generation", "snapshots")

    def __init__(self) -> None:
        self.generation = 0
        self.alive_at = _EPOCH
        self.cells: dict[FixtureKey, dict[str, _Cell]] = {}
        self.snapshots = 0
        self.snapshot_at = _EPOCH
        self.snapshot_generation = 0

    def cell(self, fixture: FixtureKey, bookmaker: str) -> _Cell:
        books = self.cells.get(fixture)
        if books is None:
            books = self.cells[fixture] = {}
        cell = books.get(bookmaker)
        if cell is None:
            cell = books[bookmaker] = _Cell(self.snapshots)  # confirmed by the snapshots after its birth
        return cell

    def confirmed(self, cell: _Cell) -> tuple[datetime, int]:
        """(time, generation) of the cell's last confirmation by a complete snapshot."""
        if self.snapshots > cell.base:
            return max(cell.alive_at, self.snapshot_at), max(cell.generation, self.snapshot_generation)
        return cell.alive_at, cell.generation


class _Entry:
    """Mutable state behind a quote (one per selection and bookmaker); shared by both indexes."""

    __slots__ = ("american", "cell", "feed", "generation", "ladder", "node", "price", "seen_at", "source",
                 "suspended", "updated_at")

    def __init__(self, update: OddsUpdate, feed: _Source, cell: _Cell, node: _Node) -> None:
        self.price = update.price
        self.american = update.american
        self.suspended = update.suspended
        self.ladder = update.ladder
        self.updated_at = update.received_at
        self.seen_at = update.received_at
        self.generation = feed.generation
        self.source = update.source
        self.feed = feed
        self.cell = cell
        self.node = node


_FIXED_BITS = 128


def _fixed(probability: float) -> int:
    """A probability in fixed point, units of 2^-128: exact for every probability >= 2^-75 (a
    float has 53 significant bits; smaller ones lose < 2^-128), so sums of them add and subtract
    without rounding: a book leaving the consensus takes out exactly what it put in."""
    return int(math.ldexp(probability, _FIXED_BITS))


_Fair = tuple[tuple[float, ...], tuple[int, ...]]
"""Fair probabilities of one book's complete market (in the market's outcome order) and the same
in fixed point (`_fixed`)."""


class _Node:
    """One bookmaker's quotes in one market, and what the market's derived state holds of them.

    `clean`: the derived state reflects this node; the next update queues it on `dirty` (the
    market's queue). `prices`: the complete market's prices in the derived outcome order, None
    when incomplete or suspended; `fair` memoises its de-vig per method (None: `OddsError`).
    `rungs`: outcome -> the price this node holds in the ladder. `until`: set while the node is
    usable (live), the time its first quote goes stale; `token` names its live heap entry.
    """

    __slots__ = ("bookmaker", "clean", "dirty", "fair", "outcomes", "prices", "rungs", "token", "until")

    def __init__(self, bookmaker: str, dirty: list[_Node]) -> None:
        self.bookmaker = bookmaker
        self.outcomes: dict[str, _Entry] = {}
        self.dirty = dirty
        self.clean = False
        self.prices: tuple[float, ...] | None = None
        self.fair: dict[str, _Fair | None] = {}
        self.rungs: dict[str, float] = {}
        self.until: datetime | None = None
        self.token = 0


class _Market:
    """One market of a fixture: bookmaker -> node, outcome -> number of books quoting it (the
    market's outcome set), the derived state (None until queried) and its queue of touched nodes."""

    __slots__ = ("books", "counts", "derived", "dirty")

    def __init__(self) -> None:
        self.books: dict[str, _Node] = {}
        self.counts: dict[str, int] = {}
        self.derived: _Derived | None = None
        self.dirty: list[_Node] = []

    def reset(self) -> None:
        """Forget the derived state (rebuilt on the next query): the outcome set or the books changed."""
        if self.derived is None:
            return
        self.derived = None
        self.dirty.clear()
        for node in self.books.values():
            node.clean, node.until, node.prices, node.fair = False, None, None, {}


class _Tally:
    """The consensus of one market under one de-vig method: bookmaker -> fair probabilities (and
    fixed point) of each live book that de-vigs, their exact fixed-point sums per outcome and
    their sorted values per outcome (for the lowest)."""

    __slots__ = ("fair", "method", "own", "ranked", "snapshot", "sums")

    def __init__(self, method: DevigMethod, width: int) -> None:
        self.method: DevigMethod = method
        self.sums = [0] * width
        self.ranked: list[list[float]] = [[] for _ in range(width)]
        self.fair: dict[str, tuple[float, ...]] = {}
        self.own: dict[str, tuple[int, ...]] = {}
        self.snapshot: Consensus | None = None

    def add(self, node: _Node) -> None:
        fair = _node_fair(node, self.method)
        if fair is None:
            return
        probs, fixed = fair
        self.fair[node.bookmaker], self.own[node.bookmaker] = probs, fixed
        self.sums = [s + x for s, x in zip(self.sums, fixed, strict=True)]
        for ranked, p in zip(self.ranked, probs, strict=True):
            insort(ranked, p)
        self.snapshot = None

    def remove(self, bookmaker: str) -> None:
        fixed = self.own.pop(bookmaker, None)
        if fixed is None:
            return
        self.sums = [s - x for s, x in zip(self.sums, fixed, strict=True)]
        for ranked, p in zip(self.ranked, self.fair.pop(bookmaker), strict=True):
            del ranked[bisect_left(ranked, p)]
        self.snapshot = None


def _node_fair(node: _Node, method: DevigMethod) -> _Fair | None:
    """The node's complete market de-vigged with `method` (memoised for its current prices)."""
    try:
        return node.fair[method]
    except KeyError:
        pass
    fair: _Fair | None = None
    if node.prices is not None:
        try:
            probs = tuple(no_vig_probabilities(node.prices, method))
            fair = (probs, tuple(_fixed(p) for p in probs))
        except OddsError:
            pass
    node.fair[method] = fair
    return fair


class _Derived:
    """Derived state of one market as of `checked_at` (see the module docstring): the sorted
    outcome set, the live nodes (complete, usable) with their staleness heap, the complete nodes
    held out as stale (`waiting`), the price ladder per outcome and the consensus per method.
    `epoch` / `live_epoch` are the book's counters when it was built / last re-checked."""

    __slots__ = ("checked_at", "epoch", "heap", "index", "ladder", "live", "live_epoch", "order", "seq",
                 "tallies", "waiting")

    def __init__(self, order: tuple[str, ...], epoch: int, live_epoch: int, now: datetime) -> None:
        self.order = order
        self.index = {o: i for i, o in enumerate(order)}
        self.epoch = epoch
        self.live_epoch = live_epoch
        self.checked_at = now
        self.live: dict[str, _Node] = {}
        self.waiting: dict[str, _Node] = {}
        self.heap: list[tuple[datetime, int, _Node]] = []
        self.seq = 0
        # outcome -> (ascending prices, their bookmakers): every non-suspended price, stale or not
        self.ladder: dict[str, tuple[list[float], list[str]]] = {o: ([], []) for o in order}
        self.tallies: dict[str, _Tally] = {}

    def hold(self, node: _Node, until: datetime) -> None:
        """Hold a live node until `until` (when its first quote ages out): its heap entry, the
        one its `token` names; superseded entries are dropped once they outnumber the live."""
        self.seq += 1
        node.until, node.token = until, self.seq
        heap = self.heap
        heappush(heap, (until, self.seq, node))
        if len(heap) > 2 * len(self.live) + 32:
            heap[:] = [(n.until, n.token, n) for n in self.live.values() if n.until is not None]
            heapify(heap)


def _leave(derived: _Derived, bookmaker: str, held: tuple[float, ...] | None) -> None:
    """Take a bookmaker's shares out of the consensus tallies (`held`: what they hold of it)."""
    if held is not None:
        for tally in derived.tallies.values():
            tally.remove(bookmaker)


class Consensus:
    """The no-vig consensus of one market under one de-vig method, as of the query
    (`OddsBook.consensus`; maths in bot/market/odds.py).

    `outcomes`: every outcome any bookmaker quotes in the market, sorted; the order of every
    tuple here. `fair`: bookmaker -> fair probabilities (each in [0, 1], summing to 1) of every
    book whose market is complete and usable now (all outcomes priced, none suspended or stale)
    and de-vigs without `OddsError`; unordered. `sums`: per outcome, the sum of those
    probabilities (float, correctly rounded); `lowest`: per outcome, the lowest of them (0.0
    when `fair` is empty), so (sums - lowest) / (count - 1) bounds every leave-one-out mean.
    Means are computed from exact fixed-point sums (2^-128 units), so they are the correctly
    rounded mean whatever the order books arrived in.

    Read-only (the fields are `Final`; one instance is shared by every strategy that asks until
    the consensus changes), a plain class: built on the hot path, where a frozen dataclass's
    `__init__` costs several times more (as `bot.types.OddsUpdate`).
    """

    __slots__ = ("fair", "fixed", "lowest", "outcomes", "sums")

    def __init__(self, outcomes: tuple[str, ...], fair: Mapping[str, tuple[float, ...]], sums: tuple[int, ...],
                 lowest: tuple[float, ...], own: Mapping[str, tuple[int, ...]]) -> None:
        self.outcomes: Final = outcomes
        self.fair: Final = fair
        self.sums: Final = tuple(math.ldexp(float(s), -_FIXED_BITS) for s in sums)
        self.lowest: Final = lowest
        self.fixed: Final = (sums, own)  # exact sums, and bookmaker -> its own share (fixed point)

    def __repr__(self) -> str:
        return f"Consensus(outcomes={self.outcomes}, fair={dict(self.fair)})"

    @property
    def count(self) -> int:
        """Books in the consensus (len(fair))."""
        return len(self.fair)

    def probability(self, outcome: int, exclude: str | None = None) -> float | None:
        """Mean fair probability of `outcomes[outcome]` over the `fair` books, leaving `exclude`
        out when it is one of them: (sum - own) / (n - 1). None when no book is left."""
        sums, own = self.fixed
        total, n = sums[outcome], len(self.fair)
        mine = own.get(exclude) if exclude is not None else None
        if mine is not None:
            total, n = total - mine[outcome], n - 1
        return total / (n << _FIXED_BITS) if n else None

    def mean(self, exclude: str | None = None) -> tuple[float, ...] | None:
        """`probability` of every outcome, in `outcomes` order; None when no book is left."""
        sums, own = self.fixed
        n, mine = len(self.fair), own.get(exclude) if exclude is not None else None
        if mine is not None:
            sums, n = tuple(s - m for s, m in zip(sums, mine, strict=True)), n - 1
        return tuple(s / (n << _FIXED_BITS) for s in sums) if n else None


# fixture -> market -> (bookmaker -> outcome -> entry, and the derived state)
_Tree = dict[FixtureKey, dict[MarketKey, _Market]]


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
        # Derived state (module docstring): a stale mark or a clear rebuilds it (`_epoch`), a
        # liveness confirmation re-checks the books held out as stale (`_live_epoch`).
        self._epoch = 0
        self._live_epoch = 0
        # The market last queried, by identity: strategies ask several questions of one market
        # in a row, and hashing its keys (nested dataclasses) costs more than the answer.
        self._recent: tuple[FixtureKey, MarketKey, _Market] | None = None

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
        node = entry.node
        if node.clean:  # a confirmation changes staleness even when the price stays
            node.clean = False
            node.dirty.append(node)
        if entry.price == event.price and entry.suspended == event.suspended and entry.ladder == event.ladder:
            return False
        entry.price = event.price
        entry.american = event.american
        entry.suspended = event.suspended
        entry.ladder = event.ladder
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
                node = entry.node
                if node.clean:
                    node.clean = False
                    node.dirty.append(node)
                if entry.price == event.price and entry.suspended == event.suspended and entry.ladder == event.ladder:
                    continue
                entry.price = event.price
                entry.american = event.american
                entry.suspended = event.suspended
                entry.ladder = event.ladder
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
        selection, bookmaker = update.selection, update.bookmaker
        feed = self._source(update.source)
        market = self._tree.setdefault(selection.fixture, {}).setdefault(selection.market, _Market())
        node = market.books.get(bookmaker)
        if node is None:
            node = market.books[bookmaker] = _Node(bookmaker, market.dirty)
            if market.derived is not None:
                market.dirty.append(node)
        elif node.clean:
            node.clean = False
            market.dirty.append(node)
        entry = books[bookmaker] = _Entry(update, feed, feed.cell(selection.fixture, bookmaker), node)
        node.outcomes[selection.outcome] = entry
        quoted = market.counts.get(selection.outcome, 0)
        market.counts[selection.outcome] = quoted + 1
        if not quoted:  # a new outcome: every book's completeness changes
            market.reset()

    def _move(self, entry: _Entry, update: OddsUpdate) -> None:
        """Another feed now prices this entry's bookmaker: it follows that feed's staleness."""
        feed = self._source(update.source)
        entry.source, entry.feed = update.source, feed
        entry.cell = feed.cell(update.selection.fixture, update.bookmaker)

    def _confirm(self, batch: OddsBatch) -> None:
        """A complete snapshot vouches for every quote of its source it did not withdraw: the
        source's snapshot stamp moves on; the `unconfirmed` pairs keep what earlier snapshots
        confirmed of them (fixed in their cells) and miss this one."""
        source = self._source(batch.source)
        for fixture, bookmaker in batch.unconfirmed:
            books = source.cells.get(fixture)
            if not books:
                continue
            for cell in books.values() if bookmaker is None else [c for c in (books.get(bookmaker),) if c]:
                cell.alive_at, cell.generation = source.confirmed(cell)
                cell.base = source.snapshots + 1
        source.snapshots += 1
        source.snapshot_at = max(source.snapshot_at, batch.received_at)
        source.snapshot_generation = source.generation
        self._live_epoch += 1

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

    def _status(self, status: FeedStatus) -> None:
        source = self._source(status.source)
        if status.stale:
            source.generation += 1
            self._epoch += 1
        elif status.connected and status.at > source.alive_at:
            source.alive_at = status.at
            self._live_epoch += 1

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
                slot = markets[market]
                books, counts = slot.books, slot.counts
                names = [cleared.bookmaker] if cleared.bookmaker is not None else list(books)
                lost = False
                for bookmaker in names:
                    node = books.get(bookmaker)
                    if node is None:
                        continue
                    outcomes = node.outcomes
                    for outcome in [o for o, e in outcomes.items() if e.source == cleared.source]:
                        del outcomes[outcome]
                        counts[outcome] -= 1
                        if not counts[outcome]:
                            del counts[outcome]
                        self._forget(Selection(fixture, market, outcome), bookmaker)
                        lost = True
                    if not outcomes:
                        del books[bookmaker]
                if lost:
                    removed.append((fixture, market))
                    slot.reset()
                if not books:
                    del markets[market]
            if not markets:
                del self._tree[fixture]
        if removed:
            self._recent = None  # its market may be gone
            self._unpin()  # `_by_id` may point at emptied dicts; rebuilt on the next updates
            if len(self._unindexed) > len(self._by_selection):  # drop forgotten selections
                self._unindexed = [s for s in self._unindexed if s in self._by_selection]
            source = self._sources.get(cleared.source)
            if source is not None:  # no quote of the source is left where it cleared: free the cells
                for fixture in fixtures:
                    if cleared.bookmaker is None:
                        source.cells.pop(fixture, None)
                    elif (cells := source.cells.get(fixture)) is not None:
                        cells.pop(cleared.bookmaker, None)
        return removed

    def _forget(self, selection: Selection, bookmaker: str) -> None:
        books = self._by_selection[selection]
        del books[bookmaker]
        if not books:
            del self._by_selection[selection]
            self._keys.pop(selection.key, None)

    # -- queries -----------------------------------------------------------------------------

    def _quote(self, bookmaker: str, entry: _Entry, now: datetime) -> Quote:
        source = entry.feed
        alive_at, generation = source.confirmed(entry.cell)
        stale = max(entry.generation, generation) < source.generation or (
            now - max(entry.seen_at, alive_at, source.alive_at) > self._stale_after
        )
        return Quote(
            bookmaker, entry.price, entry.american, entry.suspended, stale, entry.updated_at, entry.source,
            entry.ladder,
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

    def best_lay(self, selection: Selection) -> Quote | None:
        """The quote with the lowest layable price for a selection across bookmakers (exchanges:
        `Quote.lay_price`, the best available-to-lay; not suspended, not stale), or None. The
        mirror of `best`: a layer's liability per unit stake is lay price - 1, so lower is better."""
        layable = [q for q in self.quotes(selection).values() if q.layable]
        return min(layable, key=lambda q: q.lay_price or 0.0, default=None)

    def market(self, fixture: FixtureKey, market: MarketKey, bookmaker: str) -> dict[str, Quote]:
        """One bookmaker's full market (for de-vigging): outcome -> quote."""
        now = self._clock.now()
        slot = self._tree.get(fixture, {}).get(market)
        node = None if slot is None else slot.books.get(bookmaker)
        return {} if node is None else {o: self._quote(bookmaker, e, now) for o, e in node.outcomes.items()}

    def markets(self, fixture: FixtureKey) -> list[MarketKey]:
        """Markets of a fixture priced by at least one bookmaker."""
        return list(self._tree.get(fixture, {}))

    def bookmakers(self, fixture: FixtureKey, market: MarketKey) -> list[str]:
        """Bookmakers pricing a market of a fixture."""
        slot = self._tree.get(fixture, {}).get(market)
        return [] if slot is None else list(slot.books)

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

    # -- derived state (module docstring) ----------------------------------------------------

    def fair(
        self, fixture: FixtureKey, market: MarketKey, bookmaker: str, method: DevigMethod = "multiplicative"
    ) -> dict[str, float] | None:
        """One bookmaker's no-vig fair probabilities (outcome -> probability in [0, 1], summing
        to 1; bot.market.odds.no_vig_probabilities with `method`), or None unless its market is
        complete and usable now (it prices every outcome any book quotes there, at least two,
        none suspended or stale) and de-vigs without `OddsError`. Memoised per (fixture,
        market, bookmaker, method) until one of its quotes is updated or goes stale."""
        slot = self._slot(fixture, market)
        derived = None if slot is None else self._derived(slot)
        if derived is None or len(derived.order) < 2:
            return None
        node = derived.live.get(bookmaker)
        fair = None if node is None else _node_fair(node, method)
        return None if fair is None else dict(zip(derived.order, fair[0], strict=True))

    def consensus(
        self, fixture: FixtureKey, market: MarketKey, method: DevigMethod = "multiplicative"
    ) -> Consensus | None:
        """The market's no-vig consensus under `method` (see `Consensus`; its `fair` books are
        those for which `fair` gives probabilities), or None when the book holds no quote of the
        market or fewer than two outcomes. Kept incrementally: a query costs O(outcomes x books
        touched since the last one) plus a copy of the `fair` mapping when it changed."""
        slot = self._slot(fixture, market)
        derived = None if slot is None else self._derived(slot)
        if derived is None or len(derived.order) < 2:
            return None
        tally = derived.tallies.get(method)
        if tally is None:
            tally = derived.tallies[method] = _Tally(method, len(derived.order))
            for node in derived.live.values():
                tally.add(node)
        if tally.snapshot is None:
            tally.snapshot = Consensus(  # shared by every strategy: read-only copies
                derived.order, MappingProxyType(tally.fair.copy()), tuple(tally.sums),
                tuple(r[0] if r else 0.0 for r in tally.ranked), MappingProxyType(tally.own.copy()),
            )
        return tally.snapshot

    def quotes_between(
        self, fixture: FixtureKey, market: MarketKey, outcome: str, low: float, high: float
    ) -> list[tuple[str, float]]:
        """Usable quotes of one outcome priced from `low` to `high` (decimal odds, both
        included): (bookmaker, price), lowest price first. Costs O(log books + quotes in range)."""
        slot = self._slot(fixture, market)
        rungs = None if slot is None else self._derived(slot).ladder.get(outcome)
        if slot is None or rungs is None:
            return []
        prices, names = rungs
        lo, hi = bisect_left(prices, low), bisect_right(prices, high)
        if lo >= hi:
            return []
        now, books = self._clock.now(), slot.books
        out: list[tuple[str, float]] = []
        for i in range(lo, hi):
            entry = books[names[i]].outcomes[outcome]
            if self._fresh_until((entry,), now) is not None:
                out.append((names[i], prices[i]))
        return out

    def _slot(self, fixture: FixtureKey, market: MarketKey) -> _Market | None:
        """A market of the tree, or None if the book holds no quote of it."""
        recent = self._recent
        if recent is not None and recent[0] is fixture and recent[1] is market:
            return recent[2]
        slot = self._tree.get(fixture, {}).get(market)
        if slot is not None:
            self._recent = (fixture, market, slot)
        return slot

    def _derived(self, slot: _Market) -> _Derived:
        """A market's derived state brought up to the clock's now."""
        now = self._clock.now()
        derived = slot.derived
        if derived is None or derived.epoch != self._epoch or now < derived.checked_at:
            derived = self._build(slot, now)
        else:
            if slot.dirty:
                for node in slot.dirty:
                    node.clean = True
                    self._readmit(derived, node, now)
                slot.dirty.clear()
            if derived.live_epoch != self._live_epoch:  # a confirmation may revive a stale book
                derived.live_epoch = self._live_epoch
                for node in list(derived.waiting.values()):
                    self._readmit(derived, node, now)
            heap = derived.heap
            while heap and heap[0][0] < now:
                _, token, node = heappop(heap)
                if node.until is None or node.token != token:
                    continue  # superseded
                # Not dirty, so its prices, rungs and shares stand: only its freshness is news.
                # Most expiries are of quotes a later snapshot confirmed, which just move on.
                until = self._fresh_until(node.outcomes.values(), now)
                if until is None:
                    self._readmit(derived, node, now)  # stale now: it leaves the live books
                else:
                    derived.hold(node, until)
        derived.checked_at = now
        return derived

    def _build(self, slot: _Market, now: datetime) -> _Derived:
        slot.dirty.clear()
        derived = slot.derived = _Derived(tuple(sorted(slot.counts)), self._epoch, self._live_epoch, now)
        for node in slot.books.values():
            node.clean, node.until, node.rungs = True, None, {}
            self._admit(derived, node, now)
        return derived

    def _readmit(self, derived: _Derived, node: _Node, now: datetime) -> None:
        """Take a node out of the derived state and put it back as its quotes stand now."""
        bookmaker = node.bookmaker
        held = node.prices if node.until is not None else None  # what the consensus tallies hold of it
        if node.until is not None:
            node.until = None
            del derived.live[bookmaker]
        else:
            derived.waiting.pop(bookmaker, None)
        self._admit(derived, node, now, held)

    def _admit(self, derived: _Derived, node: _Node, now: datetime, held: tuple[float, ...] | None = None) -> None:
        """Put a node (not live, not waiting) into the derived state: its ladder rungs, and live
        (with its heap entry and consensus shares) or waiting or neither. `held`: the prices the
        consensus tallies hold of this node (it was live), None when they hold nothing of it. A
        node that stays live at the same prices keeps its shares: most re-admissions are a
        confirmation or a staleness re-check, and leaving the tallies untouched keeps their
        shared `Consensus` snapshots too."""
        bookmaker, rungs, ladder = node.bookmaker, node.rungs, derived.ladder
        for outcome, entry in node.outcomes.items():
            price = None if entry.suspended else entry.price
            old = rungs.get(outcome)
            if old == price:
                continue
            prices, names = ladder[outcome]
            if old is not None:
                i = names.index(bookmaker, bisect_left(prices, old))
                del prices[i], names[i]
            if price is None:
                del rungs[outcome]
            else:
                i = bisect_right(prices, price)
                prices.insert(i, price)
                names.insert(i, bookmaker)
                rungs[outcome] = price
        complete: list[float] = []
        for outcome in derived.order:
            quote = node.outcomes.get(outcome)
            if quote is None or quote.suspended or quote.price is None:
                node.prices, node.fair = None, {}
                _leave(derived, bookmaker, held)
                return
            complete.append(quote.price)
        prices_now = tuple(complete)
        if prices_now != node.prices:
            node.prices, node.fair = prices_now, {}
        until = self._fresh_until(node.outcomes.values(), now)
        if until is None:
            derived.waiting[bookmaker] = node
            _leave(derived, bookmaker, held)
            return
        derived.live[bookmaker] = node
        derived.hold(node, until)
        if held is not None and held == node.prices:
            return  # the tallies hold these prices already
        _leave(derived, bookmaker, held)
        for tally in derived.tallies.values():
            tally.add(node)

    def _fresh_until(self, entries: Iterable[_Entry], now: datetime) -> datetime | None:
        """The time the first of these quotes goes stale (usable while now <= it), or None if
        one is stale now; the staleness rule of `_quote`."""
        oldest: datetime | None = None  # the earliest last confirmation
        for entry in entries:
            source, cell = entry.feed, entry.cell
            generation = source.generation
            if source.snapshots > cell.base:  # `_Source.confirmed`, inline: the hot path of a query
                cell_at, cell_generation = max(cell.alive_at, source.snapshot_at), source.snapshot_generation
            else:
                cell_at, cell_generation = cell.alive_at, cell.generation
            if entry.generation < generation and cell_generation < generation:
                return None
            at = max(entry.seen_at, cell_at, source.alive_at)
            if oldest is None or at < oldest:
                oldest = at
        if oldest is None:
            return None
        until = oldest + self._stale_after
        return None if now > until else until

    def __len__(self) -> int:
        """Number of (selection, bookmaker) quotes held."""
        return sum(len(b) for b in self._by_selection.values())
