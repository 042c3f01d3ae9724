"""Replay progress: a rich progress bar on a terminal, a log line every 10 % otherwise
(headless runs and CI logs stay readable)."""

from __future__ import annotations

import sys

from loguru import logger
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn


class ReplayProgress:
    """Callable `(done, total)` given to a replay feed; `total` may be 0 when unknown."""

    def __init__(self, enabled: bool = True, tty: bool | None = None) -> None:
        self._enabled = enabled
        self._tty = sys.stderr.isatty() if tty is None else tty
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._next_pct = 10

    def __call__(self, done: int, total: int) -> None:
        if not self._enabled:
            return
        if self._tty:
            self._draw(done, total)
            return
        if total and done * 100 >= self._next_pct * total:
            logger.bind(stage="replay").info("replay {}% ({}/{})", done * 100 // total, done, total)
            self._next_pct = (done * 100 // total) // 10 * 10 + 10

    def _draw(self, done: int, total: int) -> None:
        if self._bar is None:
            self._bar = Progress(TextColumn("replay"), BarColumn(), MofNCompleteColumn(),
                                 TimeRemainingColumn(), transient=True)
            self._bar.start()
            self._task = self._bar.add_task("replay", total=total or None)
        assert self._task is not None
        self._bar.update(self._task, completed=done, total=total or None)
        if total and done >= total:
            self._bar.stop()
