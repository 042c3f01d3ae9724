"""Keeps risk in step with the venue (docs/architecture.md, "Risk"): order updates, fills and
settlements move exposure in the PositionBook (bot/risk/positions.py), feed the circuit breakers
(bot/risk/breakers.py), and re-run the loss limits after each settlement. Reservations whose
orders never reached the ledger are released after `reservation_ttl_seconds` (`sweep`).

Venue alerts (`VenueAlert`, docs/architecture.md "Live venue (ABP)"), each counted as
`alert_<kind>` in the RiskManager's counters:
    EMERGENCY_ON / _OFF    TradingControl.set_emergency (HALTED or REDUCING; resume as configured);
                           `details["source"]` names the emergency's source ("abp" when absent, "mm")
    UNAVAILABLE            a failure of the global breaker and of each named book's
    BOOKMAKER_UNAVAILABLE  a failure of each named book's breaker
    AUTH_FAILED            HALTED: the key is refused, nothing can be placed or cancelled
    MISSING_RATE           HALTED: amounts in that currency cannot be converted
    MISMATCH               a warning with the figures (ledger and venue disagree)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from loguru import logger

from bot.clock import Clock
from bot.risk.breakers import Breakers
from bot.risk.checks import DrawdownCheck, LossLimitCheck, Rejected
from bot.risk.control import TradingControl, TradingState
from bot.risk.positions import PositionBook
from bot.types import (
    FINAL_ORDER_STATUSES,
    BetStatus,
    ExecutionEvent,
    Fill,
    OrderStatus,
    OrderUpdate,
    Settlement,
    VenueAlert,
    VenueAlertKind,
)

if TYPE_CHECKING:
    from bot.ledger.store import Ledger

_FAILED_BETS = {BetStatus.REJECTED, BetStatus.FAILED}
_FAILED_ORDERS = {OrderStatus.DECLINED, OrderStatus.REJECTED, OrderStatus.FAILED}
_BOOK_DOWN = "bookmaker not available"  # docs/reference/abp.md §10; the book counts via its alert


def _book_down(reason: str | None) -> bool:
    return _BOOK_DOWN in (reason or "").lower()


class VenueTracker:
    """Applies execution events to positions, breakers and limits; counts into `counters`."""

    def __init__(self, *, ledger: Ledger, clock: Clock, positions: PositionBook, breakers: Breakers,
                 control: TradingControl, limits: Sequence[LossLimitCheck | DrawdownCheck], reservation_ttl: timedelta,
                 counters: Counter[str]) -> None:
        self._ledger, self._clock, self._positions, self._breakers = ledger, clock, positions, breakers
        self._control, self._limits, self._ttl, self._counters = control, limits, reservation_ttl, counters

    def on_execution_event(self, event: ExecutionEvent) -> None:
        """Never raises: one bad event is logged and counted; the next still applies."""
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
            elif isinstance(event, VenueAlert):
                self._on_alert(event)
        except Exception:  # noqa: BLE001 - see the docstring
            self._counters["event_errors"] += 1
            logger.opt(exception=True).error("risk: cannot apply execution event {!r:.300}", event)

    def release(self, signal_id: str) -> None:
        """Free an approval's reservation (it will not be sent) and its breaker probe."""
        order = self._positions.release(signal_id)
        if order is not None:
            self._breakers.end_probe(signal_id, order.scope.bookmakers)

    def sweep(self) -> int:
        """Bind approvals to their ledger orders; release those that never became an order within
        the reservation TTL (the engine dropped them). Returns how many were released."""
        horizon = self._clock.now() - self._ttl
        released = self._positions.sweep(horizon, lambda strategy: self._ledger.orders(strategy=strategy))
        for order in released:
            self._breakers.end_probe(order.signal_id, order.scope.bookmakers)
        return len(released)

    def _on_order_update(self, ev: OrderUpdate) -> None:
        res = self._positions.order(self._positions.signal_of(ev.request_uuid, self._ledger.get_order))
        # a decline names no book unless the order targeted exactly one
        books = res.scope.bookmakers if res is not None and len(res.scope.bookmakers) == 1 else ()
        if ev.status in _FAILED_ORDERS:
            self._breakers.record(() if _book_down(ev.reason) else books, failed=True)
        if res is not None and ev.status in FINAL_ORDER_STATUSES:
            self._breakers.end_probe(res.signal_id, books)
            self._positions.order_ended(res.signal_id, ev.filled_stake)

    def _on_settlement(self, st: Settlement) -> None:
        self._positions.close_bet(st.bet_id)
        if self._control.state is TradingState.HALTED:
            return
        try:
            for limit in self._limits:
                limit.check(None)
        except Rejected as rej:
            self._counters[rej.reason] += 1

    def _on_alert(self, alert: VenueAlert) -> None:
        kind, books = alert.kind, alert.bookmakers
        self._counters[f"alert_{kind.value.lower()}"] += 1
        if kind is VenueAlertKind.EMERGENCY_ON:
            self._control.set_emergency(True, alert.reason, str(alert.details.get("source", "abp")))
        elif kind is VenueAlertKind.EMERGENCY_OFF:
            self._control.set_emergency(False, alert.reason, str(alert.details.get("source", "abp")))
        elif kind is VenueAlertKind.UNAVAILABLE:
            self._breakers.record(books, failed=True)
        elif kind is VenueAlertKind.BOOKMAKER_UNAVAILABLE:
            self._breakers.record(books, failed=True, venue=False)
        elif kind is VenueAlertKind.AUTH_FAILED:
            self._control.halt(f"ABP refused the API key: {alert.reason}")
        elif kind is VenueAlertKind.MISSING_RATE:
            currency = alert.details.get("currency")
            self._control.halt(f"no exchange rate for {currency}: amounts cannot be converted" if currency
                               else f"missing exchange rate: {alert.reason}")
        elif kind is VenueAlertKind.MISMATCH:
            logger.warning("risk: ledger and venue disagree: {} {}", alert.reason, alert.details)
