"""BoltOdds wire frames -> normalised feed events (docs/reference/boltodds.md §3-§9).

`BoltOddsDecoder.decode(frame, received_at)` turns one WebSocket text frame (one JSON object or
an array of them) into `OddsUpdate` / `BookCleared` / `FeedStatus` events. Its output depends
only on the frame and `received_at`; its caches (fixtures, selections, odds strings) only make
it fast. It never raises on bad input: bad frames, messages and outcomes are logged and counted
in `stats` and the rest of the frame is kept.

Range checks (docs/architecture.md, "Invariants > Nothing lost, nothing silent"): `odds` must be
finite American odds within the plausibility bounds of `bot.market.odds` (100 <= |odds| <=
AMERICAN_MAX) and `outcome_line` a finite line within +-`bot.feeds.normalise.LINE_MAX`. An outcome with
an impossible value (1e30, "inf", "nan", 0, "+50", a line of 1e30) is dropped alone and counted as
"bad_outcome"; in a replace set (`initial_state`, `game_update`) the dropped outcome is missing
from the set, so its previous quote is withdrawn (suspended), never left standing. A frame orjson
refuses (a `NaN` literal, 1e400) is read again by the standard library (`loads_lenient`), so one
poison number costs one outcome, not the frame. Both checks run only when a value is first seen:
prices and market keys are cached, so the hot path is unchanged (bench/feed_throughput.py).

`BoltOddsStream` adds the one piece of state the protocol needs: `initial_state`, `game_added`
and `game_update` REPLACE a (sportsbook, game) outcome set, so outcomes missing from the new set
are emitted as suspended updates. It is what the feeds use, and it delivers each frame's data
as one step (docs/architecture.md, Pipeline): a frame with more than one outcome update or with
a clear (an `initial_state` set, a `game_update`, a batched array; docs/reference/boltodds.md
§3) becomes ONE `OddsBatch` (`complete=False`: a frame is one (sportsbook, game) set, never the
whole feed), so no strategy sees half of it; a frame with a single update (a one-outcome
`line_update`) stays a plain `OddsUpdate`; pings stay `FeedStatus`.

Mapping to bot.types (docs/reference/boltodds.md §5-§7): sport = data.sport, home/away =
data.home_team/away_team, start_time = info.when read as US Eastern; market type from
outcome_name (quarter, half and set prefixes give the period); spread line = HOME handicap;
outcome home/away/over/under or target.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter

import orjson

from bot.feeds.base import FeedStats, loads_lenient
from bot.feeds.normalise import LineError, eastern_start, market_key, outcome_name
from bot.market.odds import OddsError, feed_american
from bot.types import BookCleared, FeedEvent, FeedStatus, FixtureKey, MarketKey, OddsBatch, OddsUpdate, Selection

SOURCE = "boltodds"
REPLACE_ACTIONS = frozenset({"initial_state", "game_added", "game_update"})
DATA_ACTIONS = REPLACE_ACTIONS | {"line_update"}
QUIET_ACTIONS = frozenset({"socket_connected", "subscription_updated"})
DEFAULT_MAX_FRAME_BYTES = 256 * 1024 * 1024  # batched frames reach tens of MiB (docs/reference/boltodds.md §1)

# (outcome_name, outcome_line, outcome_over_under, outcome_target) of one outcome
_Spec = tuple[object, object, object, object]
_spec_of = itemgetter("outcome_name", "outcome_line", "outcome_over_under", "outcome_target")
# (decimal price, American odds, suspended) of one `odds` value
_Priced = tuple[float | None, int | None, bool]
_SUSPENDED: _Priced = (None, None, True)  # odds None or "" (BoltOdds docs, Message Types > line_update)


class _Fixture:
    """Decoded once per (sportsbook, game): the fixture key, its feed ids, and the selection
    of each outcome key with the fields it was built from (a key whose fields change is
    rebuilt: keys are opaque merge ids, the meaning is in the fields; docs/reference/boltodds.md §7)."""

    __slots__ = ("feed_ids", "key", "selections")

    def __init__(self, key: FixtureKey, feed_ids: dict[str, str]) -> None:
        self.key = key
        self.feed_ids = feed_ids
        self.selections: dict[str, tuple[_Spec, Selection]] = {}


@dataclass(frozen=True, slots=True)
class Replace:
    """A full outcome set of one (sportsbook, fixture): the selections of its updates, in wire
    order."""

    bookmaker: str
    fixture: FixtureKey
    selections: list[Selection]
    at: datetime


# What changes `BoltOddsStream`'s replace state: a full outcome set, or a clear that forgets sets.
Change = Replace | BookCleared


class BoltOddsDecoder:
    """Decodes BoltOdds frames; see the module docstring. `stats` counts frames, messages,
    updates and bad input by kind."""

    def __init__(
        self,
        source: str = SOURCE,
        stats: FeedStats | None = None,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    ) -> None:
        self.source = source
        self.stats = stats if stats is not None else FeedStats(source)
        self.max_frame_bytes = max_frame_bytes
        self._fixtures: dict[tuple[object, ...], _Fixture] = {}
        # Seeded with the two suspended values, so the hot loop prices every outcome by one lookup.
        self._odds: dict[object, _Priced] = dict.fromkeys((None, ""), _SUSPENDED)
        # (outcome_name, line, type of line, target is the away team) -> MarketKey
        self._markets: dict[tuple[object, ...], MarketKey] = {}

    def decode(self, frame: str | bytes, received_at: datetime) -> list[FeedEvent]:
        """All events of one frame, in wire order (see the module docstring)."""
        return self.decode_with_changes(frame, received_at)[0]

    def decode_with_changes(
        self, frame: str | bytes, received_at: datetime
    ) -> tuple[list[FeedEvent], list[Change]]:
        """Events of one frame plus, in wire order, the full outcome sets and the clears it
        carried (for `BoltOddsStream`)."""
        stats = self.stats
        stats["frames"] += 1
        if len(frame) > self.max_frame_bytes:
            stats.bad("oversized", f"{len(frame)} > {self.max_frame_bytes} bytes", frame)
            return [], []
        try:
            parsed = orjson.loads(frame)
        except orjson.JSONDecodeError as exc:
            if frame in ("ping", b"ping"):  # a bare text keep-alive (docs/reference/boltodds.md §2)
                stats["pings"] += 1
                return [self._alive(received_at)], []
            try:  # NaN / Infinity / 1e400 literals: read them, the range checks drop their outcomes
                parsed = loads_lenient(frame)
            except ValueError:
                stats.bad("malformed_json", str(exc), frame)
                return [], []
        events: list[FeedEvent] = []
        changes: list[Change] = []
        for message in parsed if isinstance(parsed, list) else (parsed,):
            stats["messages"] += 1
            try:
                self._message(message, received_at, events, changes)
            except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
                stats.bad("missing_field", f"{type(exc).__name__}: {exc}", message)
        return events, changes

    def _alive(self, at: datetime) -> FeedStatus:
        return FeedStatus(self.source, at, connected=True, stale=False, detail="ping")

    def _message(
        self, message: object, received_at: datetime, out: list[FeedEvent], changes: list[Change]
    ) -> None:
        if not isinstance(message, dict):
            raise TypeError(f"a message must be an object, got {type(message).__name__}")
        action = message["action"]
        if action in DATA_ACTIONS:
            self._data(action, message, received_at, out, changes)
        elif action == "ping":
            self.stats["pings"] += 1
            out.append(self._alive(received_at))
        elif action in ("book_clear", "sport_clear", "game_removed"):
            cleared = self._cleared(action, message["data"], received_at)
            out.append(cleared)
            changes.append(cleared)
        elif action == "error":
            self.stats.bad("server_error", str(message.get("message", "")), message)
        elif action not in QUIET_ACTIONS:
            self.stats.bad("unknown_action", repr(action), message)

    def _cleared(self, action: str, data: dict, at: datetime) -> BookCleared:
        """book_clear / sport_clear / game_removed (docs/reference/boltodds.md §4, §9); `{}` where unset."""
        book = data.get("sportsbook")
        bookmaker = book if isinstance(book, str) and book else None
        if action == "book_clear":
            if bookmaker is None:
                raise KeyError("book_clear without data.sportsbook")
            return BookCleared(self.source, at, bookmaker=bookmaker)
        if action == "sport_clear":
            sport = data["sport"]
            if not isinstance(sport, str) or not sport:
                raise KeyError("sport_clear without data.sport")
            return BookCleared(self.source, at, bookmaker=bookmaker, sport=sport)
        if bookmaker is None:
            raise KeyError("game_removed without data.sportsbook")
        return BookCleared(self.source, at, bookmaker=bookmaker, fixture=self._fixture(data).key)

    def _fixture(self, data: dict) -> _Fixture:
        info = data["info"]
        sport, home, away, when = data["sport"], data["home_team"], data["away_team"], info["when"]
        cache_key = (data["sportsbook"], sport, home, away, when, data.get("universal_game_id"))
        fixture = self._fixtures.get(cache_key)
        if fixture is None:
            if not all(isinstance(v, str) and v for v in (sport, home, away, when)):
                raise TypeError("sport, home_team, away_team and info.when must be non-empty strings")
            ids = {"boltodds_game": str(data.get("game", ""))}
            for name, value in (
                ("universal_game_id", data.get("universal_game_id")),
                ("boltodds_event_id", info.get("id", info.get("game_id"))),
            ):
                if value is not None:
                    ids[name] = str(value)
            fixture = _Fixture(FixtureKey(sport, home, away, eastern_start(when)), ids)
            if len(self._fixtures) > 50_000:
                self._fixtures.clear()  # bound the cache on a long-running feed
            self._fixtures[cache_key] = fixture
        return fixture

    def _data(
        self,
        action: str,
        message: dict,
        received_at: datetime,
        out: list[FeedEvent],
        changes: list[Change],
    ) -> None:
        data = message["data"]
        bookmaker = data["sportsbook"]
        if not isinstance(bookmaker, str) or not bookmaker:
            raise TypeError("data.sportsbook must be a non-empty string")
        outcomes = data["outcomes"]
        if not isinstance(outcomes, dict):
            raise TypeError("data.outcomes must be an object")
        fixture = self._fixture(data)
        stamp = message.get("timestamp")
        feed_time = datetime.fromisoformat(stamp) if isinstance(stamp, str) else received_at
        if feed_time.tzinfo is None:
            raise ValueError(f"timestamp without a zone: {stamp!r}")
        # Locals for the loop below, which runs once per outcome (the decode hot path).
        selections = fixture.selections
        odds_cache = self._odds
        source, feed_ids = self.source, fixture.feed_ids
        new, spec_of, append = OddsUpdate, _spec_of, out.append
        chosen: list[Selection] = []  # the outcome set, for a replace
        choose = chosen.append
        for key, outcome in outcomes.items():
            try:
                spec = spec_of(outcome)
                cached = selections.get(key)
                if cached is None or cached[0] != spec:
                    cached = self._selection(fixture, key, spec)
                selection = cached[1]
                odds = outcome["odds"]
                price, american, suspended = odds_cache.get(odds) or self._price(odds)
            except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError, OddsError, LineError) as exc:
                self.stats.bad("bad_outcome", f"{bookmaker} {fixture.key} {key!r}: {type(exc).__name__}: {exc}",
                               outcome)
                continue
            append(new(source, bookmaker, selection, price, american, suspended, feed_time, received_at, feed_ids))
            choose(selection)
        self.stats["updates"] += len(chosen)
        if action in REPLACE_ACTIONS:
            changes.append(Replace(bookmaker, fixture.key, chosen, received_at))

    def _selection(self, fixture: _Fixture, key: str, spec: _Spec) -> tuple[_Spec, Selection]:
        """The selection of one outcome key (cached per fixture with the fields it came from)."""
        name, line, over_under, target = spec
        home, away = fixture.key.home, fixture.key.away
        if not isinstance(name, str) or not name:
            raise TypeError("outcome_name must be a non-empty string")
        if target is not None and not isinstance(target, str):
            raise TypeError("outcome_target must be a string or null")
        if over_under is not None and not isinstance(over_under, str):
            raise TypeError("outcome_over_under must be a string or null")
        outcome = outcome_name(target, over_under, home, away)
        if outcome == "unknown":
            outcome = str(key)  # no target, no over/under: the book's own outcome key
        market_id = (name, line, type(line), target == away)
        market = self._markets.get(market_id)
        if market is None:
            market = market_key(name, line, target, home, away)
            if len(self._markets) < 100_000:
                self._markets[market_id] = market
        cached = (spec, Selection(fixture.key, market, outcome))
        if len(fixture.selections) < 20_000:
            fixture.selections[key] = cached
        return cached

    def _price(self, odds: object) -> _Priced:
        """American odds (signed string or number) -> (decimal price, American int, False), cached.

        Raises:
            OddsError: not a price, or not a plausible one (e.g. "abc", "0", "+50", "1e30",
                "inf"; bounds in bot.market.odds).
        """
        price, american = feed_american(odds)
        priced = (price, american, False)
        if len(self._odds) < 100_000:
            self._odds[odds] = priced
        return priced


class BoltOddsStream:
    """A decoder plus the replace state: for each (sportsbook, fixture) the selections of its
    last full outcome set, so a replace suspends the ones that vanished (docs/reference/boltodds.md
    §9). `book_clear` / `sport_clear` / `game_removed` forget the matching state; both apply in
    wire order, so a set that follows a clear in the same frame is kept."""

    def __init__(self, decoder: BoltOddsDecoder | None = None) -> None:
        self.decoder = decoder or BoltOddsDecoder()
        self.stats = self.decoder.stats
        # (bookmaker, fixture) -> the selections of its last full set, in wire order. Books
        # re-send sets in the same order and the decoder reuses Selection objects, so an
        # unchanged set compares equal by identity at C speed; only a changed set is diffed.
        self._sets: dict[tuple[str, FixtureKey], list[Selection]] = {}

    def decode(self, frame: str | bytes, received_at: datetime) -> list[FeedEvent]:
        """Events of one frame: its data as one `OddsBatch` (with suspended updates for outcomes
        a replace dropped), or a lone `OddsUpdate` when the frame carries just one; then its
        `FeedStatus` pings (see the module docstring)."""
        events, changes = self.decoder.decode_with_changes(frame, received_at)
        if not changes:  # e.g. line_update frames: nothing to diff or forget
            if len(events) <= 1:
                return events  # one line update or a ping: no batch needed
            updates = [e for e in events if type(e) is OddsUpdate]
            if len(updates) == len(events):
                return [OddsBatch(self.decoder.source, received_at, tuple(updates))]
            return self._batch(events, [], received_at)
        suspended: list[OddsUpdate] = []
        for rep in changes:  # in wire order: a clear forgets only the sets that came before it
            if isinstance(rep, BookCleared):
                self._forget(rep)
                suspended = [u for u in suspended if not _clears(rep, u)]
                continue
            fresh = rep.selections
            old = self._sets.get((rep.bookmaker, rep.fixture))
            self._sets[(rep.bookmaker, rep.fixture)] = fresh
            if old is None or old == fresh:
                continue
            present = set(fresh)
            suspended.extend(
                OddsUpdate(self.decoder.source, rep.bookmaker, sel, None, None, True, rep.at, rep.at)
                for sel in dict.fromkeys(old)
                if sel not in present
            )
        return self._batch(events, suspended, received_at)

    def _batch(self, events: list[FeedEvent], suspended: list[OddsUpdate], at: datetime) -> list[FeedEvent]:
        """One `OddsBatch` of a frame's updates and clears (then its other events). A clear
        drops the updates before it in wire order that it forgets, so the batch, which applies
        clears first, ends where the wire order would."""
        updates: list[OddsUpdate] = []
        cleared: list[BookCleared] = []
        other: list[FeedEvent] = []
        for event in events:
            if type(event) is OddsUpdate:
                updates.append(event)
            elif isinstance(event, BookCleared):
                cleared.append(event)
                updates = [u for u in updates if not _clears(event, u)]
            else:
                other.append(event)
        updates += suspended
        if len(updates) == 1 and not cleared:
            return [updates[0], *other]
        if not updates and not cleared:
            return other
        return [OddsBatch(self.decoder.source, at, tuple(updates), tuple(cleared)), *other]

    def _forget(self, cleared: BookCleared) -> None:
        for bookmaker, fixture in list(self._sets):
            if (
                (cleared.bookmaker is None or bookmaker == cleared.bookmaker)
                and (cleared.fixture is None or fixture == cleared.fixture)
                and (cleared.sport is None or fixture.sport == cleared.sport)
            ):
                del self._sets[(bookmaker, fixture)]


def _clears(cleared: BookCleared, update: OddsUpdate) -> bool:
    """Whether `cleared` forgets the quote `update` sets (bot.market.book, `BookCleared`)."""
    fixture = update.selection.fixture
    return (
        update.source == cleared.source
        and (cleared.bookmaker is None or update.bookmaker == cleared.bookmaker)
        and (cleared.fixture is None or fixture == cleared.fixture)
        and (cleared.sport is None or fixture.sport == cleared.sport)
    )
