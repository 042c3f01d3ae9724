"""A ledger holding given orders and bets, adopted by a real paper venue behind a running
executor, as after a restart: what the settlement tests settle from."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path

from bot.clock import ReplayClock
from bot.execution.config import ExecutionConfig, PaperConfig
from bot.execution.executor import Executor
from bot.ledger.models import BetRow, OrderRow
from bot.ledger.store import Ledger
from bot.sim.adapters import PaperDriver
from bot.sim.paper import PaperVenue
from bot.types import ExecutionEvent


class NoQuotes:
    def quotes(self, order: dict) -> dict[str, float]:
        return {}


@asynccontextmanager
async def paper_ledger(path: Path, clock: ReplayClock, rows: Iterable[tuple[OrderRow, BetRow]],
                       commission: Mapping[str, Decimal] | None = None) -> AsyncIterator[tuple[Ledger, PaperDriver]]:
    ledger = Ledger(path, clock=clock)
    for order, bet in rows:
        ledger.add_orders([order])
        ledger.upsert_bet(bet)
    venue = PaperVenue(clock, NoQuotes(), PaperConfig())
    driver = PaperDriver(venue, ledger)  # adopts the ledger's orders and bets, as after a restart

    async def on_event(event: ExecutionEvent) -> None:
        pass  # the executor writes settlements to the ledger; that is what the tests read

    executor = Executor(venue, ledger, clock, ExecutionConfig(), on_event, commission=commission)
    await executor.start()
    try:
        yield ledger, driver
    finally:
        await executor.stop(cancel_pending=False)
        ledger.close()
