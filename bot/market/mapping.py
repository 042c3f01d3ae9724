"""Feed selection -> ABP instrument (fixtureId, outcomeId, playerId), never guessed.

Sources, first match wins (docs/reference/oddspapi.md §4, docs/reference/abp.md §4):
1. `selections:` in the mapping file: an explicit instrument per `Selection.key`.
2. The instrument a feed sent with the selection's prices (`OddsUpdate.instrument`): a feed in
   ABP's own ids (OddsPapi v5, bot/feeds/oddspapi.py; "Fixture IDs and outcome IDs in ABP
   correspond directly to OddsPapi identifiers", docs/reference/oddspapi.md) needs no mapping
   file and no lookup. The engine hands every such update to `learn`.
3. A fixture id, from `fixtures:` in the mapping file (same sport and teams, kickoff within
   36 h, because feeds move the start time to the real kickoff) or, when an OddsPapi key is
   configured, from an OddsPapi v5 `/fixtures` lookup by teams and start time; combined with an
   outcome id, from `outcomes:` in the mapping file or ABP's `GET /markets` catalogue (looked
   up by market type, period, handicap and outcome name).
Anything unresolved returns None: the risk manager rejects the signal as UNMAPPED.

Mapping file (YAML)::

    fixtures:
      - {sport: NFL, home: Miami Dolphins, away: Washington Commanders,
         start_time: "2025-11-16T14:30:00Z", fixture_id: id1400003161000001}
    outcomes:    # our market keys -> OddsPapi outcome ids, per sport
      - {sport: NFL, market: moneyline, period: game, outcome: home, outcome_id: 141}
      - {sport: NFL, market: spread, period: game, line: -2.5, outcome: home, outcome_id: 14100}
    selections:  # explicit, highest precedence
      - {selection: "NFL|A vs B|2025-11-16T18:00Z|moneyline/game|home", fixture_id: ..., outcome_id: 141}
    catalogue:   # how our names translate to ABP /markets fields (for source 2)
      sport_ids: {NFL: 14}
      market_types: {moneyline: [moneyline, result], spread: [spreads, result], total: [totals, result]}
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from loguru import logger
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.types import FixtureKey, Instrument, OddsUpdate, Selection

FIXTURE_WINDOW = timedelta(hours=36)
OUTCOME_NAMES = {"home": "1", "away": "2", "draw": "X", "over": "Over", "under": "Under"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FixtureEntry(_Strict):
    sport: str
    home: str
    away: str
    start_time: datetime
    fixture_id: str
    participants_rotated: bool = False  # OddsPapi participant 1 is the away team


class OutcomeEntry(_Strict):
    sport: str
    market: str
    period: str = "game"
    line: Decimal | None = None
    outcome: str
    outcome_id: int
    player_id: int = 0


class SelectionEntry(_Strict):
    selection: str
    fixture_id: str
    outcome_id: int
    player_id: int = 0


class CatalogueHints(_Strict):
    sport_ids: dict[str, int] = {}
    market_types: dict[str, tuple[str, str]] = Field(
        default_factory=lambda: {
            "moneyline": ("moneyline", "result"),
            "spread": ("spreads", "result"),
            "total": ("totals", "result"),
            "1x2": ("1x2", "fulltime"),
        }
    )


class MappingFile(_Strict):
    fixtures: list[FixtureEntry] = []
    outcomes: list[OutcomeEntry] = []
    selections: list[SelectionEntry] = []
    catalogue: CatalogueHints = CatalogueHints()

    @classmethod
    def load(cls, path: Path) -> MappingFile:
        """Raises ValueError naming the file and the field when the file is invalid."""
        try:
            raw = yaml.safe_load(path.read_text()) or {}
            return cls.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            raise ValueError(f"mapping file {path}: {loc}: {err['msg']}") from None
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"mapping file {path}: {exc}") from None


MarketsFetch = Callable[[int], Awaitable[Sequence[dict[str, Any]]]]
FixtureLookup = Callable[[FixtureKey], Awaitable[tuple[str, bool] | None]]
"""fixture -> (OddsPapi fixtureId, participants rotated: participant 1 is the away team) or None."""


class _Unavailable(Exception):
    """A lookup failed (network, API error): the answer is unknown, not "unmapped"."""


class InstrumentMapper:
    """Resolves selections to ABP instruments; caches every answer (also the negative ones),
    but not a failed lookup: the next signal asks again.

    `markets_fetch(sport_id)` returns ABP `GET /markets?sportId=` rows (MarketResponse dicts);
    `fixture_lookup(fixture)` returns (OddsPapi fixtureId, participants rotated) or None.
    """

    def __init__(
        self,
        mapping: MappingFile | None = None,
        *,
        markets_fetch: MarketsFetch | None = None,
        fixture_lookup: FixtureLookup | None = None,
    ) -> None:
        self._file = mapping or MappingFile()
        self._markets_fetch = markets_fetch
        self._fixture_lookup = fixture_lookup
        self._explicit = {e.selection: e for e in self._file.selections}
        self._outcomes = {
            (o.sport, o.market, o.period, o.line, o.outcome): o for o in self._file.outcomes
        }
        self._fixtures: dict[tuple[str, str, str], list[FixtureEntry]] = {}
        for f in self._file.fixtures:
            self._fixtures.setdefault((f.sport, f.home, f.away), []).append(f)
        self._fixture_cache: dict[FixtureKey, str | None] = {}
        self._rotated: dict[FixtureKey, bool] = {}
        self._catalogues: dict[int, dict[tuple[str, str, Decimal, str], int]] = {}
        self._cache: dict[str, Instrument | None] = {}
        self._from_feed: dict[Selection, Instrument] = {}

    @property
    def empty(self) -> bool:
        return not (self._file.fixtures or self._file.selections or self._fixture_lookup or self._from_feed)

    def learn(self, updates: Sequence[OddsUpdate]) -> None:
        """Remember the instruments feeds sent with their prices (source 2 of the module
        docstring); updates without one cost one attribute read each."""
        known = self._from_feed
        for update in updates:
            instrument = update.instrument
            if instrument is not None:
                known[update.selection] = instrument

    async def resolve(self, selection: Selection) -> Instrument | None:
        from_feed = self._from_feed.get(selection)
        if from_feed is not None and not (self._explicit and selection.key in self._explicit):
            return from_feed
        key = selection.key
        if key not in self._cache:
            try:
                self._cache[key] = await self._resolve(selection)
            except _Unavailable:
                return None  # unmapped for now; not cached
            if self._cache[key] is None:
                logger.bind(stage="mapping").debug("unmapped selection {}", key)
        return self._cache[key]

    async def _resolve(self, selection: Selection) -> Instrument | None:
        explicit = self._explicit.get(selection.key)
        if explicit is not None:
            return Instrument(explicit.fixture_id, explicit.outcome_id, explicit.player_id)
        fixture_id = await self._fixture_id(selection.fixture)
        if fixture_id is None:
            return None
        m, fx = selection.market, selection.fixture
        entry = self._outcomes.get((fx.sport, m.type, m.period, m.line, selection.outcome))
        if entry is not None:
            return Instrument(fixture_id, entry.outcome_id, entry.player_id)
        outcome_id = await self._catalogue_outcome(selection)
        return None if outcome_id is None else Instrument(fixture_id, outcome_id, 0)

    async def _fixture_id(self, fixture: FixtureKey) -> str | None:
        if fixture in self._fixture_cache:
            return self._fixture_cache[fixture]
        found: str | None = None
        for entry in self._fixtures.get((fixture.sport, fixture.home, fixture.away), []):
            if abs(entry.start_time - fixture.start_time) <= FIXTURE_WINDOW:
                found = entry.fixture_id
                self._rotated[fixture] = entry.participants_rotated
                break
        if found is None and self._fixture_lookup is not None:
            try:
                match = await self._fixture_lookup(fixture)
            except Exception as exc:
                logger.bind(stage="mapping").warning("fixture lookup failed for {}: {}", fixture, exc)
                raise _Unavailable from exc  # not cached: try again next time
            if match is not None:
                found, self._rotated[fixture] = match
        self._fixture_cache[fixture] = found
        return found

    async def _catalogue_outcome(self, selection: Selection) -> int | None:
        hints = self._file.catalogue
        sport_id = hints.sport_ids.get(selection.fixture.sport)
        translated = hints.market_types.get(selection.market.type)
        name = OUTCOME_NAMES.get(selection.outcome)
        if self._markets_fetch is None or sport_id is None or translated is None or name is None:
            return None
        if sport_id not in self._catalogues:
            try:
                rows = await self._markets_fetch(sport_id)
            except Exception as exc:
                logger.bind(stage="mapping").warning("ABP /markets failed for sport {}: {}", sport_id, exc)
                raise _Unavailable from exc  # not cached: try again next time
            self._catalogues[sport_id] = _index_catalogue(rows)
        line = selection.market.line if selection.market.line is not None else Decimal(0)
        if self._rotated.get(selection.fixture, False):
            # OddsPapi states a handicap from participant 1's side; here participant 1 is away.
            name = {"1": "2", "2": "1"}.get(name, name)
            if selection.market.type == "spread":
                line = -line
        market_type, period = translated
        return self._catalogues[sport_id].get((market_type, period, line, name))


def _index_catalogue(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, str, Decimal, str], int]:
    """(marketType, period, handicap, outcomeName) -> outcomeId; ambiguous keys are dropped
    (fail closed rather than pick one)."""
    index: dict[tuple[str, str, Decimal, str], int] = {}
    ambiguous: set[tuple[str, str, Decimal, str]] = set()
    for row in rows:
        if row.get("playerProp"):
            continue
        for odds_type in row.get("oddsTypes") or row.get("outcomes") or []:
            key = (
                str(row.get("marketType")),
                str(row.get("period")),
                Decimal(str(row.get("handicap") or 0)),
                str(odds_type.get("outcomeName")),
            )
            if key in index and index[key] != odds_type.get("outcomeId"):
                ambiguous.add(key)
            index[key] = int(odds_type["outcomeId"])
    for key in ambiguous:
        del index[key]
    return index
