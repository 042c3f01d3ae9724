"""Builds a ready-to-run Engine from Settings: picks the clock, the feeds, the venue, the
instrument mapper and the results, and turns construction errors into one-line `BuildError`s.

Mode rules:
- `paper`: PaperVenue in process; accepts unmapped selections.
- `live`: AbpVenue (needs `abp.api_key`); every selection must map to an ABP instrument.
- `backtest`: like paper, and a replay feed is required.
A replay feed puts the trading clock on event time in every mode.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from loguru import logger

from bot.clock import Clock, ReplayClock, WallClock
from bot.config.settings import Settings
from bot.engine.core import Engine
from bot.engine.progress import ReplayProgress
from bot.feeds.base import Feed
from bot.ledger.store import Ledger
from bot.market.book import OddsBook
from bot.market.mapping import InstrumentMapper, MappingFile
from bot.sim.results import Results, load_football_data_results, load_nfl_results
from bot.types import Selection

log = logger.bind(stage="wiring")


class BuildError(Exception):
    """The bot cannot be built from this config; the message is one line naming field and fix."""


def _path(config_dir: Path, path: Path) -> Path:
    return path if path.is_absolute() else config_dir / path


class BookQuotes:
    """The paper venue's QuoteSource: what the OddsBook offers now for an order's selection."""

    def __init__(self, book: OddsBook) -> None:
        self._book = book

    def quotes(self, order: dict[str, Any]) -> dict[str, float]:
        key = (order.get("meta") or {}).get("selection")
        if not key:
            return {}
        selection = self._book.selection(key)
        if selection is None:
            try:
                selection = Selection.parse(key)
            except ValueError:
                return {}
        return {bk: q.price for bk, q in self._book.quotes(selection).items() if q.usable and q.price}


class PaperDriver:
    """Drives the in-process PaperVenue from the engine (PaperControl): it adopts the ledger's
    earlier orders and bets (as ABP would still hold them), its orders fill or expire as the
    clock moves, and its updates reach the executor in order."""

    def __init__(self, venue: Any, ledger: Ledger) -> None:
        self._venue = venue
        adopted = venue.restore(ledger.orders(), ledger.bets())
        if adopted:
            log.info("paper venue adopted {} orders of earlier runs from the ledger", adopted)

    async def tick(self) -> None:
        self._venue.advance()
        await self._venue.flush()

    async def settle(self, bet_id: int, status: Any) -> None:
        self._venue.settle(bet_id, status)
        await self._venue.flush()


def build_feeds(settings: Settings, clock: Clock, config_dir: Path) -> list[Feed]:
    cfg = settings.feeds
    feeds: list[Feed] = []
    if cfg.replay is not None:
        from bot.feeds.replay import ReplayFeed

        path = _path(config_dir, cfg.replay.path)
        if not path.is_file():
            raise BuildError(f"config error: feeds.replay.path: {path} does not exist; fix: point it at a recording")
        progress = ReplayProgress(enabled=settings.logging.progress)
        feeds.append(ReplayFeed(path, clock, fmt=cfg.replay.format, speed=cfg.replay.speed, progress=progress))
    if cfg.boltodds is not None:
        from bot.feeds.boltodds import BoltOddsFeed

        feeds.append(BoltOddsFeed(cfg.boltodds, clock))
    if cfg.oddsapi is not None:
        from bot.feeds.oddsapi import OddsApiFeed

        feeds.append(OddsApiFeed(cfg.oddsapi, clock))
    if settings.mqtt.enabled and settings.mqtt.feed.enabled:
        from bot.bus.feed import MqttFeed

        feeds.append(MqttFeed(settings.mqtt, clock, instance=settings.instance))
    if not feeds:
        raise BuildError("config error: feeds: no feed configured; fix: set feeds.replay, feeds.boltodds or feeds.oddsapi")
    return feeds


def load_results(settings: Settings, config_dir: Path) -> Results | None:
    cfg = settings.settlement
    found = []
    if cfg.nfl_results is not None:
        path = _path(config_dir, cfg.nfl_results)
        names = path.with_name("nfl_team_names.csv")
        if not names.is_file():
            names = Path(__file__).parents[1] / "data" / "nfl_team_names.csv"
        found += load_nfl_results(path, names)
    if cfg.football_data_results is not None:
        found += load_football_data_results(_path(config_dir, cfg.football_data_results))
    return Results(found) if found else None


async def build_engine(settings: Settings, *, config_dir: Path = Path.cwd()) -> Engine:
    """Construct every stage. Raises BuildError (one line) on a config the bot cannot run."""
    from bot.execution.executor import Executor
    from bot.risk.manager import RiskManager
    from bot.strategy.host import StrategyHost
    from bot.strategy.loader import StrategyLoadError

    live = settings.mode == "live"
    if settings.mode == "backtest" and settings.feeds.replay is None:
        raise BuildError("config error: feeds.replay: backtest mode needs a replay; fix: set feeds.replay.path")
    if live and settings.abp.api_key is None:
        raise BuildError("config error: abp.api_key: live mode needs an ABP key; fix: set BOT_ABP__API_KEY")

    clock: Clock = ReplayClock() if settings.feeds.replay is not None else WallClock()
    feeds = build_feeds(settings, clock, config_dir)
    state_dir = _path(config_dir, settings.state_dir)
    settings = settings.model_copy(update={"state_dir": state_dir})
    book = OddsBook(clock, stale_after=timedelta(seconds=settings.feeds.stale_after_seconds))

    mapping = None
    if settings.mapping.file is not None:
        try:
            mapping = MappingFile.load(_path(config_dir, settings.mapping.file))
        except ValueError as exc:
            raise BuildError(f"config error: mapping.file: {exc}; fix: correct the mapping file") from None

    ledger = Ledger(settings.db_path, clock=clock)
    venue_clock: Clock
    paper = None
    upkeep: list[Any] = []
    markets_fetch = None
    if live:
        from bot.execution.abp_venue import AbpVenue
        from bot.execution.upkeep import AbpUpkeep

        venue_clock = WallClock()  # ABP keeps real time: expiry is judged on its clock
        venue = AbpVenue(settings.abp, ledger=ledger, clock=venue_clock)
        upkeep = AbpUpkeep(venue, ledger).jobs()
        if settings.mapping.use_abp_markets:
            markets_fetch = venue.client.markets_rows
    else:
        from bot.sim.paper import PaperVenue

        venue_clock = clock
        venue = PaperVenue(clock=clock, quotes=BookQuotes(book), config=settings.paper)
        paper = PaperDriver(venue, ledger)
    mapper = InstrumentMapper(mapping, markets_fetch=markets_fetch, fixture_lookup=_oddspapi_lookup(settings))

    engine_ref: dict[str, Engine] = {}

    async def on_event(event: Any) -> None:
        await engine_ref["engine"].on_execution_event(event)

    executor = Executor(venue, ledger, venue_clock, settings.execution, on_event=on_event)
    risk = RiskManager(settings.risk, clock=clock, book=book, ledger=ledger,
                       requires_mapping=live, state_dir=state_dir)
    try:
        strategies = StrategyHost.load(settings.strategies, book=book, clock=clock, ledger=ledger,
                                       strategy_dirs=[_path(config_dir, d) for d in settings.strategy_dirs])
    except StrategyLoadError as exc:
        ledger.close()
        raise BuildError(f"config error: strategies: {exc}") from None
    bus = None
    if settings.mqtt.enabled:
        from bot.bus.bus import MqttBus

        bus = MqttBus(settings.mqtt, instance=settings.instance, clock=clock)
    engine = Engine(settings, clock=clock, ledger=ledger, book=book, feeds=feeds, mapper=mapper,
                    strategies=strategies, risk=risk, executor=executor, paper=paper,
                    results=load_results(settings, config_dir), bus=bus, upkeep=upkeep)
    engine_ref["engine"] = engine
    return engine


def _oddspapi_lookup(settings: Settings) -> Any:
    if settings.mapping.oddspapi_api_key is None:
        return None
    from bot.market.oddspapi import OddsPapiFixtures

    return OddsPapiFixtures(settings.mapping.oddspapi_base_url, settings.mapping.oddspapi_api_key).lookup
