"""What every feed is (docs/architecture.md, Pipeline) and how feeds account for bad input.

A feed speaks one upstream protocol, normalises it into `FeedEvent`s and hands each to `emit`.
Whatever arrives together (a polled snapshot, a batched frame) is emitted as one `OddsBatch`,
which the engine applies whole before any strategy runs (docs/architecture.md, Pipeline).
Bad input (malformed JSON, unknown actions, missing fields, unpriceable or implausible odds and
lines, oversized frames) never stops a feed: it is logged with the frame truncated and counted
in the feed's `stats`. Numbers are range-checked where they are decoded, against the bounds of
`bot.market.odds` (prices) and `bot.feeds.normalise` (lines); an impossible value drops the one
update (or, The Odds API, the one bookmaker section) that carries it (docs/architecture.md,
"Invariants > Nothing lost, nothing silent").

A feed that raises out of `run` anyway is restarted by the engine with backoff, unless it is
`finite` (a replay), whose failure ends the run non-zero (bot/engine/core.py, `Engine.run`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Protocol

import orjson
from loguru import logger

from bot.types import FeedEvent

EmitFn = Callable[[FeedEvent], Awaitable[None]]

LOG_FRAME_CHARS = 300  # how much of a bad frame goes into the log line


class Feed(Protocol):
    """An odds source. `run` emits events until cancelled; a replay returns at its end.

    A feed class may set `finite = True` (the replay does): it is expected to end, and an
    exception out of its `run` is a failure of the run, not restarted (bot/engine/core.py).
    Without it a feed is live: `run` returning or raising is a failure, and the engine restarts it.
    """

    name: str

    async def run(self, emit: EmitFn) -> None: ...


class FeedError(Exception):
    """A feed cannot go on, for a reason its one-line message says in full (e.g. a damaged
    replay file, `bot.feeds.recording.DamagedFile`): logged without a traceback."""


def loads_lenient(data: str | bytes) -> object:
    """A JSON document, read by orjson and, only where orjson refuses it, by the standard
    library, which also takes what some producers write and orjson does not: `NaN`,
    `Infinity`, numbers beyond float range (read as inf) and integers beyond 64 bits. Poison
    numbers so reach the range checks, which drop the one update carrying them, instead of
    failing a whole frame. The fallback costs nothing on well-formed input.

    Raises:
        ValueError: neither reader can parse `data` (orjson.JSONDecodeError is a ValueError).
    """
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as first:
        try:
            return json.loads(data)
        except (ValueError, RecursionError):  # UnicodeDecodeError and too-long ints included
            raise first from None


def truncate(frame: str | bytes | object, limit: int = LOG_FRAME_CHARS) -> str:
    """A frame (or any object) as text of at most `limit` characters, for log lines."""
    if isinstance(frame, bytes):
        text = frame[: limit * 4].decode("utf-8", "replace")
    else:
        text = frame if isinstance(frame, str) else repr(frame)
    return text if len(text) <= limit else f"{text[:limit]}...(+{len(text) - limit} chars)"


class FeedStats(Counter[str]):
    """Per-feed counters: frames, messages, updates, and one key per kind of bad input
    ("malformed_json", "unknown_action", "missing_field", "bad_outcome" (a price or line that
    cannot be read or is implausible), "bad_bookmaker", "bad_header", "decoder_error",
    "oversized", ...)."""

    def __init__(self, source: str) -> None:
        super().__init__()
        self.source = source

    def bad(self, kind: str, detail: str, frame: str | bytes | object, *, sparse: bool = False) -> None:
        """Count one piece of bad input and log it with the frame truncated; `sparse` logs only
        the first ten of its kind, then the 100th, 1000th ... (a long run of damage stays readable)."""
        self[kind] += 1
        count = self[kind]
        if sparse and count > 10 and count != 10 ** (len(str(count)) - 1):
            return
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
        return sum(v for k, v in self.items() if k not in GOOD_COUNTERS)


GOOD_COUNTERS = frozenset({"frames", "messages", "updates", "reconnects", "polls", "pings", "snapshots", "boards",
                           "rows", "quotes", "lines", "after_start", "unlisted_snapshot",
                           "skipped", "rotated_books", "stale_books", "logins", "resumes", "snapshot_required",
                           "heartbeats", "conflated", "images", "settled"})
"""FeedStats keys that count traffic or notable-but-valid input, not bad input."""
