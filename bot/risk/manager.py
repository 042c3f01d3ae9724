"""RiskManager: runs each signal through the ordered checks (bot/risk/checks.py, default order
there) and records every decision (docs/architecture.md, "Risk" and Invariants > Fail closed).

It wires the parts and keeps them current: trading control (bot/risk/control.py), positions
(bot/risk/positions.py, the one source of exposure), circuit breakers and the approval log.
RISK_UNAVAILABLE is its own: the ledger cannot record the signal, or a check raises.
Approval reserves the exposure under an asyncio.Lock, so two concurrent evaluations cannot both
pass a cap only one fits. Reservations are released on decline / cancel / expiry, converted to bet
exposure on fill, and the bet exposure is released at settlement.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger

from bot.clock import Clock
from bot.risk.breakers import Breakers
from bot.risk.checks import ApprovalLog, Candidate, DrawdownCheck, LossLimitCheck, Rejected, RiskContext, load_checks
from bot.risk.config import RiskConfig
from bot.risk.control import HaltCallback, TradingControl, TradingState
from bot.risk.positions import PositionBook, Scope
from bot.risk.reasons import Reason
from bot.types import (
    FINAL_ORDER_STATUSES,
    BetStatus,
    Decision,
    ExecutionEvent,
    Fill,
    Instrument,
    OrderStatus,
    OrderUpdate,
    Settlement,
    Signal,
    Verdict,
)

if TYPE_CHECKING:
    from bot.ledger.store import Ledger
    from bot.market.book import OddsBook

_FAILED_BETS = {BetStatus.REJECTED, BetStatus.FAILED}
_FAILED_ORDERS = {OrderStatus.DECLINED, OrderStatus.REJECTED, OrderStatus.FAILED}


class RiskManager:
    """See the module docstring. All money in the order currency. `check_dirs` are searched for a
    `file.py:Class` entry of `risk.checks`.

    Raises:
        CheckLoadError: a `risk.checks` entry cannot be loaded (one line naming it).
    """

    def __init__(self, config: RiskConfig, *, clock: Clock, book: OddsBook, ledger: Ledger,
                 requires_mapping: bool, state_dir: Path, check_dirs: Iterable[Path] = ()) -> None:
        self.config = config
        self._clock = clock
        self._ledger = ledger
        self._lock = asyncio.Lock()
        self._control = TradingControl(ledger, clock, zone=config.day_timezone, state_dir=Path(state_dir))
        self._positions = PositionBook.from_ledger(ledger)
        self._breakers = Breakers(global_config=config.global_breaker, bookmaker_config=config.bookmaker_breaker,
                                  clock=clock)
        self._approvals = ApprovalLog()
        for order in self._positions.orders():
            self._approvals.remember(order.signal_id)
        ctx = RiskContext(config, clock, book, ledger, self._positions, self._control, self._breakers,
                          self._approvals, requires_mapping)
        self._checks = load_checks(config.checks, ctx, check_dirs)
        self._limits = (LossLimitCheck(ctx), DrawdownCheck(ctx))  # also after each settlement
        self.counters: Counter[str] = Counter()  # verdicts and reason codes

    # -- trading control (bot/risk/control.py) ---------------------------------------------

    @property
    def state(self) -> TradingState:
        return self._control.state

    def on_halt(self, callback: HaltCallback) -> None:
        """Called with the reason on every transition into HALTED (engine cancels pending orders)."""
        self._control.on_halt(callback)

    def halt(self, reason: str) -> None:
        self._control.halt(reason)

    def reduce(self, reason: str) -> None:
        self._control.reduce(reason)

    def resume(self) -> None:
        """Operator resume (raises ResumeRefused while the emergency or the kill file is on)."""
        self._control.resume()

    def set_emergency(self, active: bool, reason: str) -> None:
        self._control.set_emergency(active, reason)

    def kill_switch(self, reason: str = "SIGUSR1") -> None:
        """Local kill switch (the engine calls this on SIGUSR1): HALTED and pending orders cancelled."""
        self.halt(f"kill switch: {reason}")

    def daily_reset(self) -> None:
        """Day boundary in the configured zone: forget rate windows; the loss limit counts anew."""
        self._approvals.clear_windows()
        self._control.new_day()

    def sync_state(self) -> None:
        """Adopt a state the CLI wrote to the ledger (newer `rev`); a halt fires on_halt."""
        self._control.sync()

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
            decisions = [self._decide(sig, inst) for sig, inst in items]
            broken = {d.signal.group for d in decisions if d.signal.group and not d.approved}
            for i, d in enumerate(decisions):
                if d.approved and d.signal.group in broken:
                    self._undo(d.signal)
                    decisions[i] = self._rejection(d.signal, Reason.GROUP_INCOMPLETE, {"group": d.signal.group})
            return [self._store(d) for d in decisions]

    def _decide(self, signal: Signal, instrument: Instrument | None) -> Decision:
        candidate = Candidate(signal, instrument, signal.stake, self.config.resize_to_fit and signal.group is None)
        try:
            self._ledger.record_signal(signal)
            self.sync_state()
            for check in self._checks:
                check.check(candidate)
        except Rejected as rej:
            return self._rejection(signal, rej.reason, rej.details)
        except Exception as exc:  # noqa: BLE001 - fail closed: any failure rejects, never approves
            logger.opt(exception=True).error("risk unavailable for signal {}", signal.signal_id)
            return self._rejection(signal, Reason.RISK_UNAVAILABLE, {"error": repr(exc)[:200]})
        stake, now = candidate.stake, self._clock.now()
        details = {"requested_stake": str(signal.stake), "approved_stake": str(stake),
                   "state": self.state.value, **candidate.resized}
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
                        {**details, "state": self.state.value}, self._clock.now())

    def _store(self, decision: Decision) -> Decision:
        try:
            self._ledger.record_decision(decision)
        except Exception as exc:  # noqa: BLE001 - fail closed: an unrecorded approval is taken back
            logger.opt(exception=True).error("risk: cannot record decision for {}", decision.signal.signal_id)
            if decision.approved:
                self._undo(decision.signal)
            decision = self._rejection(decision.signal, Reason.RISK_UNAVAILABLE, {"error": repr(exc)[:200]})
        self.counters[decision.verdict.value] += 1
        if decision.reason:
            self.counters[decision.reason] += 1
        return decision

    # -- reservations ----------------------------------------------------------------------

    def _undo(self, signal: Signal) -> None:
        """Reverse an approval that will not be sent (group leg, unrecordable decision)."""
        self._release(signal.signal_id)
        self._approvals.undo(signal.strategy)

    def release(self, signal_id: str, reason: str = "") -> None:
        """Release an approval the engine will not submit (a broken group, a refused intent)."""
        if self._positions.order(signal_id) is not None:
            logger.debug("risk: released {} ({})", signal_id, reason)
        self._release(signal_id)

    def _release(self, signal_id: str) -> None:
        order = self._positions.release(signal_id)
        if order is not None:
            self._breakers.end_probe(signal_id, order.scope.bookmakers)

    def sweep(self) -> int:
        """Bind approvals to their ledger orders; release those that never became an order within
        reservation_ttl_seconds (the engine dropped them). Returns how many were released.
        Call it from the engine's timer."""
        horizon = self._clock.now() - timedelta(seconds=self.config.reservation_ttl_seconds)
        released = self._positions.sweep(horizon, lambda strategy: self._ledger.orders(strategy=strategy))
        for order in released:
            self._breakers.end_probe(order.signal_id, order.scope.bookmakers)
        return len(released)

    # -- execution events ------------------------------------------------------------------

    def on_execution_event(self, event: ExecutionEvent) -> None:
        """Keep exposure, breakers and limits in step with the venue. Never raises."""
        try:
            if isinstance(event, OrderUpdate):
                self._on_order_update(event)
            elif isinstance(event, Fill):
                if self._positions.apply_fill(event, self._ledger.get_order):
                    self._breakers.record([event.bookmaker], failed=False)
                elif BetStatus(event.status) in _FAILED_BETS:
                    self._breakers.record([event.bookmaker], failed=True)
            elif isinstance(event, Settlement):
                self._on_settlement(event)
        except Exception:  # noqa: BLE001 - one bad event is logged and counted; the next still applies
            self.counters["event_errors"] += 1
            logger.opt(exception=True).error("risk: cannot apply execution event {!r:.300}", event)

    def _on_order_update(self, ev: OrderUpdate) -> None:
        res = self._positions.order(self._positions.signal_of(ev.request_uuid, self._ledger.get_order))
        # a decline names no book unless the order targeted exactly one
        books = res.scope.bookmakers if res is not None and len(res.scope.bookmakers) == 1 else ()
        if ev.status in _FAILED_ORDERS:
            self._breakers.record(books, failed=True)
        if res is not None and ev.status in FINAL_ORDER_STATUSES:
            self._breakers.end_probe(res.signal_id, books)
            self._positions.order_ended(res.signal_id, ev.filled_stake)

    def _on_settlement(self, st: Settlement) -> None:
        self._positions.close_bet(st.bet_id)
        if self.state is TradingState.HALTED:
            return
        try:
            for limit in self._limits:
                limit.check(None)
        except Rejected as rej:
            self.counters[rej.reason] += 1

    # -- status ----------------------------------------------------------------------------

    def exposure(self) -> dict[str, dict[str, Decimal]]:
        """Current worst-case exposure per dimension (open bets + in-flight orders)."""
        return self._positions.totals()

    def breaker_states(self) -> dict[str, str]:
        return self._breakers.states()

    def snapshot(self) -> dict[str, Any]:
        """Status figures for the CLI / MQTT (money as strings)."""
        summary = self._positions.summary()
        out: dict[str, Any] = self._control.snapshot() | {
            "exposure_total": str(summary.total),
            "exposure_by_strategy": summary.to_json()["by_strategy"],
            "reservations": summary.open_orders,
            "open_bets": summary.open_bets,
            "breakers": self._breakers.snapshot(),
            "counters": dict(self.counters),
        }
        try:
            out |= self._control.pnl()
        except Exception as exc:  # noqa: BLE001 - status still answers when the ledger cannot
            out["ledger_error"] = repr(exc)[:200]
        return out
