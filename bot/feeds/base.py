"""What every feed is (docs/architecture.md, Pipeline) and how feeds account for bad input.

A feed speaks one upstream protocol, normalises it into `FeedEvent`s and hands each to `emit`.
Whatever arrives together (a polled snapshot, a batched frame) is emitted as one `OddsBatch`,
which the engine applies whole before any strategy runs (docs/architecture.md, Pipeline).
Bad input (malformed JSON, unknown actions, missing fields, unpriceable odds, oversized frames)
never stops a feed: it is logged with the frame truncated and counted in the feed's `stats`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Protocol

from loguru import logger

from bot.types import FeedEvent

EmitFn = Callable[[FeedEvent], Awaitable[None]]

LOG_FRAME_CHARS = 300  # how much of a bad frame goes into the log line


class Feed(Protocol):
    """An odds source. `run` emits events until cancelled; a replay returns at its end."""

    name: str

    async def run(self, emit: EmitFn) -> None: ...


def truncate(frame: str | bytes | object, limit: int = LOG_FRAME_CHARS) -> str:
    """A frame (or any object) as text of at most `limit` characters, for log lines."""
    if isinstance(frame, bytes):
        text = frame[: limit * 4].decode("utf-8", "replace")
    else:
        text = frame if isinstance(frame, str) else repr(frame)
    return text if len(text) <= limit else f"{text[:limit]}...(+{len(text) - limit} chars)"


class FeedStats(Counter[str]):
    """Per-feed counters: frames, messages, updates, and one key per kind of bad input
    ("malformed_json", "unknown_action", "missing_field", "bad_odds", "oversized", ...)."""

    def __init__(self, source: str) -> None:
        super().__init__()
        self.source = source

    def bad(self, kind: str, detail: str, frame: str | bytes | object) -> None:
        """Count one piece of bad input and log it with the frame truncated."""
        self[kind] += 1
        logger.warning(
            "{source}: {kind} ({detail}); frame: {frame}",
            source=self.source,
            kind=kind,
            detail=detail,
            frame=truncate(frame),
        )

    @property
    def bad_total(self) -> int:
        """Bad input of every kind."""
        return sum(v for k, v in self.items() if k not in _GOOD)


_GOOD = frozenset({"frames", "messages", "updates", "reconnects", "polls", "pings", "snapshots"})
