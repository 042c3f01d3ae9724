"""The engine drives its collaborators only through `bot.engine.ports`: small stand-ins are
enough to run it, and paper settlement reaches it through the `Settler` port (the end of a
replay moves the trading clock to when every open bet is due, then settles, counting the bets
that could not settle as errors)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.clock import ReplayClock
from bot.config.settings import Settings
from bot.engine.core import Engine
from bot.engine.ports import HaltCallback
from bot.ledger.report import Unresolved
from bot.ledger.store import Ledger
from bot.market.book import OddsBook
from bot.market.mapping import InstrumentMapper
from bot.types import Decision, ExecutionEvent, Instrument, OddsUpdate, OrderIntent, Signal

T0 = datetime(2025, 11, 16, 12, 0, tzinfo=UTC)


class Strategies:
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def on_odds(self, update: OddsUpdate) -> list[Signal]:
        return []
    async def on_markets(self, changes: Any) -> list[Signal]:
        return []
    async def on_timer(self) -> list[Signal]:
        return []
    async def on_execution_event(self, event: ExecutionEvent) -> None: ...
    def reload_params(self, name: str, params: dict[str, Any]) -> None: ...


class Control:
    state = "ACTIVE"
    def on_halt(self, callback: HaltCallback) -> None: ...
    def halt(self, reason: str) -> None: ...
    def resume(self) -> None: ...
    def watch(self) -> None: ...


class Risk:
    async def evaluate_many(self, items: Sequence[tuple[Signal, Instrument | None]]) -> list[Decision]:
        return []
    def on_execution_event(self, event: ExecutionEvent) -> None: ...
    @property
    def control(self) -> Control:
        return Control()
    def snapshot(self) -> dict[str, Any]:
        return {}
    def sweep(self) -> int:
        return 0
    def daily_reset(self) -> None: ...


class Execution:
    async def start(self) -> None: ...
    async def stop(self, cancel_pending: bool) -> None: ...
    async def submit(self, intents: Sequence[OrderIntent]) -> list[str]:
        return []
    async def reconcile(self) -> None: ...
    async def cancel_all(self) -> int:
        return 0


class Settler:
    """Two open bets can never settle; every bet is due at `due`."""

    def __init__(self, clock: ReplayClock, due: datetime | None) -> None:
        self.clock, self.due = clock, due
        self.settled_at: list[datetime] = []

    def due_by(self) -> datetime | None:
        return self.due

    async def settle_due(self) -> int:
        self.settled_at.append(self.clock.now())
        return 2

    def unresolved(self) -> list[Unresolved]:
        return []


@pytest.mark.parametrize("due", [T0 + timedelta(hours=30), None])
async def test_end_of_replay_settles_when_every_bet_is_due(tmp_path: Path, due: datetime | None) -> None:
    clock = ReplayClock(T0)
    settler = Settler(clock, due)
    engine = Engine(Settings(), clock=clock, ledger=Ledger(tmp_path / "bot.db", clock=clock), book=OddsBook(clock),
                    feeds=[], mapper=InstrumentMapper(), strategies=Strategies(), risk=Risk(),
                    executor=Execution(), settler=settler)
    stats = await engine.run()
    assert settler.settled_at == [due or T0]  # the clock moved to `due`, or not at all
    assert stats.errors == 2
