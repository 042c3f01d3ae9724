"""The bus's outgoing queue: `put` is synchronous and O(1), so publishing never blocks the
trading path; one background sender drains it.

Two lanes: droppable messages (heartbeat, signal, decision, ...) sit in a bounded lane whose
oldest entry is dropped and counted when it is full; critical messages (fill, settlement,
alert, order, ...) sit in an unbounded lane that is drained first and is never dropped: past
`backlog_warn` entries every further one is logged as an error. Order is kept within a lane.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from dataclasses import dataclass

from loguru import logger
from paho.mqtt.properties import Properties


@dataclass(frozen=True, slots=True)
class OutMessage:
    topic: str
    payload: bytes
    kind: str
    critical: bool
    retain: bool = False
    qos: int = 1
    properties: Properties | None = None


class Outbox:
    def __init__(self, maxsize: int, backlog_warn: int) -> None:
        self._droppable: deque[OutMessage] = deque()
        self._critical: deque[OutMessage] = deque()
        self._maxsize = maxsize
        self._backlog_warn = backlog_warn
        self._ready = asyncio.Event()
        self.dropped: Counter[str] = Counter()  # kind -> droppable messages dropped
        self.critical_high_water = 0

    def __len__(self) -> int:
        return len(self._droppable) + len(self._critical)

    @property
    def critical_depth(self) -> int:
        return len(self._critical)

    def put(self, msg: OutMessage) -> None:
        """Queue `msg`; never blocks, never raises."""
        if msg.critical:
            self._critical.append(msg)
            depth = len(self._critical)
            self.critical_high_water = max(self.critical_high_water, depth)
            if depth > self._backlog_warn:
                logger.error(
                    "mqtt critical backlog at {} unsent (> {}): {} on {} kept, broker unreachable?",
                    depth, self._backlog_warn, msg.kind, msg.topic,
                )
        else:
            if len(self._droppable) >= self._maxsize:
                old = self._droppable.popleft()
                self.dropped[old.kind] += 1
                total = sum(self.dropped.values())
                if total == 1 or total % 1000 == 0:
                    logger.warning("mqtt queue full ({}): dropped {} so far", self._maxsize, dict(self.dropped))
            self._droppable.append(msg)
        self._ready.set()

    def put_back(self, msg: OutMessage) -> None:
        """Return an unsent message to the head of its lane (after a failed publish)."""
        if msg.critical:
            self._critical.appendleft(msg)
        elif len(self._droppable) < self._maxsize:
            self._droppable.appendleft(msg)
        else:
            self.dropped[msg.kind] += 1
        self._ready.set()

    async def get(self) -> OutMessage:
        """The next message, critical lane first; waits while both lanes are empty."""
        while not (self._critical or self._droppable):
            self._ready.clear()
            await self._ready.wait()
        return self._critical.popleft() if self._critical else self._droppable.popleft()
