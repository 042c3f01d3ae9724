"""Plays historical odds files through the engine as a finite feed (bot/feeds/base.py `Feed`).

Several files are merged on event time (a stable merge: boards of equal time keep the files'
order). Before each board is emitted the `ReplayClock` is advanced to its time, so a backtest is
deterministic and the same strategy code runs as live (docs/architecture.md, Invariants > Two
clocks). A `HistoryError` from a reader ends the feed, and so the run, with its one line.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Callable, Iterator, Sequence

from loguru import logger

from bot.clock import Clock, ReplayClock
from bot.feeds.base import EmitFn, FeedStats
from bot.feeds.history.base import HistoryReader
from bot.types import OddsBatch

YIELD_EVERY = 200  # outcome updates between yields to the loop
PROGRESS_EVERY = 0.2  # seconds (wall) between progress reports: asking every reader costs a tell() each


class HistoryFeed:
    """Emits the boards of `readers`, merged in time order; `progress(done, total)` is called
    with the readers' summed progress units every `PROGRESS_EVERY` seconds and at the end (not
    per board: a Betfair loop set of 60 files spent a third of its run asking for it)."""

    name = "history"
    finite = True

    def __init__(self, readers: Sequence[HistoryReader], clock: Clock,
                 progress: Callable[[int, int], None] | None = None) -> None:
        self.readers, self.clock, self.progress = list(readers), clock, progress
        self.stats: dict[str, FeedStats] = {f"{r.name}:{r.path.name}": r.stats for r in self.readers}

    def _boards(self) -> Iterator[OddsBatch]:
        if len(self.readers) == 1:
            return self.readers[0].batches()
        return heapq.merge(*(r.batches() for r in self.readers), key=lambda b: b.received_at)

    def _progress(self) -> tuple[int, int]:
        done = total = 0
        for reader in self.readers:
            d, t = reader.progress
            done, total = done + d, total + t
        return done, total

    async def run(self, emit: EmitFn) -> None:
        since_yield, report_at = 0, time.monotonic() + PROGRESS_EVERY
        try:
            for batch in self._boards():
                if isinstance(self.clock, ReplayClock):
                    self.clock.advance(batch.received_at)
                await emit(batch)
                since_yield += len(batch.updates) or 1
                if since_yield >= YIELD_EVERY:
                    since_yield = 0
                    await asyncio.sleep(0)
                    if self.progress and time.monotonic() >= report_at:
                        self.progress(*self._progress())
                        report_at = time.monotonic() + PROGRESS_EVERY
            if self.progress:
                self.progress(*self._progress())
        finally:
            logger.info("history replay ended: {}", {k: dict(v) for k, v in self.stats.items()})
