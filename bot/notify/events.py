"""What the bot tells its operators, as plain-text messages (docs/mqtt.md lists the same alerts on
the `alert` topic: emergency, breaker open, halt, loss limit).

The helpers are pure: plain arguments in (reason strings, Decimal money, counts, an aware time
and the trading day's zone), a `Message` out. Every message names its units (decimal odds, the
order currency) and shows its time in UTC and in the local zone, e.g.

    halt("daily loss limit 1000 EUR reached", at=t, zone="Europe/London")
    -> Message(title="Trading HALTED",
               body="Reason: daily loss limit 1000 EUR reached\\nNew orders are refused ...\\n"
                    "At: 2025-11-16 18:00:00 UTC (18:00:00 GMT, Europe/London)",
               severity=Severity.FAILURE)
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo


class Kind(StrEnum):
    """A kind of notification; each can be switched off and is rate-limited on its own."""

    START = "start"
    STOP = "stop"
    HALT = "halt"
    RESUME = "resume"
    EMERGENCY_ON = "emergency_on"
    EMERGENCY_OFF = "emergency_off"
    BREAKER_OPEN = "breaker_open"
    DECLINE_BURST = "decline_burst"
    DAILY_PNL = "daily_pnl"


DESCRIPTIONS: dict[Kind, str] = {
    Kind.START: "the bot started (mode, instance)",
    Kind.STOP: "the bot stopped (reason)",
    Kind.HALT: "trading moved to HALTED (operator, loss limit, drawdown, emergency, kill switch)",
    Kind.RESUME: "trading resumed to ACTIVE (operator, or the emergency cleared with auto resume)",
    Kind.EMERGENCY_ON: "the venue's emergency channel reported an emergency",
    Kind.EMERGENCY_OFF: "the venue's emergency cleared",
    Kind.BREAKER_OPEN: "a circuit breaker (global or a bookmaker's) opened",
    Kind.DECLINE_BURST: "many signals were rejected within a short window",
    Kind.DAILY_PNL: "the trading day's settled PnL, once a day",
}

KINDS: tuple[str, ...] = tuple(k.value for k in Kind)


class Severity(StrEnum):
    """Apprise's notification types (`apprise.NotifyType` values)."""

    INFO = "info"
    SUCCESS = "success"
    WARNING = "warning"
    FAILURE = "failure"


@dataclass(frozen=True, slots=True)
class Message:
    """One notification: a one-line title and a plain-text body (lines separated by newlines)."""

    title: str
    body: str
    severity: Severity = Severity.INFO


def stamp(at: datetime, zone: ZoneInfo | str = "UTC") -> str:
    """`at` in UTC and in `zone`: "2025-11-16 18:00:00 UTC (19:00:00 CET, Europe/Berlin)".
    A naive `at` is read as UTC."""
    tz = ZoneInfo(zone) if isinstance(zone, str) else zone
    utc = (at if at.tzinfo is not None else at.replace(tzinfo=UTC)).astimezone(UTC)
    text = f"{utc:%Y-%m-%d %H:%M:%S} UTC"
    if tz.key == "UTC":
        return text
    local = utc.astimezone(tz)
    day = "" if local.date() == utc.date() else f"{local:%Y-%m-%d} "
    return f"{text} ({day}{local:%H:%M:%S} {local.tzname()}, {tz.key})"


def _body(*lines: str, at: datetime, zone: ZoneInfo | str) -> str:
    return "\n".join([*(line for line in lines if line), f"At: {stamp(at, zone)}"])


def start(*, at: datetime, zone: ZoneInfo | str = "UTC", mode: str = "", detail: str = "") -> Message:
    """The bot started; `mode` e.g. "live" or "paper"."""
    return Message("Bot started", _body(f"Mode: {mode}" if mode else "", detail, at=at, zone=zone), Severity.INFO)


def stop(*, at: datetime, zone: ZoneInfo | str = "UTC", reason: str = "") -> Message:
    """The bot stopped (a clean shutdown or a fatal error named in `reason`)."""
    return Message("Bot stopped", _body(f"Reason: {reason}" if reason else "", at=at, zone=zone), Severity.WARNING)


def halt(reason: str, *, at: datetime, zone: ZoneInfo | str = "UTC") -> Message:
    """Trading moved to HALTED (bot/risk/control.py); `reason` as the TradingRecord holds it."""
    return Message("Trading HALTED", _body(
        f"Reason: {reason or 'not given'}",
        "New orders are refused and pending orders cancelled until an operator resumes "
        "(`bot risk resume` or the MQTT resume command).",
        at=at, zone=zone), Severity.FAILURE)


def resume(reason: str, *, at: datetime, zone: ZoneInfo | str = "UTC") -> Message:
    """Trading back to ACTIVE; `reason` e.g. "operator resume" or "venue emergency cleared: ..."."""
    return Message("Trading resumed", _body(f"Reason: {reason or 'not given'}", at=at, zone=zone), Severity.SUCCESS)


def emergency_on(reason: str, *, at: datetime, zone: ZoneInfo | str = "UTC", action: str = "halt") -> Message:
    """The venue's emergency started; `action` is `risk.emergency_action` ("halt" or "reduce")."""
    effect = ("trading HALTED, pending orders cancelled" if action == "halt"
              else "trading REDUCING: only position-reducing orders")
    return Message("Venue EMERGENCY", _body(
        f"Reason: {reason or 'not given'}", f"Every new signal is rejected; {effect}.",
        at=at, zone=zone), Severity.FAILURE)


def emergency_off(reason: str, *, at: datetime, zone: ZoneInfo | str = "UTC", auto_resume: bool = False) -> Message:
    """The venue's emergency cleared; `auto_resume` is `risk.emergency_resume == "auto"`."""
    then = "Trading resumes by itself." if auto_resume else "Trading stays as it is until an operator resumes."
    return Message("Venue emergency cleared", _body(
        f"Reason: {reason or 'not given'}", then, at=at, zone=zone), Severity.WARNING)


def breaker_open(name: str, detail: str, *, at: datetime, zone: ZoneInfo | str = "UTC",
                 cooldown_seconds: float | None = None) -> Message:
    """A circuit breaker opened (bot/risk/breakers.py); `name` is "global" or a bookmaker."""
    scope = "all orders" if name == "global" else f"orders to bookmaker {name}"
    cooldown = (f"One probe order is let through after {cooldown_seconds:g} s."
                if cooldown_seconds is not None else "")
    return Message(f"Circuit breaker OPEN: {name}", _body(
        f"Detail: {detail or 'not given'}", f"Blocks {scope}.", cooldown, at=at, zone=zone), Severity.WARNING)


def decline_burst(count: int, window_seconds: float, *, at: datetime, zone: ZoneInfo | str = "UTC",
                  reasons: dict[str, int] | None = None) -> Message:
    """`count` signals rejected within `window_seconds`; `reasons` counts them by reason code."""
    top = sorted((reasons or {}).items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    by_reason = ", ".join(f"{code} x{n}" for code, n in top)
    return Message("Burst of rejected signals", _body(
        f"{count} signals rejected within {window_seconds:g} s.",
        f"Most frequent reasons: {by_reason}" if by_reason else "",
        at=at, zone=zone), Severity.WARNING)


def daily_pnl(day: str, settled_pnl: Decimal, bets: int, roi: Decimal | None, currency: str, *,
              at: datetime, zone: ZoneInfo | str = "UTC") -> Message:
    """The trading day's summary. `settled_pnl` in `currency` (Decimal), `bets` settled that day,
    `roi` as a fraction of the settled stake (0.05 is +5.00 %; None when nothing was staked)."""
    tz = ZoneInfo(zone) if isinstance(zone, str) else zone
    roi_text = "n/a (nothing settled)" if roi is None else f"{roi * 100:+.2f} %"
    return Message(f"Daily PnL {day}: {settled_pnl:+.2f} {currency}", _body(
        f"Trading day: {day} ({tz.key})",
        f"Settled PnL: {settled_pnl:+.2f} {currency}",
        f"Bets settled: {bets}",
        f"ROI on settled stake: {roi_text}",
        at=at, zone=zone), Severity.SUCCESS if settled_pnl >= 0 else Severity.WARNING)


def next_daily(now: datetime, at: time, zone: ZoneInfo | str) -> datetime:
    """The next moment (UTC, strictly after `now`) the local clock of `zone` shows `at`: when the
    daily summary is due. On a day where `at` does not exist (a DST gap) it is the moment after."""
    tz = ZoneInfo(zone) if isinstance(zone, str) else zone
    local_now = now.astimezone(tz)
    day = local_now.date()
    while True:
        due = datetime.combine(day, at, tz).astimezone(UTC)
        if due > now:
            return due
        day += timedelta(days=1)


class DeclineBurst:
    """Detects bursts of rejected signals: `observe(at)` is True when `threshold` rejections fall
    within `window_seconds` (the window (at - window, at]), once per burst. A burst ends, and the
    detector re-arms, when a full window passes without the threshold being reached again.
    Times are aware datetimes; one earlier than the last seen counts as the last seen."""

    def __init__(self, threshold: int, window_seconds: float) -> None:
        if threshold < 1 or window_seconds <= 0:
            raise ValueError(f"DeclineBurst needs threshold >= 1 and window > 0 (got {threshold}, {window_seconds})")
        self.threshold = threshold
        self.window = timedelta(seconds=window_seconds)
        self._times: deque[datetime] = deque(maxlen=threshold)  # the last `threshold` decide
        self._last_hot: datetime | None = None  # last time the threshold was reached
        self.bursts = 0

    def observe(self, at: datetime) -> bool:
        if self._times and at < self._times[-1]:
            at = self._times[-1]
        armed = self._last_hot is None or at - self._last_hot >= self.window
        self._times.append(at)
        horizon = at - self.window
        while self._times[0] <= horizon:
            self._times.popleft()
        if len(self._times) < self.threshold:
            return False
        self._last_hot = at
        if armed:
            self.bursts += 1
        return armed

    @property
    def count(self) -> int:
        """Rejections inside the current window as of the last observation, at most `threshold`."""
        return len(self._times)
