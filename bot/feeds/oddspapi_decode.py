"""OddsPapi v5 answers and `odds` frames -> feed events in ABP's own ids (docs/reference/oddspapi.md).

ABP executes on OddsPapi identifiers ("Fixture IDs and outcome IDs in ABP correspond directly to
OddsPapi identifiers", docs/reference/abp.md §4), so every `OddsUpdate` this module builds carries
its `Instrument(fixtureId, outcomeId, playerId)` and its bookmaker is the OddsPapi slug, which is
ABP's (docs/reference/oddspapi.md §1). The instrument mapper takes those ids as they are
(bot/market/mapping.py): no mapping file, no fixture lookup.

What the ids mean comes from OddsPapi's own catalogues (docs/reference/oddspapi.md §1, §3, §5):
- `GET /markets?sportId=`: outcomeId -> market (marketType, period, handicap, marketLength) and
  outcome name. An odds entry names only its outcomeId (and marketId); a line value lives in the
  market, never in the oddsId. An outcomeId the catalogue does not hold is dropped and counted
  ("unknown_outcome"): never guessed from the number.
- `GET /fixtures`: participants, tournament, start time (epoch seconds).

Participants by role (docs/reference/oddspapi.md §1): outcome "1" is participant 1, "2" is
participant 2, and a spread's `handicap` is stated from participant 1's side. Participant 1 is not
always the home team (NFL lists the visitor first); OddsPapi states no home flag, so the config
says where participant 1 is the away team (`participant1_away_sports`, default American football,
and `participant1_away_tournaments`). Our `FixtureKey` then has home = participant 2, outcome "1"
becomes "away", and the spread's line (our `MarketKey.line` is the HOME side's handicap) is the
negated handicap. A bookmaker whose fixture metadata says `participantsRotated` is not read: how
its prices are oriented is not documented, so its quotes of that fixture are withdrawn (counted as
"rotated_books"); `staleOdds` or `suspended` likewise withdraw that bookmaker's quotes of the
fixture ("stale_books").

Names (bot/types.py): sport = the tournament name ("NFL", "Serie A"); market types `1x2` with three
outcomes -> "1x2", with two (American football's winner) -> "moneyline", `moneyline` ->
"moneyline", `spreads` -> "spread", `totals` -> "total", any other type verbatim; periods `result`
-> "game", `fulltime` -> "game" in soccer (10) and "reg" elsewhere [inferred], others verbatim;
outcomes "1"/"2" -> home/away by role, "X" -> draw, Over/Under -> over/under, others lowercased.
Player markets (playerId != 0) are skipped: their names need `/players` (counted "skipped").

Prices are decimal (`price`); `active: false` or `marketActive: false` is a withdrawal (a
suspended update). Each REST snapshot is ONE complete `OddsBatch`: quotes it no longer lists are
withdrawn, a fixture that left the board is cleared, and a fixture whose odds could not be read
is `unconfirmed` (its previous quotes are kept but age out). Each WebSocket `odds` frame is one
incomplete `OddsBatch` (latest state of what it names). Bad input is dropped alone, logged and
counted (docs/architecture.md, "Invariants > Nothing lost, nothing silent").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from bot.feeds.base import FeedStats
from bot.feeds.normalise import LineError, to_line
from bot.market.odds import OddsError, feed_decimal
from bot.types import BookCleared, FixtureKey, Instrument, MarketKey, OddsBatch, OddsUpdate, Selection

SOURCE = "oddspapi"
SOCCER = 10
FIXTURE_ID = re.compile(r"[a-z]+\d{8}\d+")  # a sanity check only: the id is opaque (docs/reference/oddspapi.md §1)
SLUG = re.compile(r"[a-z0-9][a-z0-9._+-]{0,63}")  # lowercase, may contain . - + (docs/reference/oddspapi.md §1)
EPOCH_S_MIN, EPOCH_S_MAX = 946_684_800, 4_102_444_800  # 2000-01-01 .. 2100-01-01
FINISHED_STATUS_IDS = frozenset({2, 3})  # finished, cancelled [3rd]
_TYPES = {"moneyline": "moneyline", "spreads": "spread", "totals": "total"}
_SIDES = {"X": "draw", "Over": "over", "Under": "under"}


@dataclass(frozen=True, slots=True)
class OutcomeInfo:
    """One outcome of OddsPapi's `/markets` catalogue."""

    outcome_id: int
    market_id: int
    market_type: str
    period: str
    handicap: Decimal
    length: int
    name: str
    player_prop: bool


@dataclass(frozen=True, slots=True)
class FixtureInfo:
    """A fixture as the feed keys it: `p1_away` says participant 1 is the away team."""

    fixture_id: str
    sport_id: int
    tournament_id: int
    key: FixtureKey
    p1_away: bool
    finished: bool


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


class OddsPapiDecoder:
    """Catalogue, fixtures and the board of quotes already sent; see the module docstring.
    Never raises on bad input: bad pieces are logged and counted in `stats`."""

    def __init__(self, stats: FeedStats, *, p1_away_sports: Iterable[int] = (14,),
                 p1_away_tournaments: Iterable[int] = ()) -> None:
        self.stats = stats
        self.outcomes: dict[int, OutcomeInfo] = {}
        self.sports_loaded: set[int] = set()
        self.fixtures: dict[str, FixtureInfo] = {}
        self._p1_away_sports = frozenset(p1_away_sports)
        self._p1_away_tournaments = frozenset(p1_away_tournaments)
        # (fixtureId, outcomeId) -> (selection, instrument): one object per selection for the book
        self._selections: dict[tuple[str, int], tuple[Selection, Instrument] | None] = {}
        # fixtureId -> {(bookmaker, outcomeId): priced}: what the book holds of this feed
        self._board: dict[str, dict[tuple[str, int], bool]] = {}

    # -- catalogues ----------------------------------------------------------------------------

    def load_markets(self, rows: object, sport_id: int | None = None) -> int:
        """Index a `/markets` answer; returns the outcomes read. A bad row is dropped alone."""
        if not isinstance(rows, list):
            self.stats.bad("missing_field", "/markets answer is not a list", rows)
            return 0
        count = 0
        for row in rows:
            try:
                infos = self._market(row)
            except (KeyError, TypeError, ValueError, LineError) as exc:
                self.stats.bad("bad_market", str(exc), row, sparse=True)
                continue
            for info in infos:
                self.outcomes[info.outcome_id] = info
                count += 1
        if sport_id is not None:
            self.sports_loaded.add(sport_id)
        return count

    @staticmethod
    def _market(row: object) -> list[OutcomeInfo]:
        if not isinstance(row, dict):
            raise TypeError("market row is not an object")
        market_id, length = _int(row.get("marketId")), _int(row.get("marketLength"))
        market_type, period = _text(row.get("marketType")), _text(row.get("period"))
        if market_id is None or market_type is None or period is None:
            raise ValueError("marketId, marketType and period are required")
        handicap = to_line(row.get("handicap") or 0) or Decimal(0)
        outcomes = row.get("outcomes", row.get("oddsTypes"))  # OddsPapi: outcomes; ABP: oddsTypes
        if not isinstance(outcomes, list) or not outcomes:
            raise ValueError("outcomes must be a non-empty list")
        infos = []
        for item in outcomes:
            outcome_id = _int(item.get("outcomeId")) if isinstance(item, dict) else None
            name = _text(item.get("outcomeName")) if isinstance(item, dict) else None
            if outcome_id is None or name is None:
                raise ValueError(f"outcome needs outcomeId and outcomeName, got {item!r}")
            infos.append(OutcomeInfo(outcome_id, market_id, market_type.lower(), period.lower(), handicap,
                                     length or len(outcomes), name, row.get("playerProp") is True))
        return infos

    def load_fixture(self, row: object) -> FixtureInfo | None:
        """Read one `/fixtures` (or `/fixtures/odds`) row; None (counted) when it cannot be read.
        A fixture keeps its first key (docs/architecture.md, "A fixture keeps its first kickoff")."""
        try:
            info = self._fixture(row)
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            self.stats.bad("bad_fixture", str(exc), row, sparse=True)
            return None
        known = self.fixtures.get(info.fixture_id)
        if known is not None:
            info = FixtureInfo(info.fixture_id, known.sport_id, known.tournament_id, known.key, known.p1_away,
                               info.finished)
        self.fixtures[info.fixture_id] = info
        return info

    def _fixture(self, row: object) -> FixtureInfo:
        if not isinstance(row, dict):
            raise TypeError("fixture row is not an object")
        fixture_id = _text(row.get("fixtureId"))
        if fixture_id is None or not FIXTURE_ID.fullmatch(fixture_id):
            raise ValueError(f"fixtureId must look like id1000002361061419, got {row.get('fixtureId')!r}")
        sport, tournament = row.get("sport"), row.get("tournament")
        sport_id = _int(sport.get("sportId")) if isinstance(sport, dict) else _int(row.get("sportId"))
        if not isinstance(tournament, dict):
            tournament = row
        tournament_id = _int(tournament.get("tournamentId"))
        if sport_id is None or tournament_id is None:
            raise ValueError("sport.sportId and tournament.tournamentId are required")
        label = _text(tournament.get("tournamentName")) or (
            _text(sport.get("sportName")) if isinstance(sport, dict) else None) or str(sport_id)
        start = _int(row.get("startTime"))
        if start is None or not EPOCH_S_MIN <= start <= EPOCH_S_MAX:
            raise ValueError(f"startTime must be epoch seconds, got {row.get('startTime')!r}")
        holder = row.get("participants")
        if not isinstance(holder, dict):
            holder = row
        p1, p2 = _text(holder.get("participant1Name")), _text(holder.get("participant2Name"))
        if p1 is None or p2 is None or p1 == p2:
            raise ValueError("participant1Name and participant2Name must be two names")
        p1_away = sport_id in self._p1_away_sports or tournament_id in self._p1_away_tournaments
        home, away = (p2, p1) if p1_away else (p1, p2)
        status = row.get("status")
        status_id = _int(status.get("statusId")) if isinstance(status, dict) else None
        key = FixtureKey(label, home, away, datetime.fromtimestamp(start, UTC))
        return FixtureInfo(fixture_id, sport_id, tournament_id, key, p1_away, status_id in FINISHED_STATUS_IDS)

    # -- odds ----------------------------------------------------------------------------------

    def _selection(self, fixture: FixtureInfo, outcome_id: int) -> tuple[Selection, Instrument] | None:
        """The selection and instrument of an outcome of a fixture (cached); None when the
        outcome is not one the bot trades (a player market). Raises KeyError for an outcome the
        catalogue does not hold."""
        cache_key = (fixture.fixture_id, outcome_id)
        if cache_key in self._selections:
            return self._selections[cache_key]
        info = self.outcomes[outcome_id]
        found = None if info.player_prop else (self._build(fixture, info), Instrument(fixture.fixture_id, outcome_id, 0))
        self._selections[cache_key] = found
        return found

    @staticmethod
    def _build(fixture: FixtureInfo, info: OutcomeInfo) -> Selection:
        kind = info.market_type
        if kind == "1x2":
            type_ = "1x2" if info.length >= 3 else "moneyline"
        else:
            type_ = _TYPES.get(kind, kind)
        if info.period == "result":
            period = "game"
        elif info.period == "fulltime":
            period = "game" if fixture.sport_id == SOCCER else "reg"
        else:
            period = info.period
        first, second = ("away", "home") if fixture.p1_away else ("home", "away")
        outcome = {"1": first, "2": second}.get(info.name) or _SIDES.get(info.name) or info.name.lower()
        line: Decimal | None
        if type_ == "spread":  # stated from participant 1's side; ours is the home side's
            line = -info.handicap + 0 if fixture.p1_away else info.handicap
        elif type_ in ("1x2", "moneyline") and info.handicap == 0:
            line = None
        else:
            line = info.handicap if (info.handicap != 0 or type_ == "total") else None
        return Selection(fixture.key, MarketKey(type_, period, line), outcome)

    def _entries(self, fixture: FixtureInfo, odds: object, received: datetime,
                 withdrawn_books: Mapping[str, str], seen: dict[tuple[str, int], bool] | None) -> list[OddsUpdate]:
        """The updates of one fixture's `odds` object `{bookmaker: {oddsId: entry}}`."""
        if not isinstance(odds, dict):
            self.stats.bad("missing_field", "odds must be an object of bookmakers", odds)
            return []
        out: list[OddsUpdate] = []
        board = self._board.setdefault(fixture.fixture_id, {})
        for book, entries in odds.items():
            if not isinstance(book, str) or not SLUG.fullmatch(book):
                self.stats.bad("bad_bookmaker", f"not a bookmaker slug: {book!r}", book, sparse=True)
                continue
            if not isinstance(entries, dict):
                self.stats.bad("missing_field", f"{book}: odds must be an object of oddsIds", entries, sparse=True)
                continue
            withdraw = withdrawn_books.get(book)
            for odds_id, entry in entries.items():
                update = self._entry(fixture, book, odds_id, entry, received, withdraw is not None)
                if update is None:
                    continue
                instrument = update.instrument
                assert instrument is not None
                priced = not update.suspended
                board[(book, instrument.outcome_id)] = priced
                if seen is not None:
                    seen[(book, instrument.outcome_id)] = priced
                out.append(update)
        return out

    def _entry(self, fixture: FixtureInfo, book: str, odds_id: object, entry: object, received: datetime,
               withdraw: bool) -> OddsUpdate | None:
        if not isinstance(entry, dict):
            self.stats.bad("missing_field", f"{book}: odds entry is not an object", entry, sparse=True)
            return None
        outcome_id, player_id = _int(entry.get("outcomeId")), entry.get("playerId", 0)
        if outcome_id is None:
            self.stats.bad("missing_field", f"{book} {odds_id}: outcomeId must be an integer", entry, sparse=True)
            return None
        if player_id != 0:
            self.stats["skipped"] += 1  # a player market (see the module docstring)
            return None
        try:
            found = self._selection(fixture, outcome_id)
        except KeyError:
            self.stats.bad("unknown_outcome", f"{book}: outcomeId {outcome_id} is not in /markets", entry,
                           sparse=True)
            return None
        except (LineError, ValueError) as exc:
            self.stats.bad("bad_outcome", str(exc), entry, sparse=True)
            return None
        if found is None:
            self.stats["skipped"] += 1
            return None
        selection, instrument = found
        active, market_active = entry.get("active", True), entry.get("marketActive", True)
        if not isinstance(active, bool) or not isinstance(market_active, bool):
            self.stats.bad("bad_outcome", f"{book} {odds_id}: active/marketActive must be true or false", entry,
                           sparse=True)
            return None
        changed = epoch_ms(entry.get("changedAt"))
        feed_time = received if changed is None else datetime.fromtimestamp(changed / 1000, UTC)
        if withdraw or not active or not market_active:
            return OddsUpdate(SOURCE, book, selection, None, None, True, feed_time, received, {}, instrument)
        try:
            price, american = feed_decimal(entry.get("price"))
        except OddsError as exc:
            self.stats.bad("bad_outcome", f"{book} {odds_id}: {exc}", entry, sparse=True)
            return None
        return OddsUpdate(SOURCE, book, selection, price, american, False, feed_time, received, {}, instrument)

    def _withdrawn_books(self, meta: object) -> dict[str, str]:
        """Bookmakers of a fixture whose quotes are not to be used (see the module docstring)."""
        out: dict[str, str] = {}
        if not isinstance(meta, dict):
            return out
        for book, flags in meta.items():
            if not isinstance(flags, dict):
                continue
            if flags.get("participantsRotated") is True:
                out[book] = "rotated_books"
            elif flags.get("staleOdds") is True or flags.get("suspended") is True:
                out[book] = "stale_books"
        for why in out.values():
            self.stats[why] += 1
        return out

    def snapshot(self, answers: Sequence[object], unreadable: Iterable[str], received: datetime) -> OddsBatch:
        """ONE complete batch from a REST snapshot: `answers` are the `/fixtures/odds` bodies of
        every fixture followed (one object per fixture, odds of all configured bookmakers merged),
        `unreadable` the fixture ids whose odds could not be fetched (kept, unconfirmed)."""
        updates: list[OddsUpdate] = []
        unconfirmed: list[tuple[FixtureKey, str | None]] = []
        listed: set[str] = set(unreadable)
        for fixture_id in listed:
            known = self.fixtures.get(fixture_id)
            if known is not None:
                unconfirmed.append((known.key, None))
        for answer in answers:
            fixture = self.load_fixture(answer)
            if fixture is None:
                raw_id = answer.get("fixtureId") if isinstance(answer, dict) else None
                if isinstance(raw_id, str) and raw_id in self.fixtures:
                    listed.add(raw_id)
                    unconfirmed.append((self.fixtures[raw_id].key, None))
                continue
            assert isinstance(answer, dict)
            listed.add(fixture.fixture_id)
            seen: dict[tuple[str, int], bool] = {}
            withdrawn = self._withdrawn_books(answer.get("bookmakers"))
            updates.extend(self._entries(fixture, answer.get("odds", {}), received, withdrawn, seen))
            board = self._board.get(fixture.fixture_id, {})
            for (book, outcome_id), priced in list(board.items()):
                if (book, outcome_id) in seen or not priced:
                    continue
                found = self._selections.get((fixture.fixture_id, outcome_id))
                if found is not None:  # priced before, not listed now: withdrawn
                    updates.append(OddsUpdate(SOURCE, book, found[0], None, None, True, received, received, {},
                                              found[1]))
                board[(book, outcome_id)] = False
        cleared = []
        for fixture_id in [f for f in self._board if f not in listed]:
            del self._board[fixture_id]
            gone = self.fixtures.pop(fixture_id, None)
            if gone is not None:
                cleared.append(BookCleared(SOURCE, received, fixture=gone.key))
                for key in [k for k in self._selections if k[0] == fixture_id]:
                    del self._selections[key]
        return OddsBatch(SOURCE, received, tuple(updates), tuple(cleared), complete=True,
                         unconfirmed=tuple(unconfirmed))

    def frame_odds(self, payload: object, received: datetime) -> OddsBatch | None:
        """ONE incomplete batch from a WebSocket `odds` payload `{fixtureId, odds, bookmakers?}`
        of a known fixture; None when it holds nothing usable (bad parts counted)."""
        if not isinstance(payload, dict):
            self.stats.bad("missing_field", "odds payload is not an object", payload)
            return None
        fixture_id = payload.get("fixtureId")
        fixture = self.fixtures.get(fixture_id) if isinstance(fixture_id, str) else None
        if fixture is None:
            self.stats.bad("unknown_fixture", f"fixtureId {payload.get('fixtureId')!r} is not followed", payload,
                           sparse=True)
            return None
        updates = self._entries(fixture, payload.get("odds"), received,
                                self._withdrawn_books(payload.get("bookmakers")), None)
        return OddsBatch(SOURCE, received, tuple(updates)) if updates else None

    def payload_fixture(self, payload: object) -> str | None:
        """The fixtureId of an `odds` payload when it is a plausible id the decoder does not know
        yet (the feed then fetches the fixture once)."""
        if not isinstance(payload, dict):
            return None
        fixture_id = payload.get("fixtureId")
        if isinstance(fixture_id, str) and FIXTURE_ID.fullmatch(fixture_id) and fixture_id not in self.fixtures:
            return fixture_id
        return None


def epoch_ms(value: Any) -> int | None:
    """An epoch-milliseconds field, or None."""
    number = _int(value)
    return number if number is not None and EPOCH_S_MIN * 1000 <= number <= EPOCH_S_MAX * 1000 else None
