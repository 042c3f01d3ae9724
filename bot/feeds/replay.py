"""Replays a recording (ours, or The Odds API snapshot file) through the live decoders.

Event time is the clock: before each record's events are emitted a `ReplayClock` is advanced
to the record's time (its receive time, or the snapshot timestamp), so a replay is
deterministic (docs/architecture.md, Invariants > Two clocks). A record's data arrives as the
live decoders deliver it: one `OddsBatch` per The Odds API snapshot or batched BoltOdds frame,
applied whole before any strategy runs (docs/architecture.md, Pipeline).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import orjson
from loguru import logger

from bot.clock import Clock, ReplayClock
from bot.feeds.base import EmitFn, FeedStats
from bot.feeds.boltodds_decode import BoltOddsDecoder, BoltOddsStream
from bot.feeds.oddsapi_decode import OddsApiDiffer
from bot.feeds.recording import Record, RecordFormat, count_records, read_records
from bot.types import FeedEvent, FeedStatus, OddsBatch

YIELD_EVERY = 200  # outcome updates between yields to the loop when replaying as fast as possible


class ReplayFeed:
    """Plays `path` at `speed` (0 = as fast as possible, 1 = original pace, N = N x) and returns
    at its end. `progress(done, total)` is called after each record. `stats` counts per source.

    Raises (from `run`):
        ValueError: the file format cannot be told (fmt="auto").
    """

    name = "replay"

    def __init__(
        self,
        path: Path,
        clock: Clock,
        fmt: RecordFormat = "auto",
        speed: float = 0.0,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self.path, self.clock, self.fmt, self.speed, self.progress = path, clock, fmt, speed, progress
        self._bolt = BoltOddsStream(BoltOddsDecoder())
        self._oddsapi = OddsApiDiffer()
        self.stats: dict[str, FeedStats] = {"boltodds": self._bolt.stats, "oddsapi": self._oddsapi.stats}

    def _decode(self, record: Record) -> list[FeedEvent]:
        if record.status is not None:
            return [FeedStatus(record.source, record.ts, connected=False, stale=True, detail=record.status)]
        if record.source == "boltodds" and record.raw is not None:
            return self._bolt.decode(record.raw, record.ts)
        if record.source == "oddsapi":
            body = record.parsed if record.raw is None else _loads(record.raw)
            return self._oddsapi.snapshot(body, record.ts)
        logger.warning("replay: record of unknown source {!r} at {} skipped", record.source, record.ts)
        return []

    async def run(self, emit: EmitFn) -> None:
        total = count_records(self.path) if self.progress else 0
        loop = asyncio.get_running_loop()
        started_wall, first_ts = loop.time(), None
        since_yield = 0
        for done, record in enumerate(read_records(self.path, self.fmt), 1):
            first_ts = first_ts or record.ts
            if self.speed > 0:
                await self._pace(record.ts, first_ts, started_wall)
            if isinstance(self.clock, ReplayClock):
                self.clock.advance(record.ts)
            for event in self._decode(record):
                await emit(event)
                since_yield += len(event.updates) if type(event) is OddsBatch else 1
            if since_yield >= YIELD_EVERY:
                since_yield = 0
                await asyncio.sleep(0)
            if self.progress:
                self.progress(done, total)
        logger.info("replay of {} finished: {}", self.path, {k: dict(v) for k, v in self.stats.items()})

    async def _pace(self, ts: datetime, first: datetime, started_wall: float) -> None:
        due = started_wall + (ts - first).total_seconds() / self.speed
        delay = due - asyncio.get_running_loop().time()
        if delay > 0:
            await asyncio.sleep(delay)


def _loads(raw: str) -> object:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw  # the differ counts it as a malformed snapshot
