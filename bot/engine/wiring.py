"""Builds a ready-to-run Engine from Settings: picks the clock, the feeds, the venue, the
instrument mapper and (paper) the settlement results, and turns construction errors into
one-line `BuildError`s (docs/architecture.md, "Pipeline", "Configuration").

Mode rules:
- `paper`: PaperVenue in process; accepts unmapped selections.
- `live`: AbpVenue (needs `abp.api_key`); every selection must map to an ABP instrument.
- `backtest`: like paper, and a replay feed is required.
- `mm.enabled` (paper and live; not in a backtest): the 55-Tech MM link (bot/execution/mm.py): its
  emergency stream and, with `mm.combined_exposure`, its exposure in the caps; its first poll
  and the stream start with the venue's start hooks, the poll runs with the venue's jobs.
A replay feed puts the trading clock on event time in every mode. The simulators (`bot.sim`) are
imported only when a paper venue is built (docs/architecture.md, "Simulators").
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from loguru import logger

from bot.clock import Clock, ReplayClock, WallClock
from bot.config.preflight import preflight
from bot.config.secrets import register_settings
from bot.config.settings import Settings
from bot.engine.core import Engine
from bot.engine.ports import PaperControl, Settler, StartHook, UpkeepJob
from bot.engine.progress import ReplayProgress
from bot.engine.runs import RunRefused, config_hash, plan_run, run_source
from bot.execution.bookmakers import BookmakerMap, BookmakerRoute
from bot.execution.currency import CurrencyRates
from bot.execution.venue import Venue
from bot.feeds.base import Feed
from bot.ledger.store import Ledger
from bot.market.book import OddsBook
from bot.market.closing import ClosingLines
from bot.market.mapping import FixtureLookup, InstrumentMapper, MappingFile, MarketsFetch
from bot.types import ExecutionEvent, VenueAlert

log = logger.bind(stage="engine")


if TYPE_CHECKING:
    import httpx

    from bot.execution.abp_client import AbpClient
    from bot.execution.mm import MmLink
    from bot.feeds.config import HistoryFeedConfig, HttpTransportOptions
    from bot.feeds.scraping import ScrapingRelay


class BuildError(Exception):
    """The bot cannot be built from this config; the message is one line per problem, naming the
    field and the fix."""


class RunRefusedError(BuildError):
    """The ledger already holds this run (bot/engine/runs.py); the message is one line."""


def _path(config_dir: Path, path: Path) -> Path:
    return path if path.is_absolute() else config_dir / path


def build_feeds(settings: Settings, clock: Clock, config_dir: Path) -> list[Feed]:
    cfg = settings.feeds
    feeds: list[Feed] = []
    relays: list[ScrapingRelay] = []  # the one Scraping API relay the HTTP feeds share, made on first use
    if cfg.replay is not None:
        from bot.feeds.replay import ReplayFeed

        path = _path(config_dir, cfg.replay.path)
        progress = ReplayProgress(enabled=settings.logging.progress)
        feeds.append(ReplayFeed(path, clock, fmt=cfg.replay.format, speed=cfg.replay.speed, progress=progress,
                                odds_format=cfg.replay.odds_format))
    if cfg.history is not None:
        feeds.append(_history_feed(cfg.history, clock, config_dir, ReplayProgress(enabled=settings.logging.progress)))
    if cfg.boltodds is not None:
        from bot.feeds.boltodds import BoltOddsFeed

        feeds.append(BoltOddsFeed(cfg.boltodds, clock))
    if cfg.oddsapi is not None:
        from bot.feeds.oddsapi import OddsApiFeed

        feeds.append(OddsApiFeed(cfg.oddsapi, clock, transport=_http_transport(settings, cfg.oddsapi, relays)))
    if cfg.oddspapi is not None:
        from bot.feeds.oddspapi import OddsPapiFeed

        feeds.append(OddsPapiFeed(cfg.oddspapi, clock, transport=_http_transport(settings, cfg.oddspapi, relays)))
    if cfg.olympus is not None:
        from bot.feeds.olympus import OlympusFeed

        feeds.append(OlympusFeed(cfg.olympus, clock, state_dir=_path(config_dir, settings.state_dir),
                                 transport=_http_transport(settings, cfg.olympus, relays)))
    if settings.mqtt.enabled and settings.mqtt.feed.enabled:
        from bot.bus.feed import MqttFeed

        feeds.append(MqttFeed(settings.mqtt, clock, instance=settings.instance))
    return feeds  # at least one: bot/config/preflight.py checked


def _http_transport(settings: Settings, options: HttpTransportOptions,
                    relays: list[ScrapingRelay]) -> httpx.AsyncBaseTransport | None:
    """The transport of an HTTP feed: None (direct) or through the Scraping API relay
    (bot/feeds/scraping.py), one relay shared by every feed so they share one request budget."""
    if options.transport == "direct":
        return None
    from bot.feeds.scraping import ScrapingRelay, transport_for

    if not relays:
        try:
            relays.append(ScrapingRelay(settings.scraping))
        except ValueError as exc:
            raise BuildError(str(exc)) from None
    return transport_for(options, relays[0])


def _history_feed(cfg: HistoryFeedConfig, clock: Clock, config_dir: Path, progress: ReplayProgress) -> Feed:
    from bot.feeds.history.base import detect, reader_class
    from bot.feeds.history.feed import HistoryFeed

    readers = []
    for given in cfg.paths:
        path = _path(config_dir, given)
        name = cfg.format if cfg.format != "auto" else detect(path)
        if name is None:  # preflight said so already; a race with the file changing
            raise BuildError(f"config error: feeds.history.paths: {path}: format unknown")
        options: dict[str, object] = {}
        if cfg.sport is not None and name == "oddsapi_changes":
            options["sport"] = cfg.sport
        elif name == "betfair_stream":
            options["depth"] = cfg.ladder_depth
        readers.append(reader_class(name)(path, **options))  # type: ignore[call-arg]
    return HistoryFeed(readers, clock, progress=progress)


@dataclass
class _VenueSide:
    """The venue and what comes with it: its clock, and either ABP's upkeep jobs, start hooks,
    markets and bookmaker route (live) or the paper venue's control and settlement (paper,
    backtest). `rates` converts venue amounts into `execution.currency`."""

    venue: Venue
    clock: Clock
    upkeep: list[UpkeepJob]
    rates: CurrencyRates
    markets_fetch: MarketsFetch | None = None
    paper: PaperControl | None = None
    settler: Settler | None = None
    start_hooks: list[StartHook] = field(default_factory=list)
    route: BookmakerRoute | None = None


def _live_venue(settings: Settings, ledger: Ledger, on_alert: Callable[[VenueAlert], Awaitable[None]]) -> _VenueSide:
    from bot.execution.abp_venue import AbpVenue
    from bot.execution.upkeep import AbpUpkeep

    venue_clock = WallClock()  # ABP keeps real time: expiry is judged on its clock
    venue = AbpVenue(settings.abp, ledger=ledger, clock=venue_clock)
    markets_fetch = venue.client.markets_rows if settings.mapping.use_abp_markets else None
    rates = CurrencyRates(settings.execution.currency)
    upkeep = AbpUpkeep(venue, ledger, rates=rates, on_alert=on_alert)
    jobs = upkeep.jobs()
    hooks: list[StartHook] = [upkeep.refresh_balances]  # exchange rates known before the first bet
    route = None
    if settings.abp.check_bookmakers:
        route = BookmakerRoute(BookmakerMap(settings.abp.bookmakers))
        start, job = _route_upkeep(route, venue.client, timedelta(seconds=settings.abp.recovery_interval_seconds))
        hooks.insert(0, start)
        jobs.append(job)
    return _VenueSide(venue, venue_clock, jobs, rates, markets_fetch=markets_fetch, start_hooks=hooks, route=route)


ROUTE_START_ATTEMPTS = 3  # a start without the books would reject every signal: retry briefly
ROUTE_RETRY = timedelta(seconds=10)  # while not loaded, the reload is tried this often


def _route_upkeep(route: BookmakerRoute, client: AbpClient, every: timedelta) -> tuple[StartHook, UpkeepJob]:
    """Load the reachable books at start (a few tries) and reload them every `every`, or every
    ROUTE_RETRY while no load has succeeded (signals are rejected BOOKMAKER_UNAVAILABLE meanwhile)."""
    last_load = [float("-inf")]

    async def load() -> None:
        last_load[0] = time.monotonic()
        if not await route.load(client):
            log.warning("ABP bookmakers not loaded ({}): signals are rejected BOOKMAKER_UNAVAILABLE until a reload "
                        "succeeds", route.error)

    async def start() -> None:
        for attempt in range(ROUTE_START_ATTEMPTS):
            await load()
            if route.loaded or attempt == ROUTE_START_ATTEMPTS - 1:
                return
            await asyncio.sleep(1.0)

    async def refresh() -> None:
        if not route.loaded or time.monotonic() - last_load[0] >= every.total_seconds():
            await load()

    return start, ("bookmakers_refresh", ROUTE_RETRY, refresh)


def _paper_venue(
    settings: Settings, config_dir: Path, ledger: Ledger, book: OddsBook, clock: Clock
) -> _VenueSide:
    from bot.sim.adapters import BookQuotes, PaperDriver
    from bot.sim.paper import PaperVenue
    from bot.sim.settlement import PaperSettler, configured_results

    try:
        results = configured_results(settings.settlement, config_dir)
    except ValueError as exc:
        fix = "point it at a generic results CSV (docs/reference/odds-csv.md), nflverse or football-data.co.uk"
        raise BuildError(f"config error: {exc}; fix: {fix}") from None
    venue = PaperVenue(clock=clock, quotes=BookQuotes(book), config=settings.paper)
    driver = PaperDriver(venue, ledger)
    # always built: with no results source it still names, and may void, what cannot settle
    settler = PaperSettler(results, ledger, driver, clock, settings.settlement)
    return _VenueSide(venue, clock, [], CurrencyRates(settings.execution.currency), paper=driver, settler=settler)


async def build_engine(settings: Settings, *, config_dir: Path | None = None, must_resume: bool = False) -> Engine:
    """Construct every stage; relative paths are taken from `config_dir` (default: the current
    directory). Raises BuildError (one line) on a config the bot cannot run, RunRefusedError when
    the ledger already holds this run (bot/engine/runs.py; `must_resume` is `bot run --resume`)."""
    from bot.execution.executor import Executor
    from bot.risk.checks import CheckLoadError
    from bot.risk.manager import RiskManager
    from bot.strategy.host import StrategyHost
    from bot.strategy.loader import StrategyLoadError

    config_dir = Path.cwd() if config_dir is None else config_dir
    register_settings(settings)  # masked in logs, MQTT payloads and the ledger's event log
    problems = preflight(settings, config_dir)  # the checks `bot config check` makes, one line each
    if problems:
        raise BuildError("\n".join(problems))
    live = settings.mode == "live"

    replayed = settings.feeds.replay is not None or settings.feeds.history is not None
    clock: Clock = ReplayClock() if replayed else WallClock()
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

    # a backtest's ledger is its own and thrown away or rerun: no fsync (bot/ledger/store.py)
    ledger = Ledger(settings.ledger_target, clock=clock, instance=settings.instance,
                    durable=settings.mode != "backtest")
    try:
        run = plan_run(ledger, settings, source=run_source(settings, config_dir), digest=config_hash(settings),
                       must_resume=must_resume)
    except RunRefused as exc:
        ledger.close()
        raise RunRefusedError(str(exc)) from None
    engine_ref: dict[str, Engine] = {}

    async def on_event(event: ExecutionEvent) -> None:
        await engine_ref["engine"].on_execution_event(event)

    try:
        side = _live_venue(settings, ledger, on_event) if live else _paper_venue(settings, config_dir, ledger, book,
                                                                                 clock)
    except BuildError:
        ledger.close()
        raise
    mapper = InstrumentMapper(mapping, markets_fetch=side.markets_fetch, fixture_lookup=_oddspapi_lookup(settings))

    executor = Executor(side.venue, ledger, side.clock, settings.execution, on_event=on_event, rates=side.rates,
                        commission=None if live else settings.paper.commission)
    mm = _mm_link(settings, clock, side, on_event)
    strategy_dirs = [_path(config_dir, d) for d in settings.strategy_dirs]
    try:
        risk = RiskManager(settings.risk, clock=clock, book=book, ledger=ledger, requires_mapping=live,
                           state_dir=state_dir, check_dirs=[config_dir, *strategy_dirs], route=side.route,
                           external=None if mm is None else mm.exposure)
        strategies = StrategyHost.load(settings.strategies, book=book, clock=clock, ledger=ledger,
                                       strategy_dirs=strategy_dirs)
    except CheckLoadError as exc:
        ledger.close()
        raise BuildError(f"config error: {exc}") from None
    except StrategyLoadError as exc:
        ledger.close()
        raise BuildError(f"config error: strategies: {exc}") from None
    run.record(ledger)  # last: a run is recorded only once everything could be built
    if mm is not None:
        risk.control.on_kill(mm.on_kill)
    bus = None
    if settings.mqtt.enabled:
        from bot.bus.bus import MqttBus

        bus = MqttBus(settings.mqtt, instance=settings.instance, clock=clock, state=ledger)
    alerts = None
    if settings.mode != "backtest":  # a backtest's simulated days notify no one
        from bot.engine.alerts import OperatorAlerts
        from bot.notify import Notifier

        notifier = Notifier(settings.notify, instance=settings.instance, zone=settings.risk.day_timezone)
        alerts = OperatorAlerts(notifier, clock, settings.risk.day_timezone,
                                lambda kind, payload: engine_ref["engine"]._publish(kind, payload))
    engine = Engine(settings, clock=clock, ledger=ledger, book=book, feeds=feeds, mapper=mapper,
                    strategies=strategies, risk=risk, executor=executor, paper=side.paper,
                    settler=side.settler, bus=bus, upkeep=side.upkeep, run=run, start_hooks=side.start_hooks,
                    venue_books=side.route, closing=ClosingLines(book, settings.clv), venue=side.venue,
                    alerts=alerts, stop_hooks=[] if mm is None else [mm.stop])
    engine_ref["engine"] = engine
    return engine


def _mm_link(settings: Settings, clock: Clock, side: _VenueSide,
             on_event: Callable[[ExecutionEvent], Awaitable[None]]) -> MmLink | None:
    """The MM link when `mm.enabled` (not in a backtest: its simulated days have no MM); its
    start and poll join the venue's start hooks and jobs (docs/reference/mm.md)."""
    if not settings.mm.enabled:
        return None
    if settings.mode == "backtest":
        log.warning("mm.enabled is ignored in a backtest")
        return None
    from bot.execution.mm import MmLink
    from bot.risk.external import ExternalExposure

    cfg = settings.mm
    exposure = ExternalExposure(clock, timedelta(seconds=cfg.stale_after_seconds)) if cfg.combined_exposure else None
    link = MmLink(cfg, exposure=exposure, on_alert=on_event, currency=settings.execution.currency, rates=side.rates,
                  clock=clock)
    side.start_hooks.append(link.start)
    side.upkeep.extend(link.jobs())
    return link


def _oddspapi_lookup(settings: Settings) -> FixtureLookup | None:
    if settings.mapping.oddspapi_api_key is None:
        return None
    from bot.market.oddspapi import OddsPapiFixtures

    return OddsPapiFixtures(settings.mapping.oddspapi_base_url, settings.mapping.oddspapi_api_key).lookup
