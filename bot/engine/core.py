"""The engine: wires feeds -> OddsBook -> strategies -> risk -> executor -> ledger on one asyncio
loop, owns the clock and the periodic jobs, and shuts down gracefully (docs/architecture.md,
"Pipeline").

Two clocks, each with one job (docs/architecture.md, "Invariants > Two clocks"): `clock` is the
trading clock (event time in a replay, wall time live) read by strategies, risk and the book;
the executor and venue run on the time the venue itself keeps (wall time for ABP, the trading
clock for the in-process paper venue), so order expiry means the same to both sides.

Collaborators are typed by what the engine needs of them (`bot.engine.ports`); simulators reach
the engine only through those ports (paper venue control, paper settlement), so the engine never
imports `bot.sim`.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from loguru import logger
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential, wait_random

from bot.bus.auth import CommandRefused
from bot.clock import Clock, ReplayClock, WallClock
from bot.config.settings import Settings
from bot.engine import systemd
from bot.engine.alerts import OperatorAlerts
from bot.engine.jobs import Jobs
from bot.engine.ports import (
    Bus,
    Execution,
    PaperControl,
    Risk,
    Settler,
    StartHook,
    StopHook,
    Strategies,
    UpkeepJob,
    VenueBooks,
)
from bot.engine.runs import RunPlan
from bot.feeds.base import Feed, FeedError
from bot.ledger.report import log_unresolved
from bot.ledger.store import OPEN_BET_STATUSES, Ledger
from bot.market.book import OddsBook
from bot.market.closing import ClosingLine, ClosingLines
from bot.market.mapping import InstrumentMapper
from bot.strategy.loader import StrategyLoadError
from bot.types import (
    Decision,
    ExecutionEvent,
    FeedEvent,
    Fill,
    Instrument,
    OddsBatch,
    OddsUpdate,
    OrderEvent,
    OrderIntent,
    Selection,
    Settlement,
    Signal,
    VenueAlert,
)

log = logger.bind(stage="engine")
CHECKPOINT_EVERY = 100  # feed events between run checkpoints (a resume after a kill re-checks these)


@dataclass
class EngineStats:
    events: int = 0
    odds_updates: int = 0
    signals: int = 0
    approved: int = 0
    rejected: int = 0
    orders_submitted: int = 0
    errors: int = 0
    settled: int = 0
    by_reason: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    failed: list[str] = field(default_factory=list)  # one line per feed failure: `bot run` exits 1


class Engine:
    """One running bot. Build it with `bot.engine.wiring.build_engine(settings)`.

    All collaborators are injected so tests can run the real ones over loopback.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock,
        ledger: Ledger,
        book: OddsBook,
        feeds: Sequence[Feed],
        mapper: InstrumentMapper,
        strategies: Strategies,
        risk: Risk,
        executor: Execution,
        paper: PaperControl | None = None,
        settler: Settler | None = None,
        bus: Bus | None = None,
        upkeep: Sequence[UpkeepJob] = (),
        run: RunPlan | None = None,
        start_hooks: Sequence[StartHook] = (),
        venue_books: VenueBooks | None = None,
        closing: ClosingLines | None = None,
        venue: object | None = None,
        alerts: OperatorAlerts | None = None,
        stop_hooks: Sequence[StopHook] = (),
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.ledger = ledger
        self.book = book
        self.feeds = list(feeds)
        self.mapper = mapper
        self.strategies = strategies
        self.risk = risk
        self.executor = executor
        self.paper = paper
        self.settler = settler
        self.bus = bus
        self.upkeep = list(upkeep)
        self.start_hooks = list(start_hooks)
        self.stop_hooks = list(stop_hooks)
        self.venue_books = venue_books  # live: orders name the venue's slugs for the signal's books
        self.closing = closing  # bets' closing lines, captured at kickoff (bot/market/closing.py)
        self.venue = venue  # for its connection state only (`venue_state`)
        self.alerts = alerts  # operator notifications (bot/engine/alerts.py); None in a backtest
        self.web: Any = None  # the dashboard and API server while it runs (bot/web/, `web.enabled`)
        self.feed_activity: dict[str, list[Any]] = {}  # source -> [events, clock time of the last]
        self.fills = 0
        self.replay = isinstance(clock, ReplayClock)
        self.stats = EngineStats()
        self.jobs = Jobs(clock)
        # the venue's upkeep runs on wall time even in a replay: ABP keeps real time (a replay run
        # live must not poll ABP on every event)
        self.venue_jobs = Jobs(WallClock())
        self._stop = asyncio.Event()
        self._feed_tasks: list[asyncio.Task[None]] = []
        self._placing: set[asyncio.Task[list[str]]] = set()
        self._started = False
        self.run_plan = run
        self._warmup = run.warmup_events if run is not None else 0
        self._trading = True  # False while a resumed replay rebuilds the book (warm-up)
        self._handled = self._warmup  # feed events fully handled (the run's checkpoint)
        self._in_place = False
        self._finished = False
        self._feeds_down: dict[str, str] = {}  # live feed -> why, while it waits for its restart
        self.progress: Callable[[int, int], None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Reconcile before anything new leaves, then start strategies, bus and jobs."""
        if self.bus is not None:
            await self.bus.start(self)
        await self.executor.start()  # every non-final order reconciled first (exactly once)
        self._watch_open_bets()
        for hook in self.start_hooks:  # live: the reachable bookmakers, the exchange rates
            try:
                await hook()
            except Exception:  # risk fails closed on what a hook could not load
                self.stats.errors += 1
                log.exception("start step {} failed; trading goes on, failing closed where it matters",
                              getattr(hook, "__name__", hook))
        self.risk.control.on_halt(self._on_halt)
        if self.alerts is not None:
            self.risk.on_breaker_open(self.alerts.breaker_opened)
            await self.alerts.notifier.start()
        await self.strategies.start()
        self._register_jobs()
        if not self.replay:
            self.jobs.start_live()
        if self.upkeep or systemd.watchdog_interval() is not None:
            self.venue_jobs.start_live()
        self._started = True
        if self.settings.web.enabled:
            await self._start_web()
        if self.alerts is not None:
            self.alerts.started(self.settings.mode, f"feeds: {', '.join(f.name for f in self.feeds)}")
        systemd.notify("READY=1")
        self._publish_state()
        log.info("engine started: mode={} feeds={} replay={}", self.settings.mode,
                 [f.name for f in self.feeds], self.replay)

    def request_stop(self, why: str = "stop requested") -> None:
        """Ask the engine to stop (signal handlers call this); idempotent."""
        if not self._stop.is_set():
            log.warning("stopping: {}", why)
            self._stop.set()
            for task in self._feed_tasks:
                task.cancel()

    async def run(self) -> EngineStats:
        """Run until the feeds end (replay) or a stop is requested; then shut down cleanly.

        Each feed runs under `_supervise` (docs/architecture.md, "Invariants > Nothing lost,
        nothing silent"): a live feed that raises, or returns, is restarted with jittered
        exponential backoff (`feeds.restart_initial_seconds` doubling up to
        `feeds.restart_max_seconds`), every failure logged as an error and published as an
        `alert`. A finite feed (a replay, `bot.feeds.base.Feed`) that raises is not restarted: its
        one-line reason joins `stats.failed` and the replay is not finished (no end-of-replay
        settlement; the run row stays resumable). A live feed still down when the run stops
        joins `stats.failed` too. `bot run` exits 1 with the lines of `stats.failed`.
        """
        await self.start()
        try:
            if self._warmup:
                log.warning("resuming run {}: replaying {} events without trading first",
                            self.run_plan.row.resumed_from if self.run_plan else "?", self._warmup)
            self._feed_tasks = [asyncio.create_task(self._supervise(f), name=f.name) for f in self.feeds]
            stop_wait = asyncio.create_task(self._stopped())
            pending = set(self._feed_tasks)
            while pending and not self._stop.is_set():
                done, pending = await asyncio.wait(pending | {stop_wait}, return_when=asyncio.FIRST_COMPLETED)
                pending.discard(stop_wait)
                for task in done - {stop_wait}:
                    if not task.cancelled() and task.exception() is not None:  # a supervisor bug
                        self._feed_failed(task.get_name(), task.exception() or Exception(), None)
            stop_wait.cancel()
            self.stats.failed.extend(f"feed {name} was down when the run stopped: {why}"
                                     for name, why in self._feeds_down.items())
            if self.replay and not self._stop.is_set() and not self.stats.failed:
                await self.finish_replay()
                self._finished = True
        finally:
            await self.shutdown()
        return self.stats

    async def _supervise(self, feed: Feed) -> None:
        """Run `feed` into the pipeline: once if it is finite, else restarted with backoff
        until the run stops (see `run`). Never raises but CancelledError."""
        if getattr(feed, "finite", False):
            try:
                await feed.run(self._handle)
            except Exception as exc:  # noqa: BLE001 - every failure of a replay ends the run non-zero
                self._feed_failed(feed.name, exc, None)
            return
        cfg = self.settings.feeds
        retrying = AsyncRetrying(
            wait=wait_exponential(multiplier=cfg.restart_initial_seconds, max=cfg.restart_max_seconds)
            + wait_random(0, cfg.restart_initial_seconds),  # initial x 2**n plus up to initial of jitter
            retry=retry_if_exception_type(Exception),  # not CancelledError: a stop ends the feed
            before_sleep=lambda state: self._feed_failed(feed.name, state.outcome.exception() if state.outcome
                                                         else None, state),
        )
        async for attempt in retrying:
            with attempt:
                if self._feeds_down.pop(feed.name, None) is not None:
                    log.warning("feed {} restarted (attempt {})", feed.name, attempt.retry_state.attempt_number)
                await feed.run(self._handle)
                raise RuntimeError("run() returned: a live feed runs until the bot stops")

    def _feed_failed(self, name: str, exc: BaseException | None, retry: RetryCallState | None) -> None:
        """Log, alert and (finite feed: `retry` None) record one feed failure in one line."""
        why = str(exc) if isinstance(exc, FeedError) else f"{type(exc).__name__}: {exc}"
        why = " ".join(why.split())[:500]  # one line, whatever the exception's text
        if retry is None:
            line = f"feed {name} failed: {why}"
            self.stats.failed.append(line)
        else:
            wait = retry.next_action.sleep if retry.next_action else 0.0
            line = f"feed {name} failed: {why}; restart {retry.attempt_number} in {wait:.2f} s"
            self._feeds_down[name] = why
        log.opt(exception=None if isinstance(exc, FeedError) else exc).error("{}", line)
        self._publish("alert", {"alert": "feed_failed", "feed": name, "error": why,
                                "restart_in_seconds": None if retry is None else round(wait, 3)})

    async def _stopped(self) -> None:
        await self._stop.wait()

    async def _handle(self, event: FeedEvent) -> None:
        """One feed event with the run's bookkeeping: events up to the resume point only rebuild
        the book; an event counts as handled once its placements are under way (they finish even
        on a stop). The ledger's run row records it after each complete snapshot and every
        CHECKPOINT_EVERY events; a stop records it exactly."""
        seq = self.stats.events + 1
        self._trading = seq > self._warmup
        activity = self.feed_activity.get(event.source)
        if activity is None:
            activity = self.feed_activity[event.source] = [0, None]
        activity[0] += 1
        activity[1] = self.clock.now()
        try:
            await self.on_feed_event(event)
        except asyncio.CancelledError:
            if self._in_place:  # the shielded placement completes: this event's trading is done
                self._handled = seq
            raise
        self._handled = seq
        if seq % CHECKPOINT_EVERY == 0 or (type(event) is OddsBatch and event.complete):
            self._checkpoint()

    def _checkpoint(self, **fields: Any) -> None:
        if self.run_plan is None:
            return
        try:
            self.ledger.update_run(self.run_plan.run_id, last_event_seq=max(self._handled, self._warmup),
                                   last_event_at=self.clock.now(), **fields)
        except Exception:  # noqa: BLE001 - a lost checkpoint only widens the resume's re-check
            log.opt(exception=True).error("run checkpoint failed")

    async def finish_replay(self) -> None:
        """End of a replay: wait for placements, then let time pass until every game with a
        known result is over, settling as the live job would."""
        await self._wait_placements()
        if self.closing is not None:  # the data ended: the last quotes it has are the close
            self.ledger.set_closing([c.row() for c in self.closing.close_all()])
        if self.settler is not None and isinstance(self.clock, ReplayClock):
            due = self.settler.due_by()
            if due is not None:
                self.clock.advance(due)
            await self._settle()
            log_unresolved(self.settler.unresolved())
        await self.jobs.tick()

    async def shutdown(self) -> None:
        """Stop feeds, finish in-flight placements, cancel pending orders if configured, flush."""
        systemd.notify("STOPPING=1")
        for task in self._feed_tasks:
            task.cancel()
        await asyncio.gather(*self._feed_tasks, return_exceptions=True)
        self.jobs.stop()
        self.venue_jobs.stop()
        await self._wait_placements()
        if self._started:
            try:
                await self.strategies.stop()
            except Exception:
                log.exception("strategy stop failed")
            await self.executor.stop(cancel_pending=self.settings.execution.cancel_on_shutdown)
            self._publish_state("stopped")
        for hook in self.stop_hooks:
            try:
                await hook()
            except Exception:
                log.exception("stop step {} failed", getattr(hook, "__name__", hook))
        outcome = "finished" if self._finished else "stopped" if self._stop.is_set() else "interrupted"
        self._checkpoint(outcome=outcome, ended_at=datetime.now(UTC))
        if self.web is not None:
            await self.web.stop()
        if self.alerts is not None:
            self.alerts.stopping(outcome)
            await self.alerts.notifier.stop()  # drains what is queued, bounded by notify.timeout_seconds
        if self.bus is not None:
            await self.bus.stop()
        self.ledger.close()
        log.info("engine stopped: {}", self._stats_line())

    # -- the pipeline ------------------------------------------------------------------------
    async def on_feed_event(self, event: FeedEvent) -> None:
        """Feed -> book -> strategies -> risk -> executor. Never raises: a bad event is logged
        and counted, and the loop goes on (docs/architecture.md, "Invariants > Nothing lost,
        nothing silent")."""
        self.stats.events += 1
        try:
            if self.closing is not None:
                kickoff = self.closing.next_kickoff
                if kickoff is not None and kickoff <= (now := self.clock.now()):  # before the event is applied
                    self.ledger.set_closing([c.row() for c in self.closing.due(now)])
            # An OddsBatch (a whole snapshot or batched frame) is applied whole before any
            # strategy runs; strategies then see each market it changed once (docs/architecture.md,
            # Pipeline). `odds_updates` counts outcome updates, batched or single.
            if type(event) is OddsBatch:
                markets = self.book.apply_batch(event)
                changed = bool(markets)
                self.stats.odds_updates += len(event.updates)
                self.mapper.learn(event.updates)  # ABP ids a feed sent (bot/market/mapping.py)
            else:
                changed = self.book.apply(event)
                if type(event) is OddsUpdate and event.instrument is not None:
                    self.mapper.learn((event,))
            if self.paper is not None:
                await self.paper.tick()
            if self.replay:
                await self.jobs.tick()
            if type(event) is OddsUpdate:
                self.stats.odds_updates += 1
            if changed and self._trading and not self._stop.is_set():
                if type(event) is OddsBatch:
                    signals = await self.strategies.on_markets(markets)
                elif type(event) is OddsUpdate:
                    signals = await self.strategies.on_odds(event)
                else:
                    signals = []
                if signals:
                    await self.handle_signals(signals)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.stats.errors += 1
            log.exception("event failed: {}", _describe(event))

    async def handle_signals(self, signals: Sequence[Signal]) -> None:
        """Map, risk-check (legs of one group all or none) and submit signals."""
        pairs: list[tuple[Signal, Instrument | None]] = []
        for signal in signals:
            self.stats.signals += 1
            self._publish_event(signal)
            pairs.append((signal, await self.mapper.resolve(signal.selection)))
        decisions = await self.risk.evaluate_many(pairs)
        intents = []
        for (signal, instrument), decision in zip(pairs, decisions, strict=True):
            self._count_decision(decision)
            self._publish_event(decision)
            if decision.approved:
                books = self.venue_books.abp_books(signal.bookmakers) if self.venue_books and signal.bookmakers else None
                # the signal's expiry is on the trading clock; the venue's may differ (a replay live)
                ttl = None if signal.expires_at is None else signal.expires_at - self.clock.now()
                intents.append(OrderIntent(signal, decision.stake, instrument, ttl, books))
        if intents:
            # If submit fails before an order row is committed, risk.sweep() frees the
            # reservation after its TTL; committed rows are reconciled by the executor.
            self.stats.orders_submitted += len(intents)
            await self._place(intents)

    async def _place(self, intents: list[OrderIntent]) -> None:
        # Shielded: a stop request never interrupts a placement half way (exactly once).
        task = asyncio.ensure_future(self.executor.submit(intents))
        self._placing.add(task)
        task.add_done_callback(self._placing.discard)
        self._in_place = True
        try:
            await asyncio.shield(task)
        finally:
            self._in_place = False

    async def _wait_placements(self) -> None:
        if self._placing:
            await asyncio.gather(*self._placing, return_exceptions=True)

    async def on_execution_event(self, event: ExecutionEvent) -> None:
        """Executor -> risk, the owning strategy, the bus; a VenueAlert goes to risk and out as an
        MQTT `alert` (it concerns no one strategy). Never raises."""
        try:
            self.risk.on_execution_event(event)
            if isinstance(event, VenueAlert):
                if self.alerts is not None:
                    self.alerts.venue_alert(event, self.settings.risk.emergency_action)
                log.warning("venue alert {}: {} {}", event.kind.value, event.reason, event.details or "")
                self._publish("alert", {"alert": event.kind.value.lower(), "reason": event.reason,
                                        "bookmakers": list(event.bookmakers), **event.details})
                return
            await self.strategies.on_execution_event(event)
            if type(event) is Fill:
                self.fills += 1
                if self.closing is not None:
                    self._watch_fill(event)
            if isinstance(event, Settlement):
                self.stats.settled += 1
            self._publish_event(event)
        except Exception:
            self.stats.errors += 1
            log.exception("execution event handling failed: {!r}", event)

    # -- closing lines -----------------------------------------------------------------------
    def _watch_open_bets(self) -> None:
        """Open bets whose close was not looked for (a restart, a resumed replay) wait again; a
        fixture that kicked off while the bot was away has no close."""
        if self.closing is None:
            return
        now = self.clock.now()
        closes = []
        for bet_id, key, bookmaker, price, back in self.ledger.bets_awaiting_close():
            try:
                selection = Selection.parse(key)
            except ValueError:
                log.warning("bet {}: selection {!r} unreadable, no closing line", bet_id, key)
                continue
            if now >= selection.fixture.start_time and not self.replay:
                closes.append(ClosingLine(bet_id, None, None, None, selection.fixture.start_time))
                continue
            self.closing.watch(bet_id, selection, bookmaker, price, datetime.min.replace(tzinfo=UTC), back=back)
        self.ledger.set_closing([c.row() for c in closes])

    def _watch_fill(self, fill: Fill) -> None:
        assert self.closing is not None
        if fill.status.value not in OPEN_BET_STATUSES:
            return
        order = self.ledger.get_order(fill.request_uuid)
        if order is None:
            return
        try:
            selection = Selection.parse(order.selection)
        except ValueError:
            log.warning("bet {}: selection {!r} unreadable, no closing line", fill.bet_id, order.selection)
            return
        close = self.closing.watch(fill.bet_id, selection, fill.bookmaker, fill.price, self.clock.now(),
                                   back=order.back)
        if close is not None:  # placed in play: no close
            self.ledger.set_closing([close.row()])

    # -- jobs --------------------------------------------------------------------------------
    def _register_jobs(self) -> None:
        # first, every 0.5 s: a halt from any source takes effect within a second, signal or not
        self.jobs.every("control_watch", timedelta(milliseconds=500), self._watch_control)
        self.jobs.every("reconcile", timedelta(seconds=60), self.executor.reconcile)
        self.jobs.every("pnl_snapshot", timedelta(hours=1), self._pnl_snapshot)
        self.jobs.every("strategy_timer", timedelta(seconds=30), self._strategy_timer)
        self.jobs.every("risk_sweep", timedelta(seconds=30), self._risk_sweep)
        self.jobs.daily("risk_daily_reset", time(0, 0), self.settings.risk.day_timezone, self._daily_reset)
        if self.settler is not None:
            self.jobs.every("paper_settlement", timedelta(minutes=30), self._settle)
        if self.alerts is not None:
            self.jobs.daily("daily_summary", self.settings.notify.summary_time(), self.settings.risk.day_timezone,
                            self._daily_summary)
        for name, interval, fn in self.upkeep:
            self.venue_jobs.every(name, interval, fn)
        watchdog = systemd.watchdog_interval()
        if watchdog is not None:  # on wall time: it proves the loop turns, whatever the trading clock
            self.venue_jobs.every("systemd_watchdog", watchdog, self._feed_watchdog)

    async def _daily_summary(self) -> None:
        assert self.alerts is not None  # registered only with alerts
        day, pnl = self.risk.control.day_pnl()
        self.alerts.daily_summary(self.ledger, day, pnl, self.settings.execution.currency)

    async def _start_web(self) -> None:
        """The dashboard and API (bot/web/), imported only when enabled: a bot without it
        loads no web server. One that cannot listen (the port is taken) is an error in the log
        and an MQTT alert, not a stop: trading, MQTT and the CLI go on without it."""
        from bot.engine.operations import EngineView
        from bot.web.server import WebError, WebServer

        server = WebServer(EngineView(self), self.settings.web)
        try:
            await server.start()
        except WebError as exc:
            self.stats.errors += 1
            log.error("web dashboard and API not started: {}", exc)
            self._publish("alert", {"alert": "web_failed", "error": str(exc)})
            return
        self.web = server
        log.info("web dashboard and API on http://{}:{}/", self.settings.web.host, server.port)

    async def _feed_watchdog(self) -> None:
        systemd.notify("WATCHDOG=1")

    async def _watch_control(self) -> None:
        """Every half second, whether or not a signal arrives: adopt a halt or resume
        that `bot risk` wrote to the ledger and turn an existing `state/KILL` file into a halt
        (`TradingControl.watch`, bot/risk/control.py); a halt fires `_on_halt`, which cancels
        every pending order (docs/architecture.md, "Risk"). A change is published on `state`."""
        control = self.risk.control
        before = control.state
        control.watch()
        if control.state != before:
            self._publish_state()
        if self.alerts is not None:
            self.alerts.trading_state(str(control.state), control.reason)

    async def _strategy_timer(self) -> None:
        if not self._trading:
            return
        signals = await self.strategies.on_timer()
        if signals:
            await self.handle_signals(signals)

    async def _risk_sweep(self) -> None:
        self.risk.sweep()

    async def _daily_reset(self) -> None:
        self.risk.daily_reset()

    async def _pnl_snapshot(self) -> None:
        # The bus's own heartbeat carries status() to MQTT; this line is for the log.
        log.info("PnL snapshot: settled {} | {}", self.ledger.settled_pnl(), self._stats_line())

    async def _settle(self) -> None:
        assert self.settler is not None  # registered only with a settler
        self.stats.errors += await self.settler.settle_due()

    # -- control (also the MQTT Controller) --------------------------------------------------
    async def halt(self, reason: str) -> None:
        self.risk.control.halt(reason)
        self._publish_state()

    async def resume(self) -> None:
        self.risk.control.resume()
        self._publish_state()

    def kill_switch(self, why: str = "kill switch") -> None:
        """SIGUSR1 / the state/KILL file: halt trading (risk then cancels pending orders) and fire
        the kill callbacks (`mm.cancel_all_on_kill`: MM cancel-all, bot/execution/mm.py)."""
        self.risk.control.kill(f"kill switch: {why}")

    async def cancel_all(self) -> int:
        return await self.executor.cancel_all()

    async def reload_params(self, strategy: str, params: dict[str, Any]) -> None:
        """Merge `params` into the strategy's current ones. Raises CommandRefused with the one-line
        validation error; the params are then unchanged."""
        try:
            self.strategies.reload_params(strategy, params)
        except StrategyLoadError as exc:
            raise CommandRefused(str(exc)) from None

    @property
    def started(self) -> bool:
        return self._started

    @property
    def feeds_down(self) -> dict[str, str]:
        """Live feeds waiting for their restart: name -> why."""
        return dict(self._feeds_down)

    def venue_state(self) -> str:
        """"paper", or the live venue's stream: "connected" (logged in) or "disconnected"."""
        if self.paper is not None:
            return "paper"
        stream = getattr(self.venue, "stream", None)
        logged_in = getattr(stream, "logged_in", None)
        return "connected" if logged_in is not None and logged_in.is_set() else "disconnected"

    def status(self) -> dict[str, Any]:
        risk = self.risk.snapshot() if self._started else {}
        return {
            "mode": self.settings.mode,
            "instance": self.settings.instance,
            "clock": self.clock.now().isoformat(),
            "events": self.stats.events,
            "signals": self.stats.signals,
            "approved": self.stats.approved,
            "rejected": self.stats.rejected,
            "errors": self.stats.errors,
            "settled_pnl": str(self.ledger.settled_pnl()) if self._started else "0",
            "risk": risk,
        }

    async def _on_halt(self, reason: str) -> None:
        """A halt (operator, loss limit, emergency, kill switch) cancels every pending order."""
        self._publish("alert", {"alert": "halt", "reason": reason})
        self._publish_state()
        if self.alerts is not None:
            self.alerts.halted(reason)
        cancelled = await self.executor.cancel_all()
        log.warning("trading halted ({}): {} pending orders cancelled", reason, cancelled)

    # -- helpers -----------------------------------------------------------------------------
    def _count_decision(self, decision: Decision) -> None:
        if decision.approved:
            self.stats.approved += 1
        else:
            self.stats.rejected += 1
            self.stats.by_reason[decision.reason or "?"] += 1
            if self.alerts is not None:
                self.alerts.decided(decision)

    def _publish(self, kind: str, payload: dict[str, Any]) -> None:
        if self.bus is not None:  # the bus decides what is critical and what is retained
            self.bus.publish(kind, payload)

    def _publish_event(self, event: Signal | Decision | OrderEvent) -> None:
        if self.bus is not None:
            self.bus.publish_event(event)

    def _publish_state(self, engine_state: str = "running") -> None:
        self._publish("state", {"engine": engine_state, **self.status()})

    def _stats_line(self) -> str:
        s = self.stats
        return (f"events={s.events} odds={s.odds_updates} signals={s.signals} approved={s.approved} "
                f"rejected={s.rejected} orders={s.orders_submitted} settled={s.settled} errors={s.errors}")


def _describe(event: FeedEvent) -> str:
    """An event for a log line: a batch by its size, not its thousands of updates."""
    if type(event) is OddsBatch:
        return (f"OddsBatch(source={event.source!r}, received_at={event.received_at.isoformat()}, "
                f"updates={len(event.updates)}, cleared={len(event.cleared)}, complete={event.complete})")
    return repr(event)
