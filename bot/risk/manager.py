"""RiskManager: runs each signal through the ordered checks (bot/risk/checks.py, default order
there) and records every decision (docs/architecture.md, "Risk" and Invariants > Fail closed).

It wires the parts: trading control (`control`, bot/risk/control.py), positions
(bot/risk/positions.py, the one source of exposure), circuit breakers, the approval log and the
venue tracker (bot/risk/tracking.py). RISK_UNAVAILABLE is its own: the ledger's last write failed
(`Ledger.write_error`: signals and decisions are group-committed, so a ledger that cannot write is
seen at the next commit; the intent commit of an approved order fails with it, so nothing leaves),
or a check raises. Approval reserves the exposure under an asyncio.Lock, so two
concurrent evaluations cannot both pass a cap only one fits. Reservations are released on
decline / cancel / expiry, converted to bet exposure on fill, and released at settlement. On a
ledger several instances share, the caps, the loss limit and HALT are checked again for all of
them together in the intent commit (bot/risk/shared.py).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger

from bot.clock import Clock
from bot.risk.breakers import Breaker, Breakers
from bot.risk.checks import ApprovalLog, Candidate, DrawdownCheck, LossLimitCheck, Rejected, RiskContext, load_checks
from bot.risk.config import RiskConfig
from bot.risk.control import TradingControl
from bot.risk.external import ExternalExposure
from bot.risk.positions import PositionBook, Scope
from bot.risk.reasons import Reason
from bot.risk.shared import GlobalLimits
from bot.risk.tracking import VenueTracker
from bot.types import Decision, ExecutionEvent, Instrument, Signal, Verdict

if TYPE_CHECKING:
    from bot.execution.bookmakers import BookmakerRoute
    from bot.ledger.store import Ledger
    from bot.market.book import OddsBook


_SATURATION = {Reason.EXPOSURE_STRATEGY, Reason.EXPOSURE_TOTAL, Reason.EXPOSURE_BOOKMAKER}


class RiskManager:
    """See the module docstring. All money in the order currency. `check_dirs` are searched for a
    `file.py:Class` entry of `risk.checks`. `route` (live) is what BOOKMAKER_UNAVAILABLE checks
    and names the breakers' books by their ABP slugs; None (paper) skips that check. `external`
    (`mm.combined_exposure`, bot/risk/external.py) is exposure the fixture and bookmaker caps add.

    Raises:
        CheckLoadError: a `risk.checks` entry cannot be loaded (one line naming it).
    """

    def __init__(self, config: RiskConfig, *, clock: Clock, book: OddsBook, ledger: Ledger,
                 requires_mapping: bool, state_dir: Path, check_dirs: Iterable[Path] = (),
                 route: BookmakerRoute | None = None, external: ExternalExposure | None = None) -> None:
        self.config = config
        self._clock = clock
        self._ledger = ledger
        self._lock = asyncio.Lock()
        self.control = TradingControl(ledger, clock, zone=config.day_timezone, state_dir=Path(state_dir),
                                      emergency_action=config.emergency_action,
                                      emergency_resume=config.emergency_resume)
        self._positions = PositionBook.from_ledger(ledger)
        if ledger.shared:  # several instances, one bankroll: the intent commit checks everyone's
            ledger.guard = GlobalLimits(config, clock)
        self._breakers = Breakers(global_config=config.global_breaker, bookmaker_config=config.bookmaker_breaker,
                                  clock=clock, canonical=None if route is None else route.book_map.canonical)
        self._approvals = ApprovalLog()
        self._approvals_restored = False  # at the first evaluation: see `_restore_approvals`
        for order in self._positions.orders():
            self._approvals.remember(order.signal_id)
        ctx = RiskContext(config, clock, book, ledger, self._positions, self.control, self._breakers,
                          self._approvals, requires_mapping, route, external)
        self._checks = load_checks(config.checks, ctx, check_dirs)
        self.counters: Counter[str] = Counter()  # verdicts and reason codes
        self._saturated: Counter[str] = Counter()  # book-wide cap rejections per reason and strategy
        self.tracker = VenueTracker(  # limits also run after each settlement
            ledger=ledger, clock=clock, positions=self._positions, breakers=self._breakers, control=self.control,
            limits=(LossLimitCheck(ctx), DrawdownCheck(ctx)),
            reservation_ttl=timedelta(seconds=config.reservation_ttl_seconds), counters=self.counters)

    # -- trading control (bot/risk/control.py: halt, resume, emergency, state) ------------

    def daily_reset(self) -> None:
        """Day boundary in the configured zone: forget rate windows; the loss limit counts anew."""
        self._approvals.clear_windows()
        self.control.new_day()

    # -- evaluation ------------------------------------------------------------------------

    async def evaluate(self, signal: Signal, instrument: Instrument | None) -> Decision:
        """Decide on one signal, record signal and decision in the ledger; an approval reserves
        its exposure. Never raises: anything unexpected is RISK_UNAVAILABLE (fail closed)."""
        return (await self.evaluate_many([(signal, instrument)]))[0]

    async def evaluate_many(self, items: Sequence[tuple[Signal, Instrument | None]]) -> list[Decision]:
        """Decide on several signals atomically; legs sharing a `group` are all-or-none (a group
        with a rejected leg rejects the others with GROUP_INCOMPLETE, and its legs are never
        resized, which would unbalance an arbitrage)."""
        async with self._lock:
            if not self._approvals_restored:
                try:
                    self._restore_approvals()
                except Exception as exc:  # noqa: BLE001 - fail closed; restored at the next evaluation
                    logger.opt(exception=True).error("risk unavailable: cannot restore earlier approvals")
                    return [self._store(self._rejection(sig, Reason.RISK_UNAVAILABLE, {"error": repr(exc)[:200]}))
                            for sig, _ in items]
            decisions = [self._decide(sig, inst) for sig, inst in items]
            broken = {d.signal.group for d in decisions if d.signal.group and not d.approved}
            for i, d in enumerate(decisions):
                if d.approved and d.signal.group in broken:
                    self._undo(d.signal)
                    decisions[i] = self._rejection(d.signal, Reason.GROUP_INCOMPLETE, {"group": d.signal.group})
            return [self._store(d) for d in decisions]

    def _restore_approvals(self) -> None:
        """DUPLICATE_SIGNAL's memory of earlier processes: the signals acted on within
        `duplicate_window_seconds` of the first evaluation. Not at construction: a replay's clock
        reaches event time only with its first event, and a window back from 1970 would load
        every signal the ledger holds."""
        since = self._clock.now() - timedelta(seconds=self.config.duplicate_window_seconds)
        self._approvals.restore(self._ledger.acted_signals(since))
        self._approvals_restored = True

    def _decide(self, signal: Signal, instrument: Instrument | None) -> Decision:
        candidate = Candidate(signal, instrument, signal.stake, self.config.resize_to_fit and signal.group is None)
        try:
            if self._ledger.write_error is not None:  # decisions could not be stored: fail closed
                raise Rejected(Reason.RISK_UNAVAILABLE, {"error": f"ledger cannot write: {self._ledger.write_error}"})
            self.control.sync()  # adopt a state the CLI wrote to the ledger
            for check in self._checks:
                check.check(candidate)
        except Rejected as rej:
            return self._rejection(signal, rej.reason, rej.details)
        except Exception as exc:  # noqa: BLE001 - fail closed: any failure rejects, never approves
            logger.opt(exception=True).error("risk unavailable for signal {}", signal.signal_id)
            return self._rejection(signal, Reason.RISK_UNAVAILABLE, {"error": repr(exc)[:200]})
        stake, now = candidate.stake, self._clock.now()
        details = {"requested_stake": str(signal.stake), "approved_stake": str(stake),
                   "state": self.control.state.value, **candidate.resized}
        self._positions.reserve(signal, stake, now)
        self._approvals.approve(signal, now)
        self._breakers.begin_probe(signal.signal_id, signal.bookmakers)
        figures = self._positions.figures(Scope.of_signal(signal)).amounts()
        details["exposure_after"] = {k: str(v) for k, v in figures.items()}
        if candidate.resized:
            return Decision(signal, Verdict.RESIZED, stake, candidate.resized["resized_by"][0], details, now)
        return Decision(signal, Verdict.APPROVED, stake, None, details, now)

    def _rejection(self, signal: Signal, reason: str, details: dict[str, Any]) -> Decision:
        return Decision(signal, Verdict.REJECTED, Decimal(0), str(reason),
                        {**details, "state": self.control.state.value}, self._clock.now())

    def _store(self, decision: Decision) -> Decision:
        try:
            self._ledger.record_decision(decision)  # and its signal; group-committed (bot/ledger/store.py)
        except Exception as exc:  # noqa: BLE001 - fail closed: an unrecorded approval is taken back
            logger.opt(exception=True).error("risk: cannot record decision for {}", decision.signal.signal_id)
            if decision.approved:
                self._undo(decision.signal)
            decision = self._rejection(decision.signal, Reason.RISK_UNAVAILABLE, {"error": repr(exc)[:200]})
        self.counters[decision.verdict.value] += 1
        if decision.reason:
            self.counters[decision.reason] += 1
            if decision.reason in _SATURATION:
                self._warn_saturated(decision)
        return decision

    def _warn_saturated(self, decision: Decision) -> None:
        """A book-wide cap that rejects signals is never silent: warned on the 1st, 10th, 100th...
        rejection per strategy and cap (exposure is freed only by settlement)."""
        key = f"{decision.reason}:{decision.signal.strategy}"
        self._saturated[key] += 1
        count = self._saturated[key]
        if count == 10 ** (len(str(count)) - 1):
            summary = self._positions.summary()
            logger.warning("risk: {} rejected {} signal(s) of {} so far; exposure {} in {} open bets is freed only "
                           "when they settle (settlement.results, settlement.unresolved)", decision.reason, count,
                           decision.signal.strategy, summary.total, summary.open_bets)

    # -- reservations and venue events (bot/risk/tracking.py) ------------------------------

    def _undo(self, signal: Signal) -> None:
        """Reverse an approval that will not be sent (group leg, unrecordable decision)."""
        self.tracker.release(signal.signal_id)
        self._approvals.undo(signal.strategy)

    def release(self, signal_id: str, reason: str = "") -> None:
        """Release an approval the engine will not submit (a broken group, a refused intent)."""
        logger.debug("risk: releasing {} ({})", signal_id, reason)
        self.tracker.release(signal_id)

    def sweep(self) -> int:
        """Release reservations whose orders never reached the ledger (the engine's timer)."""
        return self.tracker.sweep()

    def on_execution_event(self, event: ExecutionEvent) -> None:
        """Keep exposure, breakers, limits and the trading state in step with the venue (a
        `VenueAlert`: bot/risk/tracking.py). Never raises."""
        self.tracker.on_execution_event(event)

    # -- status ----------------------------------------------------------------------------

    def exposure(self) -> dict[str, dict[str, Decimal]]:
        """Worst-case exposure per dimension (selection, fixture, bookmaker, strategy, total) of open
        bets and in-flight orders (bot/risk/positions.py)."""
        return self._positions.totals()

    def market_exposure(self) -> dict[str, Decimal]:
        """Worst-case loss per market over its outcomes, backs and lays netted (bot/risk/market.py)."""
        return self._positions.market_totals()

    def breaker_states(self) -> dict[str, str]:
        return self._breakers.states()

    def on_breaker_open(self, callback: Callable[[Breaker], None]) -> None:
        """Called with the breaker each time one opens (the engine alerts and notifies)."""
        self._breakers.on_open = callback

    def snapshot(self) -> dict[str, Any]:
        """Status figures for the CLI / MQTT (money as strings)."""
        summary = self._positions.summary()
        out: dict[str, Any] = self.control.snapshot() | {
            "exposure_total": str(summary.total),
            "exposure_by_strategy": summary.to_json()["by_strategy"],
            "reservations": summary.open_orders,
            "open_bets": summary.open_bets,
            "breakers": self._breakers.snapshot(),
            "counters": dict(self.counters),
        }
        try:
            out |= self.control.pnl()
        except Exception as exc:  # noqa: BLE001 - status still answers when the ledger cannot
            out["ledger_error"] = repr(exc)[:200]
        return out
