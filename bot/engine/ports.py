"""What the engine needs of each collaborator it drives, as Protocols (docs/architecture.md,
"Pipeline"): the engine is typed against these and not against the classes, so a test or a
simulator can stand in for any stage, and the engine never imports `bot.sim`.

The real implementations: `StrategyHost` (bot/strategy/host.py), `RiskManager`
(bot/risk/manager.py), `Executor` (bot/execution/executor.py), `MqttBus` (bot/bus/bus.py),
`PaperDriver` and `PaperSettler` (bot/sim/), `AbpUpkeep.jobs()` (bot/execution/upkeep.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from bot.engine.jobs import JobFn
from bot.latency import TickToOrder
from bot.types import (
    Decision,
    ExecutionEvent,
    FixtureKey,
    Instrument,
    MarketKey,
    OddsUpdate,
    OrderEvent,
    OrderIntent,
    Signal,
)

if TYPE_CHECKING:
    from bot.bus.commands import Controller
    from bot.ledger.report import Unresolved
    from bot.risk.breakers import Breaker

HaltCallback = Callable[[str], Awaitable[None] | None]
UpkeepJob = tuple[str, timedelta, JobFn]
"""A venue-specific periodic job: (name, interval, coroutine function)."""
StartHook = Callable[[], Awaitable[None]]
"""A venue-specific step run once at start, after reconciliation and before trading."""
StopHook = Callable[[], Awaitable[None]]
"""A step run once at shutdown, after the executor stopped (the MM link closes its stream)."""


class Strategies(Protocol):
    """The strategy host: every configured strategy instance behind one object."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def on_odds(self, update: OddsUpdate) -> Sequence[Signal]:
        """Signals for one single update the book has applied."""

    async def on_markets(
        self, changes: Mapping[tuple[FixtureKey, MarketKey], Sequence[OddsUpdate]]
    ) -> Sequence[Signal]:
        """Signals for the markets one `OddsBatch` changed, called once the book holds the whole
        batch: (fixture, market) -> the batch's updates that changed it (`OddsBook.apply_batch`;
        docs/architecture.md, Pipeline)."""

    async def on_timer(self) -> Sequence[Signal]: ...

    async def on_execution_event(self, event: OrderEvent) -> None:
        """Route an order update, fill or settlement to the strategy that owns the order."""

    def reload_params(self, name: str, params: dict[str, Any]) -> None: ...

    def current_params(self) -> dict[str, dict[str, Any]]: ...


class Control(Protocol):
    """Trading control (bot/risk/control.py `TradingControl`)."""

    def on_halt(self, callback: HaltCallback) -> None:
        """Call `callback(reason)` on every transition into HALTED."""

    def halt(self, reason: str) -> None: ...

    def kill(self, reason: str) -> None:
        """The kill switch: halt, then the kill callbacks (the MM link's cancel-all)."""

    def resume(self) -> None:
        """Operator resume (raises ResumeRefused while the emergency or the kill file is on)."""

    @property
    def state(self) -> str:
        """ACTIVE, REDUCING or HALTED."""

    @property
    def reason(self) -> str:
        """Why the state is what it is."""

    def day_pnl(self) -> tuple[str, Decimal]:
        """(trading day, its settled PnL)."""

    def watch(self) -> None:
        """Adopt a state written to the ledger by `bot risk`; a KILL file becomes a halt."""


class Risk(Protocol):
    """The risk stage: decisions, exposure, trading control (docs/architecture.md, "Risk")."""

    async def evaluate_many(self, items: Sequence[tuple[Signal, Instrument | None]]) -> list[Decision]:
        """One decision per (signal, instrument), in order; legs of one group all or none."""

    @property
    def control(self) -> Control:
        """Trading state: halt, resume and the halt callbacks (bot/risk/control.py)."""

    def on_execution_event(self, event: ExecutionEvent) -> None: ...

    def snapshot(self) -> dict[str, Any]: ...

    def exposure(self) -> dict[str, dict[str, Decimal]]: ...

    def market_exposure(self) -> dict[str, Decimal]: ...

    def on_breaker_open(self, callback: Callable[[Breaker], None]) -> None: ...

    def sweep(self) -> int:
        """Release reservations whose orders never reached the ledger; returns how many."""

    def daily_reset(self) -> None: ...


class Execution(Protocol):
    """The executor: exactly-once placement and reconciliation (docs/architecture.md,
    "Invariants > Exactly-once placement")."""

    async def start(self) -> None:
        """Reconcile every unfinished order before anything new is sent."""

    async def stop(self, cancel_pending: bool) -> None: ...

    async def submit(self, intents: Sequence[OrderIntent]) -> list[str]: ...

    async def reconcile(self) -> None: ...

    async def cancel_all(self) -> int: ...

    @property
    def latency(self) -> TickToOrder:
        """Tick-to-order samples of the placements (bot/latency.py)."""


class Bus(Protocol):
    """The MQTT bus: pipeline events out, operator commands in (run on the engine)."""

    async def start(self, controller: Controller) -> None: ...

    async def stop(self) -> None: ...

    def publish(self, kind: str, payload: dict[str, Any]) -> None: ...

    def publish_event(self, event: Signal | Decision | OrderEvent) -> None: ...


class PaperControl(Protocol):
    """The engine's handle on an in-process paper venue."""

    async def tick(self) -> None:
        """The trading clock moved: fill or expire open orders, deliver their updates."""


class Settler(Protocol):
    """Settles open bets from final results where no venue does (paper mode)."""

    def due_by(self) -> datetime | None:
        """When, on the trading clock, every open bet with a known result can be settled;
        None when no open bet has one."""

    async def settle_due(self) -> int:
        """Settle every open bet whose game is over; returns how many could not be (each
        logged, none stops another)."""

    def unresolved(self) -> list[Unresolved]:
        """Open bets whose fixture has kicked off on the trading clock and have not settled, by
        fixture and reason ("no results source", "fixture not found in results", "result
        pending", ...; bot/ledger/report.py `unresolved_bets`). Log them with
        `bot.ledger.report.log_unresolved` (docs/architecture.md, "Invariants > Nothing lost,
        nothing silent")."""


class VenueBooks(Protocol):
    """The venue's names for a signal's bookmakers (live: bot/execution/bookmakers.py)."""

    def abp_books(self, feed_books: Sequence[str]) -> tuple[str, ...]: ...
