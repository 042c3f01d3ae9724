"""Replays a recording (ours, or The Odds API snapshot file) through the live decoders.

Event time is the clock: before each record's events are emitted a `ReplayClock` is advanced
to the record's time (its receive time, or the snapshot timestamp), so a replay is
deterministic (docs/architecture.md, Invariants > Two clocks). A record's data arrives as the
live decoders deliver it: one `OddsBatch` per The Odds API snapshot or batched BoltOdds frame,
and one per board record (a historical board `bot data convert` wrote; bot/feeds/board.py),
applied whole before any strategy runs (docs/architecture.md, Pipeline).

Odds format: The Odds API bodies are read in the record's own `odds_format` when it states one
(our recordings), else in `odds_format` (`feeds.replay.odds_format`, default "american": the
historical snapshot files; bot/feeds/recording.py). It is never guessed from the numbers.

A damaged file (bot/feeds/recording.py, `RecordReader`) replays what can be read: every record
before damage that cannot be read past is emitted, lines that are not records are skipped and
counted. The replay then fails loudly, and a replay is finite, so the engine does not restart
it: the run ends non-zero with one line naming the file and the offset (bot/engine/core.py,
`Engine.run`). `run` raises `DamagedFile` at unreadable damage, or at the end when lines were
skipped or a record could not be decoded (a decoder bug, or a board record whose text is not a
board: logged with its traceback and counted as "decoder_error" in `stats["replay"]`). Bad input
inside a readable record (an implausible price, a malformed event) is the decoders' business:
dropped, counted, and not a failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from loguru import logger

from bot.clock import Clock, ReplayClock
from bot.feeds.base import EmitFn, FeedStats, loads_lenient, truncate
from bot.feeds.board import BOARD_SOURCE, BoardDecoder
from bot.feeds.boltodds_decode import BoltOddsDecoder, BoltOddsStream
from bot.feeds.oddsapi_decode import OddsApiDiffer, OddsFormat
from bot.feeds.recording import DamagedFile, Record, RecordFormat, RecordReader, count_records
from bot.types import FeedEvent, FeedStatus, OddsBatch

YIELD_EVERY = 200  # outcome updates between yields to the loop when replaying as fast as possible
_ODDS_FORMATS: dict[str | None, OddsFormat] = {"american": "american", "decimal": "decimal"}


class ReplayFeed:
    """Plays `path` at `speed` (0 = as fast as possible, 1 = original pace, N = N x) and returns
    at its end. `progress(done, total)` is called after each record. `stats` counts per source
    ("boltodds", "oddsapi", "board": boards as "frames" and their "updates") and for the file
    itself ("replay": unreadable lines, decoder errors).

    Raises (from `run`):
        DamagedFile: see the module docstring.
    """

    name = "replay"
    finite = True  # bot.feeds.base.Feed: a replay ends; its failure is not restarted

    def __init__(
        self,
        path: Path,
        clock: Clock,
        fmt: RecordFormat = "auto",
        speed: float = 0.0,
        progress: Callable[[int, int], None] | None = None,
        odds_format: OddsFormat = "american",
    ) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self.path, self.clock, self.fmt, self.speed, self.progress = path, clock, fmt, speed, progress
        self.odds_format = odds_format
        self._bolt = BoltOddsStream(BoltOddsDecoder())
        self._oddsapi = OddsApiDiffer(odds_format=odds_format)
        self._board = BoardDecoder()
        self.stats: dict[str, FeedStats] = {
            "boltodds": self._bolt.stats, "oddsapi": self._oddsapi.stats, "board": FeedStats("board"),
            "replay": FeedStats("replay"),
        }

    def _decode(self, record: Record) -> list[FeedEvent]:
        if record.status is not None:
            return [FeedStatus(record.source, record.ts, connected=False, stale=True, detail=record.status)]
        if record.source == "boltodds" and record.raw is not None:
            return self._bolt.decode(record.raw, record.ts)
        if record.source == BOARD_SOURCE:
            self.stats["board"]["frames"] += 1
            if record.raw is None:
                raise ValueError("a board record needs its board as raw text, got null")
            batch = self._board.decode(record.raw, record.ts)  # ValueError: counted as a decoder error by `run`
            self.stats["board"]["updates"] += len(batch.updates)
            return [batch]
        if record.source == "oddsapi":
            self._oddsapi.odds_format = _ODDS_FORMATS.get(record.odds_format, self.odds_format)
            body = record.parsed if record.raw is None else _loads(record.raw)
            return self._oddsapi.snapshot(body, record.ts)
        logger.warning("replay: record of unknown source {!r} at {} skipped", record.source, record.ts)
        return []

    async def run(self, emit: EmitFn) -> None:
        total = count_records(self.path) if self.progress else 0
        reader = RecordReader(self.path, self.fmt, self.stats["replay"])
        loop = asyncio.get_running_loop()
        started_wall, first_ts = loop.time(), None
        since_yield = 0
        first_error: str | None = None
        try:
            for done, record in enumerate(reader, 1):
                first_ts = first_ts or record.ts
                if self.speed > 0:
                    await self._pace(record.ts, first_ts, started_wall)
                if isinstance(self.clock, ReplayClock):
                    self.clock.advance(record.ts)
                try:
                    events = self._decode(record)
                except Exception as exc:  # noqa: BLE001 - a decoder bug: counted, and the replay fails at its end
                    self.stats["replay"]["decoder_error"] += 1
                    why = f"line {reader.lines}: {type(exc).__name__}: {truncate(exc, 120)}"
                    first_error = first_error or why
                    logger.opt(exception=exc).error("replay {}:{}: record could not be decoded", self.path,
                                                    reader.lines)
                    events = []
                for event in events:
                    await emit(event)
                    since_yield += len(event.updates) if type(event) is OddsBatch else 1
                if since_yield >= YIELD_EVERY:
                    since_yield = 0
                    await asyncio.sleep(0)
                if self.progress:
                    self.progress(done, total)
        finally:
            logger.info("replay of {} ended after {} lines: {}", self.path, reader.lines,
                        {k: dict(v) for k, v in self.stats.items()})
        skipped = reader.skipped_error()
        if skipped is not None:
            raise skipped
        if first_error is not None:
            errors = self.stats["replay"]["decoder_error"]
            raise DamagedFile(self.path, reader.lines, 0,
                              f"{self.path}: {errors} record(s) could not be decoded, the first at {first_error}")

    async def _pace(self, ts: datetime, first: datetime, started_wall: float) -> None:
        due = started_wall + (ts - first).total_seconds() / self.speed
        delay = due - asyncio.get_running_loop().time()
        if delay > 0:
            await asyncio.sleep(delay)


def _loads(raw: str) -> object:
    try:
        return loads_lenient(raw)
    except ValueError:
        return raw  # the differ counts it as a malformed snapshot
