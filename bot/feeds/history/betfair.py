"""Betfair Exchange Stream API recordings (docs/reference/historical-data.md, "Betfair Exchange
Stream"): newline-delimited market change messages (`{"op":"mcm","pt":<epoch ms>,"mc":[...]}`),
the format of Betfair's historical data files (PRO, ADVANCED and BASIC tiers) and of a recorded
stream. Plain, gzip or bzip2, told by the first bytes.

State per market (Betfair Exchange Stream API, "Market Change Message"; the cache semantics of
betfairlightweight's `streaming/cache.py`, which flumine replays with):
- `marketDefinition` replaces the market's definition: status (OPEN, SUSPENDED, CLOSED), in-play,
  runners with their status (ACTIVE, WINNER, LOSER, REMOVED ...), BSP (`bsp`) once reconciled.
- `rc` runner changes are deltas: `atb` / `atl` / `trd` are `[price, size]` levels, the
  depth-indexed `batb` / `batl` / `bdatb` / `bdatl` are `[level, price, size]`; a size of 0 removes
  the level; an empty `trd` clears the traded ladder; `ltp` and `tv` are replaced. Other keys
  (`spn`, `spf`, `spb`, `spl`) are not read.
- `img: true` is a full image: the market's ladders are cleared before it applies (its
  definition stays until the image brings one). A runner appearing in `rc` twice in one message
  (an image split by ladder) is one runner change.
- A message without `mc`, or with `ct: "HEARTBEAT"`, is counted (`heartbeats`) and skipped;
  conflated changes (`con: true`) are applied as any delta and counted (`conflated`); a line of
  another stream (`op` other than `mcm`, e.g. the cricket score stream's `ccm`) is counted
  (`skipped`).

Output: one `OddsBatch` per message that changed a runner (source `betfair_stream`,
`complete=False`), at the message's `pt`, with one `OddsUpdate` per runner the message changed
(every runner of the market when it carries a definition): bookmaker `betfair-ex` (ABP's slug
for the Betfair exchange), `ladder` the runner's `bot.types.Ladder`: `back` the best
available-to-back levels (price, size), highest price first, from `atb`, else `bdatb`, else
`batb` (betfairlightweight's order); `lay` the best available-to-lay levels, lowest price first,
from `atl`, else `bdatl`, else `batl`; each cut to the reader's `depth` (default `DEPTH`, 3);
`last_traded` = `ltp`, `traded_volume` = `tv`. `price` is the best back price, None when nothing
is offered to back. `suspended` when the market is not OPEN or the runner not ACTIVE; a runner
with a lay but no back is not suspended (a quote one may lay, `Quote.layable`). A BASIC-tier
file has no ladder (only `ltp`): the runners of a market that never had one are quoted
suspended (their ladders carry `ltp` and `tv` alone) unless the reader's `ltp_when_no_ladder`
option quotes the last traded price.

Names (`Selection`): fixture = (sport from `eventTypeId`, home = the event's name (catalogue
`event.name`, else the definition's `eventName`, else its `venue`, else "event <eventId>"),
away = "field", start = `marketTime`), fixed when the market is first defined, so the WIN and
PLACE markets of one race share a fixture; market = `MarketKey(marketType in lower case)`
("win", "place", "match_odds" ...); outcome = the runner's name (catalogue `runnerName`, else
the definition's runner `name`, else the selection id as text; `" <hc>"` appended for a non-zero
handicap), fixed when the runner is first seen; `feed_ids` = `betfair_market_id`,
`betfair_selection_id`. Catalogues are read from `catalogues/<marketId>.json` beside the file
(the `catalogues` option names another folder): a `listMarketCatalogue` entry or a list of them.

Settlement: the definition that CLOSES a market gives each runner's WINNER / LOSER / REMOVED and
BSP, and the market's number of winners (`settlements()`; `read_settlements()` is a pass over the
definitions only). `bot.sim.results.betfair_results` turns them into `FixtureResult`s with
per-outcome statuses (`SETTLED`: WINNER -> WON, LOSER -> LOST, REMOVED -> VOID), which
`bot.sim.results.grade` settles bets with; `load_results` reads these files so, and `bot
backtest` takes a stream file as odds and results at once. (The simulators are not imported
here: the feeds stay apart from them, tests/test_layout.py.)

Bad input (bot/feeds/history/base.py): a line that is not JSON or not an object is
`malformed_line`; a message without a numeric `pt` is `bad_time`, one whose `pt` is before the
previous message's is `time_order` (applied at the previous time, so batches stay in order); a
market change without `id` or not an object is `bad_market`; changes of a market never defined
are `no_definition` (they cannot be named); a runner change with a bad level (a price outside
1.01..1000, a negative size, not numbers) is `bad_runner` (its levels before the bad one stay
applied); a catalogue that cannot be read is `bad_catalogue`. Each is counted, logged with the
line number and skipped; a damaged compressed file ends the reading with a `HistoryError`
naming the line reached.
"""

from __future__ import annotations

import dataclasses
import math
import re
import zlib
from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import orjson

from bot.feeds.base import FeedStats, loads_lenient
from bot.feeds.history.base import HistoryError, head_of, open_stream
from bot.types import FixtureKey, Ladder, MarketKey, OddsBatch, OddsUpdate, Selection, SettlementStatus

SOURCE = "betfair_stream"
BOOKMAKER = "betfair-ex"  # ABP's slug for the Betfair exchange (docs/reference/abp.md)
AWAY = "field"  # the away side of every Betfair fixture: the event's runners, not a second team
DOC = "docs/reference/historical-data.md, Betfair Exchange Stream"

SPORTS = {
    "1": "Soccer", "2": "Tennis", "3": "Golf", "4": "Cricket", "5": "Rugby Union", "6": "Boxing",
    "7": "Horse Racing", "8": "Motor Sport", "1477": "Rugby League", "3503": "Darts", "4339": "Greyhound Racing",
    "6422": "Snooker", "6423": "American Football", "7511": "Baseball", "7522": "Basketball", "7524": "Ice Hockey",
    "61420": "Australian Rules", "468328": "Handball", "998917": "Volleyball", "26420387": "Mixed Martial Arts",
}
"""Betfair `eventTypeId` -> sport (Betfair's event type names); others take the catalogue's name,
else "Betfair event type <id>"."""

SETTLED = {"WINNER": SettlementStatus.WON, "LOSER": SettlementStatus.LOST, "REMOVED": SettlementStatus.VOID,
           "REMOVED_VACANT": SettlementStatus.VOID}
"""A runner's status in a CLOSED definition -> how a back bet on it settles (others, e.g. PLACED
of an each-way market, do not settle from the stream)."""

MIN_PRICE, MAX_PRICE = 1.0, 1000.0  # Betfair's ladder is 1.01 .. 1000
DEPTH = 3  # levels per side in each quote's ladder, unless the reader is given another `depth`
_MCM = re.compile(rb'"op"\s*:\s*"mcm"')
_MARKET_ID = re.compile(r"\d+\.\d+")  # Betfair's market ids: 1.197931750
_DEPTH_BACK, _DEPTH_LAY = ("batb", "bdatb"), ("batl", "bdatl")  # the depth-indexed ladders
_TRAFFIC = ("messages", "skipped", "heartbeats", "conflated", "images", "boards", "updates")  # counters, not bad

RunnerKey = int | tuple[int, float]
"""A runner: its selection id, or (selection id, handicap) for a non-zero handicap (Asian lines)."""

Level = list[float]  # one level of a ladder as decoded: [price, size] or [position, price, size]
Levels = tuple[tuple[float, float], ...]  # (price, size) levels, best first


def is_betfair_stream(path: Path) -> bool:
    """Whether a file is a Betfair Exchange Stream recording (`BetfairStreamReader.sniff_head`)."""
    return BetfairStreamReader.sniff_head(head_of(path))


def _utc(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        when = datetime.fromisoformat(text)  # Python 3.11 reads a trailing Z
    except ValueError:
        return None
    return when.astimezone(UTC) if when.tzinfo is not None else when.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class RunnerBook:
    """A read-only snapshot of one runner (`BetfairStreamReader.book`): `back` / `lay` are the
    best levels (price, size) to the depth asked, best first (the full ladder `atb` / `atl`, else
    the depth-indexed `bdatb` / `batb`, `bdatl` / `batl`); `traded` every traded (price, size),
    by price; `ltp` the last traded price; `tv` the runner's traded volume."""

    selection_id: int
    handicap: float
    outcome: str
    status: str
    back: tuple[tuple[float, float], ...]
    lay: tuple[tuple[float, float], ...]
    traded: tuple[tuple[float, float], ...]
    ltp: float | None
    tv: float | None

    @property
    def best_back(self) -> tuple[float, float] | None:
        return self.back[0] if self.back else None

    @property
    def best_lay(self) -> tuple[float, float] | None:
        return self.lay[0] if self.lay else None


@dataclass(frozen=True, slots=True)
class RunnerResult:
    """One runner in a CLOSED definition: status WINNER / LOSER / REMOVED / ..., `bsp` the
    Betfair Starting Price when the market had one."""

    selection_id: int
    handicap: float
    outcome: str
    status: str
    bsp: float | None


@dataclass(frozen=True, slots=True)
class MarketSettlement:
    """A market's final definition (status CLOSED): its runners' results, `number_of_winners`
    (2, 3 ... for PLACE markets) and when it closed (the message's `pt`)."""

    market_id: str
    fixture: FixtureKey
    market: MarketKey
    number_of_winners: int | None
    closed_at: datetime
    runners: tuple[RunnerResult, ...]


def _batch_maker() -> Callable[[datetime, tuple[OddsUpdate, ...]], OddsBatch]:
    """`OddsBatch(SOURCE, at, updates)`, built without the frozen dataclass's `__init__`, whose
    `object.__setattr__` per field costs as much as the rest of a small message's quote (the
    hot path: bench/betfair_reader.py). Every field is set through its slot: `SOURCE`, the time,
    the updates, the others at their defaults (read from the dataclass, so a field added later
    with a default is set too; tests/feeds/test_betfair_stream.py compares with `OddsBatch(...)`)."""
    new = OddsBatch.__new__
    fields = dataclasses.fields(OddsBatch)
    names = [f.name for f in fields]
    if names[:3] != ["source", "received_at", "updates"]:
        return lambda at, updates: OddsBatch(SOURCE, at, updates)
    rest = []
    for f in fields[3:]:
        if f.default is not dataclasses.MISSING:
            rest.append((getattr(OddsBatch, f.name).__set__, f.default))
        else:  # a field without a plain default: the constructor's own way
            return lambda at, updates: OddsBatch(SOURCE, at, updates)
    set_source, set_at, set_updates = (getattr(OddsBatch, name).__set__ for name in names[:3])

    def make(at: datetime, updates: tuple[OddsUpdate, ...]) -> OddsBatch:
        made = new(OddsBatch)
        set_source(made, SOURCE)
        set_at(made, at)
        set_updates(made, updates)
        for set_field, default in rest:
            set_field(made, default)
        return made

    return make


_batch = _batch_maker()


def _ladder_maker() -> Callable[[Levels, Levels, float | None, float | None], Ladder]:
    """`Ladder(back, lay, last_traded, traded_volume)` through its slots, as `_batch_maker` builds
    a batch (one per changed runner on the hot path); the constructor itself should a field be
    added (tests/feeds/test_betfair_stream.py compares with `Ladder(...)`)."""
    names = [f.name for f in dataclasses.fields(Ladder)]
    if names != ["back", "lay", "last_traded", "traded_volume"]:
        return Ladder
    new = Ladder.__new__
    set_back, set_lay, set_ltp, set_tv = (getattr(Ladder, name).__set__ for name in names)

    def make(back: Levels, lay: Levels, ltp: float | None, tv: float | None) -> Ladder:
        made = new(Ladder)
        set_back(made, back)
        set_lay(made, lay)
        set_ltp(made, ltp)
        set_tv(made, tv)
        return made

    return make


_ladder = _ladder_maker()


class _Runner:
    """One runner's state: ladders as dicts (price -> size; position -> the decoded level), the
    prices of `atb` / `atl` kept sorted (ascending) beside them, and the quote's ladder as last
    built (`back` / `lay` / `ladder`: None once a change reaches the levels it shows)."""

    __slots__ = ("atb", "atl", "back", "back_prices", "batb", "batl", "bdatb", "bdatl", "bsp", "hc", "ids", "ladder",
                 "lay", "lay_prices", "ltp", "outcome", "selection", "sid", "status", "trd", "tv")

    def __init__(self, sid: int, hc: float, outcome: str, market_id: str) -> None:
        self.sid, self.hc, self.outcome = sid, hc, outcome
        self.status = "ACTIVE"
        self.bsp: float | None = None
        self.ids = {"betfair_market_id": market_id, "betfair_selection_id": str(sid)}
        self.selection: Selection | None = None
        self.clear()

    def clear(self) -> None:
        self.atb: dict[float, float] = {}
        self.atl: dict[float, float] = {}
        self.back_prices: list[float] = []  # the prices of `atb`, ascending
        self.lay_prices: list[float] = []  # the prices of `atl`, ascending
        self.trd: dict[float, float] = {}
        self.batb: dict[float, Level] = {}
        self.batl: dict[float, Level] = {}
        self.bdatb: dict[float, Level] = {}
        self.bdatl: dict[float, Level] = {}
        self.ltp: float | None = None
        self.tv: float | None = None
        self.back: Levels | None = None
        self.lay: Levels | None = None
        self.ladder: Ladder | None = None

    def make_ladder(self, depth: int) -> Ladder:
        """The quote's ladder to `depth` levels a side, rebuilding only the side a change reached."""
        back = self.back
        if back is None:
            back = self.back = _top_back(self, depth)
        lay = self.lay
        if lay is None:
            lay = self.lay = _top_lay(self, depth)
        ladder = self.ladder = _ladder(back, lay, self.ltp, self.tv)
        return ladder

    def snapshot(self, depth: int) -> RunnerBook:
        return RunnerBook(self.sid, self.hc, self.outcome, self.status, _top_back(self, depth), _top_lay(self, depth),
                          tuple(sorted(self.trd.items())), self.ltp, self.tv)


def _top_back(runner: _Runner, depth: int) -> Levels:
    """The best `depth` back levels, highest price first: `atb`, else `bdatb`, else `batb`."""
    if runner.atb:
        book = runner.atb
        return tuple([(price, book[price]) for price in runner.back_prices[:-depth - 1:-1]])
    levels = runner.bdatb or runner.batb
    return tuple([(levels[k][1], levels[k][2]) for k in sorted(levels)[:depth]]) if levels else ()


def _top_lay(runner: _Runner, depth: int) -> Levels:
    """The best `depth` lay levels, lowest price first: `atl`, else `bdatl`, else `batl`."""
    if runner.atl:
        book = runner.atl
        return tuple([(price, book[price]) for price in runner.lay_prices[:depth]])
    levels = runner.bdatl or runner.batl
    return tuple([(levels[k][1], levels[k][2]) for k in sorted(levels)[:depth]]) if levels else ()


class _Market:
    __slots__ = ("fixture", "id", "key", "ladders", "names", "runners", "settlement", "status", "winners")

    def __init__(self, market_id: str, fixture: FixtureKey, key: MarketKey, names: dict[RunnerKey, str]) -> None:
        self.id, self.fixture, self.key, self.names = market_id, fixture, key, names
        self.status = "OPEN"
        self.runners: dict[RunnerKey, _Runner] = {}
        self.ladders = False  # a ladder (not only ltp) was ever seen
        self.winners: int | None = None
        self.settlement: MarketSettlement | None = None

    def runner(self, sid: int, hc: float, name: object = None) -> _Runner:
        key: RunnerKey = (sid, hc) if hc else sid
        runner = self.runners.get(key)
        if runner is None:
            outcome = self.names.get(key) or (name if isinstance(name, str) and name else str(sid))
            if hc:
                outcome = f"{outcome} {hc:g}"
            runner = self.runners[key] = _Runner(sid, hc, outcome, self.id)
        return runner


def _apply_side(book: dict[float, float], prices: list[float], levels: list[Level], low: float,
                high: float) -> bool:
    """Apply `[price, size]` deltas to one side: `book` price -> size and `prices` its sorted
    prices (a size of 0 removes the level). True when a change lands within [low, high], the
    prices the side shows. Raises ValueError at a level that is not a price in 1.01..1000 with a
    size >= 0 (the levels before it stay applied)."""
    reached = False
    for level in levels:
        price, size = level[0], level[1]
        if not (MIN_PRICE < price <= MAX_PRICE and size >= 0):
            raise ValueError(f"level {level!r} is not a price in 1.01..1000 with a size >= 0")
        if size:
            if price not in book:
                insort(prices, price)
            book[price] = size
        elif book.pop(price, None) is not None:
            del prices[bisect_left(prices, price)]
        else:
            continue
        if low <= price <= high:
            reached = True
    return reached


def _prices(book: dict[float, float], levels: Iterable[Level]) -> None:
    """Apply `[price, size]` deltas (size 0 removes the price). Raises ValueError / TypeError /
    IndexError on a bad level (the levels before it stay applied)."""
    for level in levels:
        price, size = level[0], level[1]
        if not (MIN_PRICE < price <= MAX_PRICE and size >= 0):
            raise ValueError(f"level {level!r} is not a price in 1.01..1000 with a size >= 0")
        if size:
            book[price] = size
        else:
            book.pop(price, None)


def _depth(book: dict[float, Level], levels: Iterable[Level]) -> None:
    """Apply `[position, price, size]` deltas (size 0 empties the position)."""
    for level in levels:
        position, price, size = level[0], level[1], level[2]
        if size:
            if not (MIN_PRICE < price <= MAX_PRICE and size > 0):
                raise ValueError(f"level {level!r} is not a position, a price in 1.01..1000 and a size")
            book[position] = level
        else:
            book.pop(position, None)


class BetfairStreamReader:
    """Reads one Betfair Exchange Stream file (the module docstring). Options: `catalogues` (a
    folder of `<marketId>.json` market catalogues; default `catalogues/` beside the file),
    `ltp_when_no_ladder` (quote a BASIC-tier market's last traded price; default False), `depth`
    (the levels per side of each quote's `Ladder`, >= 1, 1 = the best back and lay only; default
    `DEPTH`; ValueError otherwise).
    `progress` is (bytes of the file read, file size). After (or during) `batches()`:
    `book(market_id)` the runners' ladders, `settlements()` the markets closed so far."""

    name: ClassVar[str] = "betfair_stream"

    def __init__(self, path: Path, catalogues: Path | None = None, ltp_when_no_ladder: bool = False,
                 depth: int = DEPTH) -> None:
        if type(depth) is not int or depth < 1:
            raise ValueError(f"depth {depth!r}: the ladder levels per side must be an integer >= 1")
        self.path = Path(path)
        self.depth = depth
        self.catalogues = Path(catalogues) if catalogues is not None else self.path.parent / "catalogues"
        self.ltp_when_no_ladder = ltp_when_no_ladder
        self.stats = FeedStats(SOURCE)
        self._markets: dict[str, _Market] = {}
        self._raw: BinaryIO | None = None
        self._done = 0
        self._size = 0
        self._line = 0

    @classmethod
    def sniff(cls, header: list[str]) -> bool:
        return False  # not a CSV format: told by `sniff_head`

    @classmethod
    def sniff_head(cls, head: bytes) -> bool:
        """True when a file's first bytes are a JSON object with `"op": "mcm"` in its first line."""
        head = head.lstrip()
        first = head.split(b"\n", 1)[0]
        return head[:1] == b"{" and _MCM.search(first) is not None

    @property
    def progress(self) -> tuple[int, int]:
        if self._raw is not None and not self._raw.closed:
            self._done = self._raw.tell()
        return self._done, self._size

    @property
    def markets(self) -> list[str]:
        """The market ids seen so far."""
        return list(self._markets)

    def book(self, market_id: str, depth: int = 3) -> dict[RunnerKey, RunnerBook]:
        """A read-only snapshot of a market's runners now: best back / lay levels (to `depth`),
        traded ladder, ltp, tv, status. Raises KeyError for a market not seen."""
        market = self._markets[market_id]
        return {key: runner.snapshot(depth) for key, runner in market.runners.items()}

    def market_status(self, market_id: str) -> str:
        """The market's status (OPEN, SUSPENDED, CLOSED) as its latest definition says."""
        return self._markets[market_id].status

    def settlements(self) -> list[MarketSettlement]:
        """The markets closed so far, by first appearance."""
        return [m.settlement for m in self._markets.values() if m.settlement is not None]

    def batches(self) -> Iterator[OddsBatch]:
        """One batch per message that changed a runner, in `pt` order (module docstring).
        Raises HistoryError: the file cannot be opened, or its compressed stream is damaged (after
        every batch before the damage)."""
        return self._read(ladders=True)

    def read_settlements(self) -> list[MarketSettlement]:
        """Reads the file for its definitions only (no ladder applied) and returns `settlements()`."""
        for _ in self._read(ladders=False):
            pass
        return self.settlements()

    # -- reading ---------------------------------------------------------------------------------

    def _bad(self, kind: str, why: str, frame: object, line: int) -> None:
        self.stats.bad(kind, f"{self.path}: line {line}: {why}", frame, sparse=True)

    def _read(self, *, ladders: bool) -> Iterator[OddsBatch]:
        """The reading loop (module docstring); the traffic counters reach `stats` when the reading
        ends (bad input at once)."""
        try:
            self._size = self.path.stat().st_size
            raw, stream = open_stream(self.path)
        except OSError as exc:
            raise HistoryError(f"{self.path}: cannot be read: {exc.strerror or exc}") from None
        self._raw, self._done = raw, 0
        markets: dict[str, _Market] = {}
        self._markets = markets
        messages = skipped = heartbeats = conflated = images = boards = quotes = 0
        loads, bad, batch, ltp_when_no_ladder = orjson.loads, self._bad, _batch, self.ltp_when_no_ladder
        depth = self.depth
        last_pt = -1
        at = datetime.fromtimestamp(0, UTC)
        n = 0
        try:
            with raw, stream:
                for line in stream:  # a damaged compressed stream raises here (below)
                    n += 1
                    try:
                        msg = loads(line)
                    except orjson.JSONDecodeError:
                        if not line.strip():
                            continue
                        try:
                            msg = loads_lenient(line)
                        except ValueError:
                            bad("malformed_line", "not JSON", line, n)
                            continue
                    if type(msg) is not dict:
                        bad("malformed_line", "not a JSON object", line, n)
                        continue
                    messages += 1
                    if msg.get("op") != "mcm":
                        skipped += 1
                        continue
                    changes = msg.get("mc")
                    if not changes or msg.get("ct") == "HEARTBEAT":
                        heartbeats += 1
                        continue
                    pt = msg.get("pt")
                    if type(pt) is not int:
                        if not isinstance(pt, float) or not math.isfinite(pt):  # a float is taken (truncated)
                            bad("bad_time", f"pt {pt!r} is not epoch milliseconds", line, n)
                            continue
                        pt = int(pt)
                    if pt != last_pt:
                        if pt < last_pt:
                            bad("time_order", f"pt {pt} is before the previous message's {last_pt}", line, n)
                        else:
                            try:
                                at = datetime.fromtimestamp(pt / 1000, UTC)
                            except (OverflowError, OSError, ValueError):
                                bad("bad_time", f"pt {pt} is not a time", line, n)
                                continue
                            last_pt = pt
                    if type(changes) is not list:
                        bad("bad_market", "mc is not a list", line, n)
                        continue
                    updates: list[OddsUpdate] = []
                    for change in changes:
                        if type(change) is not dict:
                            bad("bad_market", "a market change that is not an object", change, n)
                            continue
                        market_id = change.get("id")
                        market = markets.get(market_id)  # type: ignore[arg-type]
                        definition = change.get("marketDefinition")
                        if market is None:
                            if type(market_id) is not str:
                                bad("bad_market", "a market change without an id", change, n)
                                continue
                            if type(definition) is not dict:
                                bad("no_definition", f"market {market_id} changes before any definition", change, n)
                                continue
                            market = self._new_market(market_id, definition, at)
                        elif len(change) > 2 and change.get("img"):  # more than id and rc: look for the rarer keys
                            images += 1
                            for runner in market.runners.values():
                                runner.clear()
                            market.ladders = False
                        if len(change) > 2 and change.get("con"):
                            conflated += 1
                        rc = change.get("rc")
                        touched: Iterable[_Runner]
                        if definition is not None:
                            if type(definition) is dict:
                                self._define(market, definition, at, n)
                            else:
                                bad("bad_market", f"market {market_id}: a definition that is not an object", change, n)
                            if rc:
                                self._changes(market, rc, ladders, n)
                            touched = market.runners.values()
                        elif rc:
                            touched = self._changes(market, rc, ladders, n)
                        else:
                            continue
                        if not ladders:
                            continue
                        open_ = market.status == "OPEN"
                        laddered = market.ladders
                        for runner in touched:
                            ladder = runner.ladder
                            if ladder is None:
                                ladder = runner.make_ladder(depth)
                            if not open_ or runner.status != "ACTIVE":
                                price, suspended = None, True
                            elif laddered:  # a lay alone is a quote too: layable, not suspended
                                back = ladder.back
                                price, suspended = back[0][0] if back else None, False
                            else:  # a market that never had a ladder (the BASIC tier): ltp alone
                                price = runner.ltp if ltp_when_no_ladder else None
                                suspended = price is None
                            selection = runner.selection
                            if selection is None:
                                selection = runner.selection = Selection(market.fixture, market.key, runner.outcome)
                            updates.append(OddsUpdate(SOURCE, BOOKMAKER, selection, price, None, suspended, at, at,
                                                      runner.ids, None, ladder))
                    if updates:
                        boards += 1
                        quotes += len(updates)
                        yield batch(at, tuple(updates))
            self._done = self._size
        except (OSError, EOFError, zlib.error) as exc:
            raise HistoryError(f"{self.path}: line {n + 1}: the file is damaged and cannot be read on "
                               f"({type(exc).__name__}: {exc})") from None
        finally:
            self._line = n
            self._flush(messages, skipped, heartbeats, conflated, images, boards, quotes)

    def _flush(self, *values: int) -> None:
        for name, value in zip(_TRAFFIC, values, strict=True):
            if value:
                self.stats[name] += value

    def _changes(self, market: _Market, changes: object, ladders: bool, n: int) -> Iterable[_Runner]:
        """Apply one market's `rc`; returns the runners it changed (each once). The `atb` / `atl`
        deltas are applied inline (the hot path: bench/betfair_reader.py); a side's ladder is
        rebuilt only when a delta reaches the `depth` levels it shows: for the back side a price
        at or above the lowest shown when `depth` are shown (any price otherwise), the mirror
        for the lay side. The shown levels change only by such a delta: a level below them that
        rises into them does so because one of them went (a delta that reached them)."""
        if type(changes) is not list:
            self._bad("bad_runner", f"market {market.id}: rc is not a list", changes, n)
            return ()
        runners = market.runners
        depth = self.depth
        touched: list[_Runner] = []
        for change in changes:
            runner = None
            try:
                sid = change["id"]
                hc = change.get("hc")
                runner = runners.get((sid, hc) if hc else sid)
                if runner is None:
                    if type(sid) is not int:
                        raise ValueError(f"selection id {sid!r} is not an integer")
                    runner = market.runner(sid, hc or 0)
                touched.append(runner)
                if not ladders:
                    continue
                for name, value in change.items():
                    if name == "id":
                        continue
                    if name == "atb":
                        prices = runner.back_prices
                        floor = prices[-depth] if len(prices) >= depth else 0.0  # the lowest back shown
                        if _apply_side(runner.atb, prices, value, floor, 1001.0):
                            runner.back = runner.ladder = None
                        market.ladders = True
                    elif name == "atl":
                        prices = runner.lay_prices
                        ceiling = prices[depth - 1] if len(prices) >= depth else 1001.0  # the highest lay shown
                        if _apply_side(runner.atl, prices, value, 0.0, ceiling):
                            runner.lay = runner.ladder = None
                        market.ladders = True
                    elif name == "trd":
                        if value:
                            _prices(runner.trd, value)
                        else:
                            runner.trd.clear()
                    elif name == "ltp":
                        if value is not None and not MIN_PRICE < value <= MAX_PRICE:
                            raise ValueError(f"ltp {value!r} is not a price in 1.01..1000")
                        runner.ltp = value
                        runner.ladder = None
                    elif name == "tv":
                        runner.tv = value
                        runner.ladder = None
                    elif name in _DEPTH_BACK:
                        _depth(getattr(runner, name), value)
                        runner.back = runner.ladder = None
                        market.ladders = True
                    elif name in _DEPTH_LAY:
                        _depth(getattr(runner, name), value)
                        runner.lay = runner.ladder = None
                        market.ladders = True
            except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
                self._bad("bad_runner", f"market {market.id}: {exc}", change, n)
                if runner is not None:  # the levels before the bad one stay applied: rebuild both sides
                    runner.back = runner.lay = runner.ladder = None
        return touched if len(touched) < 2 else dict.fromkeys(touched)

    def _new_market(self, market_id: str, definition: dict[str, Any], at: datetime) -> _Market:
        catalogue = self._catalogue(market_id)
        event: dict[str, Any] = catalogue["event"] if isinstance(catalogue.get("event"), dict) else {}
        event_type = str(definition.get("eventTypeId") or "")
        cat_type: dict[str, Any] = catalogue["eventType"] if isinstance(catalogue.get("eventType"), dict) else {}
        sport = SPORTS.get(event_type) or cat_type.get("name") or f"Betfair event type {event_type or '?'}"
        home = (event.get("name") or definition.get("eventName") or definition.get("venue")
                or f"event {definition.get('eventId') or market_id}")
        start = _utc(definition.get("marketTime")) or _utc(catalogue.get("marketStartTime")) or at
        market_type = definition.get("marketType") or "unknown"
        names: dict[RunnerKey, str] = {}
        for runner in catalogue.get("runners") or ():
            if isinstance(runner, dict) and isinstance(runner.get("selectionId"), int) and runner.get("runnerName"):
                hc = runner.get("handicap") or 0
                names[(runner["selectionId"], hc) if hc else runner["selectionId"]] = str(runner["runnerName"])
        market = _Market(market_id, FixtureKey(str(sport), str(home), AWAY, start), MarketKey(str(market_type).lower()),
                         names)
        self._markets[market_id] = market
        return market

    def _define(self, market: _Market, definition: dict[str, Any], at: datetime, n: int) -> None:
        status = definition.get("status")
        if isinstance(status, str):
            market.status = status
        winners = definition.get("numberOfWinners")
        if isinstance(winners, int):
            market.winners = winners
        for rd in definition.get("runners") or ():
            try:
                sid, hc = rd["id"], rd.get("hc") or 0
                if type(sid) is not int:
                    raise ValueError(f"selection id {sid!r} is not an integer")
                runner = market.runner(sid, hc, rd.get("name"))
                runner.status = str(rd.get("status") or "ACTIVE")
                bsp = rd.get("bsp")
                runner.bsp = float(bsp) if isinstance(bsp, int | float) else None
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                self._bad("bad_runner", f"market {market.id}: a runner of the definition: {exc}", rd, n)
        if market.status == "CLOSED":
            market.settlement = MarketSettlement(
                market.id, market.fixture, market.key, market.winners, at,
                tuple(RunnerResult(r.sid, r.hc, r.outcome, r.status, r.bsp) for r in market.runners.values()))
            self.stats["settled"] += 1

    def _catalogue(self, market_id: str) -> dict[str, Any]:
        if _MARKET_ID.fullmatch(market_id) is None:  # a file name is made of it: Betfair's ids only
            return {}
        path = self.catalogues / f"{market_id}.json"
        if not path.is_file():
            return {}
        try:
            data = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            self.stats.bad("bad_catalogue", f"{path}: cannot be read ({exc})", "", sparse=True)
            return {}
        entries = data if isinstance(data, list) else [data]
        for entry in entries:
            if isinstance(entry, dict) and entry.get("marketId") == market_id:
                return entry
        self.stats.bad("bad_catalogue", f"{path}: holds no catalogue of market {market_id}", "", sparse=True)
        return {}
