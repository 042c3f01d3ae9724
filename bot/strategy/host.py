"""StrategyHost: runs the configured strategy instances (docs/architecture.md, "Pipeline" and
"Strategies").

It dispatches odds only to strategies whose `Interests` match: a single OddsUpdate to
`on_odds`, and the markets a whole snapshot or batch changed (after the book applied all of it)
to `on_market`, once per (fixture, market), or to `on_odds` per update for a strategy that does
not override `on_market` (docs/architecture.md, Pipeline and Strategies). It routes execution
events to the strategy that owns the order (by the ledger's order row), and collects the Signals
hooks return. A hook that raises or returns garbage is logged and counted; the loop keeps
running. A `markets` interest that no feed produces (not one of `bot.strategy.api.MARKET_TYPES`)
is an error at load and on a reload (one line naming the param and the known types,
`bot.strategy.loader.check_markets`).
"""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger

from bot.clock import Clock
from bot.strategy.api import Interests, Strategy, StrategyContext
from bot.strategy.loader import StrategyLoadError, check_markets, resolve_class, validate_params
from bot.types import Fill, FixtureKey, MarketKey, OddsUpdate, OrderEvent, OrderUpdate, Settlement, Signal

if TYPE_CHECKING:
    from bot.config.settings import StrategySpec
    from bot.ledger.models import OrderRow
    from bot.ledger.store import Ledger
    from bot.market.book import OddsBook


@dataclass(slots=True)
class _Instance:
    strategy: Strategy
    interests: Interests
    per_market: bool  # overrides on_market (else on_odds is called per update)


def _instance(name: str, strategy: Strategy) -> _Instance:
    """Raises StrategyLoadError when the strategy's `markets` interest names an unknown type."""
    interests = strategy.interests()
    check_markets(name, interests.markets)
    return _Instance(strategy, interests, type(strategy).on_market is not Strategy.on_market)


class StrategyHost:
    """The loaded strategy instances, keyed by their unique config name."""

    def __init__(self, instances: dict[str, Strategy], *, ledger: Ledger | None) -> None:
        self._instances = {n: _instance(n, s) for n, s in instances.items()}
        self._ledger = ledger
        self._pending: list[Signal] = []  # returned by order/fill/settlement hooks
        self.errors: Counter[str] = Counter()  # strategy name -> hook failures

    @classmethod
    def load(
        cls,
        specs: list[StrategySpec],
        *,
        book: OddsBook,
        clock: Clock,
        ledger: Ledger | None,
        strategy_dirs: list[Path] | None = None,
    ) -> StrategyHost:
        """Instantiate every enabled spec (several instances of one class may differ in name and
        params); a `markets` param or interest naming an unknown market type is a problem too.

        Raises:
            StrategyLoadError: with one line per problem, over all specs.
        """
        lines: list[str] = []
        instances: dict[str, Strategy] = {}
        for spec in specs:
            if not spec.enabled:
                continue
            try:
                klass = resolve_class(spec.name, spec.path, strategy_dirs)
                params = validate_params(spec.name, klass, spec.params)
                check_markets(spec.name, getattr(params, "markets", ()) or ())
                ctx = StrategyContext(spec.name, params, book=book, clock=clock, ledger=ledger)
                ctx.restore()  # the restart memory, read now: not on the trading path
                instance = klass(ctx)
                check_markets(spec.name, instance.interests().markets)
                instances[spec.name] = instance
            except StrategyLoadError as exc:
                lines.extend(exc.lines)
            except Exception as exc:  # noqa: BLE001 - a user's __init__ may raise anything: one line
                lines.append(f"strategy '{spec.name}': constructor failed: {type(exc).__name__}: {exc}")
        if lines:
            raise StrategyLoadError(lines)
        return cls(instances, ledger=ledger)

    @property
    def names(self) -> list[str]:
        return list(self._instances)

    def strategy(self, name: str) -> Strategy:
        return self._instances[name].strategy

    async def _call(self, name: str, hook: str, **kwargs: Any) -> list[Signal]:
        strategy = self._instances[name].strategy
        try:
            result = getattr(strategy, hook)(**kwargs)
            if inspect.isawaitable(result):
                result = await result
        except Exception:  # noqa: BLE001 - a strategy bug is logged and counted; the loop goes on
            self.errors[name] += 1
            logger.opt(exception=True).bind(strategy=name).error("strategy hook {} failed", hook)
            return []
        return self._signals(name, hook, result)

    def _signals(self, name: str, hook: str, result: Any) -> list[Signal]:
        if result is None:
            return []
        items: Iterable[Any] = [result] if isinstance(result, Signal) else result
        out: list[Signal] = []
        try:
            for item in items:
                if isinstance(item, Signal) and item.strategy == name:
                    out.append(item)
                else:
                    self.errors[name] += 1
                    logger.bind(strategy=name).error(
                        "{} returned {!r:.200}, not a Signal of this strategy; dropped", hook, item
                    )
        except TypeError:
            self.errors[name] += 1
            logger.bind(strategy=name).error("{} returned {!r:.200}; expected Signals", hook, result)
        return out

    def _take_pending(self) -> list[Signal]:
        pending, self._pending = self._pending, []
        return pending

    async def start(self) -> None:
        for name in self._instances:
            self._pending.extend(await self._call(name, "on_start"))

    async def on_odds(self, update: OddsUpdate) -> list[Signal]:
        """Signals from every strategy whose interests match `update` (plus pending ones)."""
        out = self._take_pending()
        for name, inst in self._instances.items():
            if inst.interests.matches(update):
                out.extend(await self._call(name, "on_odds", update=update))
        return out

    async def on_markets(
        self, changes: Mapping[tuple[FixtureKey, MarketKey], Sequence[OddsUpdate]]
    ) -> list[Signal]:
        """Signals for the markets one batch changed (plus pending ones), called once the book
        holds the whole batch: per (fixture, market) in order, every strategy whose interests
        match gets `on_market(fixture=, market=, updates=)` with the updates of its bookmakers
        (a market only a clear touched comes with no updates; a market whose updates are all
        of other bookmakers is skipped), or `on_odds(update=)` for each of them when it does
        not override `on_market`."""
        out = self._take_pending()
        for (fixture, market), updates in changes.items():
            batch = tuple(updates)
            for name, inst in self._instances.items():
                interests = inst.interests
                if not interests.matches_market(fixture, market):
                    continue
                mine = batch
                if interests.bookmakers:
                    wanted = interests.bookmakers
                    mine = tuple(u for u in mine if u.bookmaker in wanted)
                    if updates and not mine:
                        continue
                if inst.per_market:
                    out.extend(await self._call(name, "on_market", fixture=fixture, market=market, updates=mine))
                else:
                    for update in mine:
                        out.extend(await self._call(name, "on_odds", update=update))
        return out

    async def on_timer(self) -> list[Signal]:
        out = self._take_pending()
        for name, inst in self._instances.items():
            out.extend(await self._call(name, "on_timer", now=inst.strategy.ctx.now()))
        return out

    def _order(self, request_uuid: str) -> OrderRow | None:
        if self._ledger is None:
            return None
        try:
            return self._ledger.get_order(request_uuid)
        except Exception:  # noqa: BLE001 - an unroutable event is logged, never stops the engine
            logger.opt(exception=True).error("ledger lookup of order {} failed", request_uuid)
            return None

    async def on_execution_event(self, event: OrderEvent) -> None:
        """Route an OrderUpdate / Fill / Settlement to the strategy that owns the order; the
        Signals its hook returns come out of the next `on_odds` / `on_markets` / `on_timer`."""
        order = self._order(event.request_uuid)
        name = order.strategy if order is not None else None
        if name is None or name not in self._instances:
            logger.debug("execution event for unknown order {}: not routed", event.request_uuid)
            return
        if isinstance(event, OrderUpdate):
            self._pending.extend(await self._call(name, "on_order_update", update=event, order=order))
        elif isinstance(event, Fill):
            self._pending.extend(await self._call(name, "on_fill", fill=event, order=order))
        elif isinstance(event, Settlement):
            self._pending.extend(
                await self._call(name, "on_settlement", settlement=event, order=order)
            )

    async def stop(self) -> None:
        for name in self._instances:
            await self._call(name, "on_stop")

    def current_params(self) -> dict[str, dict[str, Any]]:
        """Each loaded instance's params as they are now (after reloads), JSON-ready."""
        return {n: i.strategy.ctx.params.model_dump(mode="json") for n, i in self._instances.items()}

    def reload_params(self, name: str, params: dict[str, Any]) -> None:
        """Merge `params` into one instance's current params (the MQTT `reload` command): the
        given fields change, every other keeps its current value; interests are re-read. The
        merged set is validated whole, so a refused reload changes nothing.

        Raises:
            StrategyLoadError: unknown strategy name or invalid params (one line each).
        """
        inst = self._instances.get(name)
        if inst is None:
            raise StrategyLoadError([f"strategy '{name}': not loaded (loaded: {', '.join(self._instances)})"])
        current = inst.strategy.ctx.params
        inst.strategy.ctx.params = validate_params(name, type(inst.strategy), {**current.model_dump(), **params})
        try:
            inst.interests = _instance(name, inst.strategy).interests
        except StrategyLoadError:
            inst.strategy.ctx.params = current
            raise
