"""Builders shared by the execution tests."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bot.types import (
    ExecutionEvent,
    FixtureKey,
    Instrument,
    MarketKey,
    OrderIntent,
    Selection,
    Side,
    Signal,
)

KICKOFF = datetime(2025, 11, 16, 18, 0, tzinfo=UTC)
SEL = Selection(FixtureKey("NFL", "Home", "Away", KICKOFF), MarketKey("moneyline"), "home")


def intent(
    stake: str = "10",
    min_price: float = 2.0,
    *,
    mapped: bool = True,
    books: tuple[str, ...] = ("paper",),
    expires_in: float | None = None,
    now: datetime | None = None,
    tag: str = "",
) -> OrderIntent:
    sig = Signal(
        signal_id=str(uuid.uuid4()), strategy="value", selection=SEL, side=Side.BACK, stake=Decimal(stake),
        price=min_price + 0.05, min_price=min_price, bookmakers=books, created_at=now or datetime.now(UTC), tag=tag,
    )
    ttl = None if expires_in is None else timedelta(seconds=expires_in)
    return OrderIntent(sig, Decimal(stake), Instrument("id1000004461512432", 101) if mapped else None, ttl)


class Events:
    """Collects executor events (the engine's on_event)."""

    def __init__(self) -> None:
        self.items: list[ExecutionEvent] = []

    async def __call__(self, event: ExecutionEvent) -> None:
        self.items.append(event)

    def of(self, kind: type) -> list:
        return [e for e in self.items if isinstance(e, kind)]


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until `check()` holds (polling the running loop); fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not check():
        if loop.time() > end:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)
