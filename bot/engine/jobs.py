"""Periodic engine jobs on the engine's one clock.

Live runs hand the jobs to apscheduler (wall time). Replays cannot: their clock is event time,
so `tick()` is called after every replayed event and runs each job whose next time has passed
on the clock. The same jobs therefore fire at the same event times in every replay run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

# apscheduler 3 ships neither type hints nor a py.typed marker; its classes are used as Any.
from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]
from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]
from loguru import logger

from bot.clock import Clock

JobFn = Callable[[], Awaitable[None]]
log = logger.bind(stage="jobs")


@dataclass
class _Job:
    name: str
    fn: JobFn
    every: timedelta | None  # interval job
    daily_at: time | None  # daily job, local time in `tz`
    tz: ZoneInfo
    next_at: datetime | None = None

    def schedule_after(self, now: datetime) -> None:
        if self.every is not None:
            self.next_at = now + self.every
            return
        assert self.daily_at is not None
        local = now.astimezone(self.tz)
        candidate = datetime.combine(local.date(), self.daily_at, self.tz)
        if candidate <= local:
            candidate = datetime.combine(local.date() + timedelta(days=1), self.daily_at, self.tz)
        self.next_at = candidate.astimezone(now.tzinfo)

    def trigger(self) -> IntervalTrigger | CronTrigger:
        """The same schedule as an apscheduler trigger (live runs)."""
        if self.every is not None:
            return IntervalTrigger(seconds=self.every.total_seconds())
        assert self.daily_at is not None  # a job is either an interval or a daily job
        return CronTrigger(hour=self.daily_at.hour, minute=self.daily_at.minute, timezone=self.tz)


class Jobs:
    """Registry of periodic jobs. A failing job is logged and counted; it never stops the loop."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._jobs: list[_Job] = []
        self._scheduler: AsyncIOScheduler | None = None
        self.failures: dict[str, int] = {}

    def every(self, name: str, interval: timedelta, fn: JobFn) -> None:
        self._jobs.append(_Job(name, fn, interval, None, ZoneInfo("UTC")))

    def daily(self, name: str, at: time, tz: str, fn: JobFn) -> None:
        self._jobs.append(_Job(name, fn, None, at, ZoneInfo(tz)))

    async def _run(self, job: _Job) -> None:
        try:
            await job.fn()
        except Exception:
            self.failures[job.name] = self.failures.get(job.name, 0) + 1
            failures = self.failures[job.name]
            log.exception("job {} failed ({} failures so far)", job.name, failures)

    # -- replay: event time ------------------------------------------------------------------
    async def tick(self) -> None:
        """Run every job due on the clock (replay mode)."""
        now = self._clock.now()
        for job in self._jobs:
            if job.next_at is None:
                job.schedule_after(now)
            elif job.next_at <= now:
                job.schedule_after(now)
                await self._run(job)

    # -- live: wall time ---------------------------------------------------------------------
    def start_live(self) -> None:
        """Hand the jobs to apscheduler on the running event loop."""
        self._scheduler = AsyncIOScheduler(timezone="UTC")
        for job in self._jobs:
            self._scheduler.add_job(self._run, job.trigger(), args=[job], id=job.name, max_instances=1, coalesce=True)
        self._scheduler.start()

    def stop(self) -> None:
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        self._scheduler = None
