"""Tick-to-order latency, stamped in the bot's own code path (docs/architecture.md, "Ledger
writes and the hot path"): from the moment a feed frame was read off the socket to the moment the
last byte of the placement request it caused was written, in nanoseconds of
`time.perf_counter_ns`.

A live feed calls `frame_received()` right after it reads a frame; the stamp travels in a
context variable, so it reaches the placement task the engine starts for that frame (asyncio
copies the context into new tasks) without passing through every event type. Signals from a
timer carry no stamp and are not counted.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from collections import deque
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

_FRAME_NS: ContextVar[int] = ContextVar("frame_received_ns", default=0)
KEEP = 100_000  # samples kept per series (a bounded window for a bot that runs for weeks)
BUCKETS_NS = tuple(int(ms * 1e6) for ms in (0.5, 1, 2, 3, 5, 10, 20, 50, 100, 250, 500, 1000))
"""Upper bounds of the tick-to-order histogram (`/metrics`), in ns."""


def frame_received() -> None:
    """Stamp the frame this task just read (call it right after the socket read)."""
    _FRAME_NS.set(time.perf_counter_ns())


def frame_stamp() -> int:
    """The stamp of the frame this task handles; 0 when there is none (a timer, a replay)."""
    return _FRAME_NS.get()


@dataclass(frozen=True, slots=True)
class Percentiles:
    """Latency figures in milliseconds over `count` samples."""

    count: int
    p50: float
    p99: float
    max: float


class TickToOrder:
    """Samples per order (each order of a request counts once, at its request's write time) and
    per frame (the last request a frame caused), in ns."""

    def __init__(self, keep: int = KEEP) -> None:
        self.per_order: deque[int] = deque(maxlen=keep)
        self.per_frame: deque[int] = deque(maxlen=keep)
        self._bucket_counts = [0] * (len(BUCKETS_NS) + 1)  # per order, since start; last is +inf
        self._sum_ns = 0

    def record(self, frame_ns: int, written_ns: list[tuple[int, int]]) -> None:
        """One frame's placements: `written_ns` is (write stamp, orders in that request) per
        request; nothing is recorded without a frame stamp or a write stamp."""
        if not frame_ns or not written_ns:
            return
        for at, orders in written_ns:
            self.per_order.extend([at - frame_ns] * orders)
            self._bucket_counts[bisect_left(BUCKETS_NS, at - frame_ns)] += orders
            self._sum_ns += (at - frame_ns) * orders
        self.per_frame.append(max(at for at, _ in written_ns) - frame_ns)

    def histogram(self) -> dict[str, Any]:
        """Every order since start as a Prometheus histogram: cumulative counts per upper bound
        in seconds (the last +inf), the count and the sum in seconds."""
        cumulative, running = [], 0
        for le, n in zip([*BUCKETS_NS, None], self._bucket_counts, strict=True):
            running += n
            cumulative.append([math.inf if le is None else le / 1e9, running])
        return {"buckets": cumulative, "count": running, "sum": self._sum_ns / 1e9}

    @staticmethod
    def summary(samples: deque[int]) -> Percentiles | None:
        """p50 / p99 / max in ms (nearest rank), None without samples."""
        if not samples:
            return None
        ordered = sorted(samples)
        n = len(ordered)

        def rank(q: float) -> float:
            return ordered[min(n - 1, max(0, round(q * n + 0.5) - 1))] / 1e6

        return Percentiles(n, rank(0.50), rank(0.99), ordered[-1] / 1e6)
