"""What the operator hears about without watching (docs/operations.md, "Notifications"): the
engine's state changes, venue emergencies, breaker trips, bursts of rejected signals, start and
stop, and the daily PnL summary, sent through the notifier (bot/notify/) and, where the MQTT
docs promise an alert, published on the bus too. Every call is cheap and never raises: the
notifier queues, and its sends run off the loop."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bot.notify import Kind, Notifier, events
from bot.types import Decision, VenueAlert, VenueAlertKind, Verdict

if TYPE_CHECKING:
    from bot.clock import Clock
    from bot.ledger.store import Ledger
    from bot.risk.breakers import Breaker

Publish = Callable[[str, dict[str, Any]], None]


class OperatorAlerts:
    """Turns engine happenings into notifications (and MQTT alerts where documented)."""

    def __init__(self, notifier: Notifier, clock: Clock, zone: str, publish: Publish) -> None:
        self.notifier, self._clock, self._zone, self._publish = notifier, clock, zone, publish
        self._state: str | None = None  # the trading state last seen, to tell a resume

    def started(self, mode: str, detail: str = "") -> None:
        self.notifier.send(Kind.START, events.start(at=self._clock.now(), zone=self._zone, mode=mode, detail=detail))

    def stopping(self, reason: str) -> None:
        self.notifier.send(Kind.STOP, events.stop(at=self._clock.now(), zone=self._zone, reason=reason))

    def halted(self, reason: str) -> None:
        self._state = "HALTED"
        self.notifier.send(Kind.HALT, events.halt(reason, at=self._clock.now(), zone=self._zone))

    def trading_state(self, state: str, reason: str) -> None:
        """The trading state as the control watch sees it (every half second): a change back
        to ACTIVE is a resume, whoever made it (operator, `bot risk resume`, an emergency's
        automatic clearing)."""
        if self._state is not None and self._state != state and state == "ACTIVE":
            self.notifier.send(Kind.RESUME, events.resume(reason, at=self._clock.now(), zone=self._zone))
        self._state = state

    def venue_alert(self, alert: VenueAlert, action: str) -> None:
        now = self._clock.now()
        source = str(alert.details.get("source", "abp"))  # an MM emergency is named (docs/reference/mm.md)
        reason = alert.reason if source == "abp" else f"{source.upper()}: {alert.reason or 'not given'}"
        if alert.kind is VenueAlertKind.EMERGENCY_ON:
            self.notifier.send(Kind.EMERGENCY_ON, events.emergency_on(reason, at=now, zone=self._zone,
                                                                      action=action))
        elif alert.kind is VenueAlertKind.EMERGENCY_OFF:
            self.notifier.send(Kind.EMERGENCY_OFF, events.emergency_off(reason, at=now, zone=self._zone))

    def breaker_opened(self, breaker: Breaker) -> None:
        snap = breaker.snapshot()
        detail = f"{snap['consecutive_failures']} consecutive failures, {snap['window_samples']} in the window"
        self._publish("alert", {"alert": "breaker_open", "breaker": breaker.name, "detail": detail,
                                "cooldown_seconds": breaker.cooldown_seconds})
        self.notifier.send(Kind.BREAKER_OPEN, events.breaker_open(
            breaker.name, detail, at=self._clock.now(), zone=self._zone, cooldown_seconds=breaker.cooldown_seconds))

    def decided(self, decision: Decision) -> None:
        if decision.verdict is Verdict.REJECTED:
            self.notifier.declined(self._clock.now(), decision.reason or "")

    def daily_summary(self, ledger: Ledger, day: str, day_pnl: Decimal, currency: str) -> None:
        """The trading day `day` (YYYY-MM-DD in the zone): its settled PnL, bets and ROI."""
        zone = ZoneInfo(self._zone)
        first = date.fromisoformat(day)
        start = datetime.combine(first, time(0), tzinfo=zone)
        end = datetime.combine(first + timedelta(days=1), time(0), tzinfo=zone)
        rows = ledger.settlements(since=start, until=end)  # the day's only: a ledger holds months
        staked = sum((r.stake for r in rows), Decimal(0))
        roi = (sum((r.pnl for r in rows), Decimal(0)) / staked) if staked else None
        self.notifier.send(Kind.DAILY_PNL, events.daily_pnl(day, day_pnl, len(rows), roi, currency,
                                                            at=self._clock.now(), zone=self._zone))

