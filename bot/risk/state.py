"""Trading state machine and its persisted record (issue 5, build point 5).

    ACTIVE <--reduce()/resume()--> REDUCING
    ACTIVE | REDUCING --halt(): operator, loss limit, drawdown, emergency, kill switch--> HALTED
    HALTED --resume() by the operator (CLI, MQTT)--> ACTIVE
HALTED is left ONLY by an operator resume, refused while the venue emergency is active or the kill
file exists. A resume acknowledges the losses so far: the day's loss limit counts from the resume
point and the drawdown peak is reset to current equity (otherwise the next check would halt again).

The record lives in the ledger under key `risk` (Ledger.get_state/set_state) so it survives a
restart; `rev` increases on every change so a running bot notices a change made by the CLI.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

STATE_KEY = "risk"


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
    peak_equity: Decimal = Decimal(0)
    day: str = ""
    day_baseline: Decimal = Decimal(0)  # day PnL acknowledged by the last resume on `day`
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
        self.history = [*self.history[-19:], {"from": self.state.value, "to": to.value, "reason": reason, "at": at.isoformat()}]
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
