"""Trading control: the trading state machine, its persisted record, the kill-switch file and the
trading day (docs/architecture.md, "Risk" and Invariants > Fail closed).

    ACTIVE <--reduce()/resume()--> REDUCING
    ACTIVE | REDUCING --halt(): operator, loss limit, drawdown, emergency, kill switch, venue--> HALTED
    HALTED --resume() by the operator (CLI, MQTT)--> ACTIVE
    HALTED | REDUCING --the emergency that caused it clears, risk.emergency_resume: auto--> ACTIVE
HALTED is left by an operator resume, refused while the venue emergency is active or the kill file
exists. A resume acknowledges the losses so far: the day's loss limit counts from the resume point
and the drawdown peak is reset to current equity (otherwise the next check would halt again).

The venue emergency (`set_emergency`): ABP has two tiers (docs/reference/abp.md §8.3), a soft pause
that blocks new orders and recovers by itself, and an emergency that also cancels pending orders
and needs a manual resume; both arrive on the one `emergency` channel, so the bot cannot tell them
apart and takes the cautious reading. While it is active every signal is rejected EMERGENCY (ABP
declines orders anyway) and an operator resume is refused. On start it moves to HALTED (pending
orders cancelled, `risk.emergency_action: halt`) or REDUCING (pending orders left to the venue,
`reduce`). When it clears, the state stays until an operator resumes (`risk.emergency_resume:
operator`), or, with `auto`, goes back to ACTIVE if the emergency is still what put it there (a
halt by the loss limit or an operator in the meantime stays); an auto resume acknowledges no loss.

Emergency sources: ABP's `emergency` channel and, with `mm.enabled`, the 55-Tech MM API's
(docs/reference/mm.md, "Emergency"). Each source is kept apart (`emergency_sources`): the emergency
is active while any source is, its reason names the source ("venue emergency: MM: Manual
trigger"; ABP's reason as it was), and it clears, with the rules above, when the last one clears.

The kill switch (SIGUSR1 through `kill()`, or a `<state_dir>/KILL` file newly seen by `watch()`)
halts and then calls the `on_kill` callbacks (the MM link's cancel-all), whatever the state was.

The record lives in the ledger under key `risk` (Ledger.get_state/set_state) so it survives a
restart; `rev` increases on every change so a running bot notices a change made by the CLI.
`TradingControl` is the one implementation of these rules; the RiskManager and `bot risk` both
use it, with the same `trading_day`.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, time
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from loguru import logger

from bot.clock import Clock

if TYPE_CHECKING:
    from bot.ledger.store import Ledger

STATE_KEY = "risk"
KILL_FILE = "KILL"
ZERO = Decimal(0)
EMERGENCY = "venue emergency: "  # reason prefix of a state the emergency caused

HaltCallback = Callable[[str], Awaitable[None] | None]


def trading_day(now: datetime, zone: ZoneInfo | str) -> tuple[str, datetime]:
    """The trading day `now` falls in, in `zone`: (ISO date there, its midnight in UTC)."""
    tz = ZoneInfo(zone) if isinstance(zone, str) else zone
    local = now.astimezone(tz)
    return local.date().isoformat(), datetime.combine(local.date(), time(0), tz).astimezone(UTC)


class TradingState(StrEnum):
    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"  # only signals that reduce an open position
    HALTED = "HALTED"  # nothing new; pending orders cancelled


class ResumeRefused(RuntimeError):
    """resume() while the emergency is active or the kill file exists."""


@dataclass(slots=True)
class TradingRecord:
    """Persisted risk state. Money as Decimal; `day` is the ISO date in the configured zone."""

    state: TradingState = TradingState.ACTIVE
    reason: str = ""
    since: str = ""  # ISO time of the last transition
    emergency: bool = False
    emergency_reason: str = ""
    emergency_sources: dict[str, str] = field(default_factory=dict)  # source -> its reason, while active
    peak_equity: Decimal = ZERO
    day: str = ""
    day_baseline: Decimal = ZERO  # day PnL acknowledged by the last resume on `day`
    rev: int = 0
    history: list[dict[str, str]] = field(default_factory=list)  # last transitions, newest last

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["state"] = self.state.value
        data["peak_equity"] = str(self.peak_equity)
        data["day_baseline"] = str(self.day_baseline)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> TradingRecord:
        if not data:
            return cls()
        return cls(
            state=TradingState(data.get("state", TradingState.ACTIVE)),
            reason=str(data.get("reason", "")),
            since=str(data.get("since", "")),
            emergency=bool(data.get("emergency", False)),
            emergency_reason=str(data.get("emergency_reason", "")),
            emergency_sources=_sources(data),
            peak_equity=Decimal(str(data.get("peak_equity", "0"))),
            day=str(data.get("day", "")),
            day_baseline=Decimal(str(data.get("day_baseline", "0"))),
            rev=int(data.get("rev", 0)),
            history=list(data.get("history", [])),
        )

    def transition(self, to: TradingState, reason: str, at: datetime) -> bool:
        """Move to `to`; returns True if the state changed. HALTED -> REDUCING is not a legal
        move (only resume leaves HALTED) and is ignored."""
        if to is self.state or (self.state is TradingState.HALTED and to is TradingState.REDUCING):
            return False
        step = {"from": self.state.value, "to": to.value, "reason": reason, "at": at.isoformat()}
        self.history = [*self.history[-19:], step]
        self.state = to
        self.reason = reason
        self.since = at.isoformat()
        self.rev += 1
        return True

    def resume(self, at: datetime, *, kill_file: bool, equity: Decimal, day: str, day_pnl: Decimal) -> None:
        """Operator resume: back to ACTIVE, acknowledging today's losses and the drawdown.

        Raises:
            ResumeRefused: emergency active or kill file present.
        """
        if self.emergency:
            raise ResumeRefused(f"venue emergency is active ({self.emergency_reason}); wait for it to clear")
        if kill_file:
            raise ResumeRefused("kill switch file exists; delete it first")
        self.peak_equity = equity
        self.day = day
        self.day_baseline = day_pnl
        self.transition(TradingState.ACTIVE, "operator resume", at)
        self.rev += 1  # also when already ACTIVE: the baselines changed


class TradingControl:
    """The trading state of one ledger: transitions (persisted at once), the kill file
    `<state_dir>/KILL`, the emergency flag, and the day's PnL and equity peak the limits read.

    Args:
        ledger: holds the record (key `risk`) and the settled PnL.
        clock: stamps transitions and places `now` in a trading day.
        zone: IANA time zone of the trading day (`risk.day_timezone`).
        state_dir: the folder of the kill file.
        emergency_action: "halt" or "reduce" when the venue emergency starts (`risk.emergency_action`).
        emergency_resume: "operator" or "auto" when it clears (`risk.emergency_resume`).
    """

    def __init__(self, ledger: Ledger, clock: Clock, *, zone: str, state_dir: Path,
                 emergency_action: str = "halt", emergency_resume: str = "operator") -> None:
        self._ledger = ledger
        self._clock = clock
        self._emergency_action = emergency_action
        self._emergency_resume = emergency_resume
        self.zone = ZoneInfo(zone)
        self.kill_path = Path(state_dir) / KILL_FILE
        self.record = TradingRecord.from_dict(ledger.get_state(STATE_KEY))
        self._rev_seen = self.record.rev  # the stored rev this process last read or wrote
        self._callbacks: list[HaltCallback] = []
        self._kill_callbacks: list[HaltCallback] = []
        self._kill_seen = False  # the kill file existed at the last watch()
        self._tasks: set[asyncio.Task[Any]] = set()  # running async callbacks, kept from GC
        # the limits' running sums (Ledger.settled_pnl keeps them current), restored here at start
        ledger.settled_pnl()
        self.day_pnl()

    @property
    def state(self) -> TradingState:
        return self.record.state

    @property
    def reason(self) -> str:
        """Why the trading state is what it is (the last transition's reason)."""
        return self.record.reason

    def kill_file_present(self) -> bool:
        return self.kill_path.exists()

    def on_halt(self, callback: HaltCallback) -> None:
        """Called with the reason on every transition into HALTED (engine cancels pending orders)."""
        self._callbacks.append(callback)

    def on_kill(self, callback: HaltCallback) -> None:
        """Called with the reason each time the kill switch fires (after its halt)."""
        self._kill_callbacks.append(callback)

    # -- transitions -----------------------------------------------------------------------

    def kill(self, reason: str) -> None:
        """The kill switch: halt, then fire the `on_kill` callbacks (also when already HALTED)."""
        self.halt(reason)
        self._fire(self._kill_callbacks, reason, "on_kill")

    def halt(self, reason: str) -> None:
        self._claim(TradingState.HALTED, reason)
        if self.record.transition(TradingState.HALTED, reason, self._clock.now()) and self._persist():
            self._fire_halt(reason)

    def reduce(self, reason: str) -> None:
        self._claim(TradingState.REDUCING, reason)
        if self.record.transition(TradingState.REDUCING, reason, self._clock.now()):
            self._persist()

    def _claim(self, state: TradingState, reason: str) -> None:
        """Another cause (operator, limit, kill switch) for the state the emergency already put
        us in becomes its reason, so the emergency's clearing no longer resumes it."""
        if self.state is state and self.record.reason.startswith(EMERGENCY) and not reason.startswith(EMERGENCY):
            self.record.reason = reason
            self.record.rev += 1
            self._persist()

    def resume(self) -> None:
        """Operator resume to ACTIVE, acknowledging today's loss and the drawdown.

        Raises:
            ResumeRefused: the emergency is active or the kill file exists.
        """
        day, day_pnl = self.day_pnl()
        self.record.resume(self._clock.now(), kill_file=self.kill_file_present(),
                           equity=self._ledger.settled_pnl(), day=day, day_pnl=day_pnl)
        self._persist()

    def set_emergency(self, active: bool, reason: str, source: str = "abp") -> None:
        """A venue's emergency channel (ABP docs, WebSocket > Channels > Global channels,
        `emergency`; the two tiers of docs/reference/abp.md §8.3; the MM's, docs/reference/mm.md):
        on start HALTED or REDUCING as `emergency_action` says; on the last source's clear a
        resume only with `emergency_resume` "auto" (see the module docstring). A repeat of a
        source's current state changes nothing."""
        sources = dict(self.record.emergency_sources)
        if active == (source in sources):
            return
        if active:
            sources[source] = reason
        else:
            del sources[source]
        self.record.emergency_sources = sources
        self.record.emergency = bool(sources)
        self.record.emergency_reason = "; ".join(_label(s, r) for s, r in sources.items()) if sources else reason
        self.record.rev += 1
        self._persist()
        if active:
            if self._emergency_action == "halt":
                self.halt(f"{EMERGENCY}{_label(source, reason)}")
            else:
                self.reduce(f"{EMERGENCY}{_label(source, reason)}")
            return
        if sources:
            logger.warning("risk: {} emergency cleared ({}); still active: {}", source, reason or "no reason given",
                           self.record.emergency_reason)
            return
        logger.warning("risk: venue emergency cleared ({}); trading state {} ({})", _label(source, reason or
                       "no reason given"), self.state.value,
                       "resuming" if self._auto_resumes() else "an operator resumes")
        if self._auto_resumes():
            self.record.transition(TradingState.ACTIVE, f"venue emergency cleared: {_label(source, reason)}",
                                   self._clock.now())
            self._persist()

    def _auto_resumes(self) -> bool:
        """`emergency_resume` auto, the state is still the emergency's, and no kill file."""
        return (self._emergency_resume == "auto" and self.state is not TradingState.ACTIVE
                and self.record.reason.startswith(EMERGENCY) and not self.kill_file_present())

    def new_day(self) -> None:
        """Day boundary: the loss limit counts anew (a HALTED state stays until a resume)."""
        day, _ = trading_day(self._clock.now(), self.zone)
        if self.record.day != day:
            self.record.day = day
            self.record.day_baseline = ZERO
            self._persist()

    def sync(self) -> None:
        """Adopt a record the CLI wrote to the ledger (newer `rev`); a halt fires on_halt. Reads
        the record only when another process wrote to the ledger (`Ledger.changed_elsewhere`),
        so the per-signal call costs microseconds."""
        if self._ledger.changed_elsewhere():
            self._adopt(TradingRecord.from_dict(self._ledger.get_state(STATE_KEY)))

    def _adopt(self, stored: TradingRecord) -> bool:
        """Take `stored` when another process wrote it since we last looked; True if taken."""
        if stored.rev <= self._rev_seen:
            return False
        was = self.record.state
        self.record, self._rev_seen = stored, stored.rev
        if stored.state is TradingState.HALTED and was is not TradingState.HALTED:
            self._fire_halt(stored.reason)
        return True

    def watch(self) -> None:
        """What a running bot checks every half second, signal or not (the engine's
        `control_watch` job, docs/architecture.md "Risk"): adopt the ledger's record (`bot risk
        halt/resume` from another process, via `sync`), then turn an existing kill file into a
        halt. Either halt fires on_halt, which cancels the pending orders."""
        self.sync()
        present = self.kill_file_present()
        if self.record.state is not TradingState.HALTED and present:
            self.halt(f"kill switch file {self.kill_path}")
        if present and not self._kill_seen:
            self._fire(self._kill_callbacks, f"kill switch file {self.kill_path}", "on_kill")
        self._kill_seen = present

    # -- figures the limits read -----------------------------------------------------------

    def day_pnl(self) -> tuple[str, Decimal]:
        """(trading day, settled PnL since its start)."""
        day, start = trading_day(self._clock.now(), self.zone)
        return day, self._ledger.settled_pnl(since=start)

    def day_loss(self) -> tuple[str, Decimal]:
        """(trading day, loss since the day began or since a resume acknowledged it that day)."""
        day, day_pnl = self.day_pnl()
        baseline = self.record.day_baseline if self.record.day == day else ZERO
        return day, baseline - day_pnl

    def equity_and_peak(self) -> tuple[Decimal, Decimal]:
        """(settled equity, its peak); a new peak is persisted."""
        equity = self._ledger.settled_pnl()
        if equity > self.record.peak_equity:
            self.record.peak_equity = equity
            self._persist()
        return equity, self.record.peak_equity

    def snapshot(self) -> dict[str, Any]:
        """The trading state for status output (money as strings)."""
        rec = self.record
        return {
            "state": rec.state.value, "reason": rec.reason, "since": rec.since,
            "emergency": rec.emergency, "emergency_reason": rec.emergency_reason,
            "kill_file": self.kill_file_present(), "peak_equity": str(rec.peak_equity),
        }

    def pnl(self) -> dict[str, str]:
        """Settled PnL of the trading day and overall, for status output."""
        day, day_pnl = self.day_pnl()
        return {"timezone": self.zone.key, "day": day, "day_pnl": str(day_pnl),
                "equity": str(self._ledger.settled_pnl())}

    # -- internals -------------------------------------------------------------------------

    def _persist(self) -> bool:
        """Write our record, unless another process (`bot risk`) wrote since we last looked:
        then its record is adopted first and, of our change, only a halt or an emergency is
        re-applied on top of it (never lose a halt; drop bookkeeping such as a new peak, which
        is recomputed). Every write takes the next rev, so the other side sees it. True when our
        record was written as it was."""
        mine = self.record
        stored = TradingRecord.from_dict(self._ledger.get_state(STATE_KEY))
        if self._adopt(stored):
            for source, why in mine.emergency_sources.items():
                if source not in self.record.emergency_sources:
                    self.set_emergency(True, why, source)
            if mine.state is TradingState.HALTED and self.record.state is not TradingState.HALTED:
                self.halt(mine.reason)
            return False
        mine.rev = max(mine.rev, stored.rev + 1)
        if not self._ledger.set_state(STATE_KEY, mine.to_dict(), below_rev=mine.rev):
            return self._persist()  # another instance wrote in between: adopt theirs, then re-apply
        self._rev_seen = mine.rev
        return True

    def _fire_halt(self, reason: str) -> None:
        logger.warning("risk: trading HALTED: {}", reason)
        self._fire(self._callbacks, reason, "on_halt")

    def _fire(self, callbacks: list[HaltCallback], reason: str, what: str) -> None:
        for cb in callbacks:
            try:
                result = cb(reason)
                if inspect.isawaitable(result):
                    self._schedule(result)
            except Exception:  # noqa: BLE001 - one failing callback must not stop the halt or the others
                logger.opt(exception=True).error("{} callback failed", what)

    def _schedule(self, awaitable: Awaitable[Any]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside the event loop (tests, tools)
            asyncio.run(_awaited(awaitable))
            return
        task = loop.create_task(_awaited(awaitable))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _label(source: str, reason: str) -> str:
    """An emergency reason with its source named; ABP's (the venue's own) as it always read."""
    return reason if source == "abp" else f"{source.upper()}: {reason}"


def _sources(data: dict[str, Any]) -> dict[str, str]:
    """`emergency_sources` of a stored record; a record from before sources were kept, with its
    emergency on, had it from ABP."""
    sources = data.get("emergency_sources")
    if isinstance(sources, dict):
        return {str(k): str(v) for k, v in sources.items()}
    return {"abp": str(data.get("emergency_reason", ""))} if data.get("emergency") else {}


async def _awaited(awaitable: Awaitable[Any]) -> None:
    try:
        await awaitable
    except Exception:  # noqa: BLE001 - logged; a failing callback must not end the event loop
        logger.opt(exception=True).error("on_halt callback failed")
