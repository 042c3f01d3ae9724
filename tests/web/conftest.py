"""A fake engine behind the web layer (real state: a halt flips the trading state, counters can
be bumped, a feed can go stale) and a real uvicorn serving it on a free loopback port.

The server runs on its own event loop in a thread, so blocking clients (httpx, selenium) can
talk to it from the test; the fake is only touched by the server's loop or between requests.
The figures below are shaped like the engine's (NFL 2025 fixtures, money as decimal strings).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from loguru import logger
from pydantic import SecretStr

from bot.web.config import WebConfig
from bot.web.server import WebServer

TOKEN = "s3cret-Token_for+web/tests=="


@dataclass
class FakeOperated:
    """Implements bot.web.ports.Operated over plain attributes."""

    trading_state: str = "ACTIVE"
    halt_reason: str | None = None
    feed_stale: bool = False
    pending: int = 3
    cancelled: int = 0
    counters: dict[str, int] = field(default_factory=lambda: {
        "events": 120, "odds_updates": 480, "signals": 7, "errors": 1, "settled": 2, "fills": 4})
    settled_pnl: Decimal = Decimal("12.50")
    params: dict[str, dict[str, Any]] = field(default_factory=lambda: {
        "value": {"min_edge": 0.03, "kelly_fraction": 0.25}})
    decision_reasons: list[str | None] = field(default_factory=list)
    lag_seconds: float | None = 1.5

    def bump(self, by: int = 1) -> None:
        for key in self.counters:
            self.counters[key] += by

    def status(self) -> dict[str, Any]:
        return {
            "mode": "paper", "instance": "web-test", "clock": "2025-11-16T18:00:00+00:00",
            "events": self.counters["events"], "signals": self.counters["signals"],
            "approved": 5, "rejected": 2, "errors": self.counters["errors"],
            "settled_pnl": str(self.settled_pnl),
            "risk": {"trading_state": self.trading_state, "halt_reason": self.halt_reason,
                     "emergency": False, "breakers": {"global": "CLOSED", "draftkings": "OPEN"}},
        }

    def health(self) -> dict[str, Any]:
        checks = {
            "feeds": {"ok": not self.feed_stale,
                      "detail": "oddsapi: no update for 600 s" if self.feed_stale else "oddsapi: 1.5 s ago"},
            "ledger": {"ok": True, "detail": "writable"},
            "venue": {"ok": True, "detail": "paper"},
            "trading": {"ok": self.trading_state == "ACTIVE", "detail": self.trading_state},
        }
        return {"ready": all(c["ok"] for c in checks.values()), "checks": checks}

    def metrics(self) -> dict[str, Any]:
        return {
            "counters": dict(self.counters),
            "decisions": [{"verdict": "approved", "reason": "ok", "count": 5},
                          {"verdict": "rejected", "reason": "max_exposure", "count": 2}],
            "orders_by_status": {"PENDING": self.pending, "FILLED": 4},
            "feeds": {"oddsapi": {"events": self.counters["odds_updates"], "lag_seconds": self.lag_seconds},
                      "mqtt": {"events": 0, "lag_seconds": None}},
            "exposure": {"total": 75.0, "by_strategy": {"value": 75.0}},
            "pnl": {"today": 4.5, "settled": float(self.settled_pnl)},
            "breakers": {"global": 0, "draftkings": 1},
            "tick_to_order_seconds": {"buckets": [[0.005, 2], [0.01, 3], [0.05, 4], [float("inf"), 4]],
                                      "count": 4, "sum": 0.061},
            "ledger": {"write_failing": 0, "refused_writes": 0},
            "mqtt": {"dropped": self.counters["errors"]},
        }

    def orders(self, limit: int) -> list[dict[str, Any]]:
        rows = [{"request_uuid": f"0000-{i}", "strategy": "value",
                 "selection": "Kansas City Chiefs @ Denver Broncos|h2h|Denver Broncos",
                 "bookmakers": ["draftkings", "fanduel"], "stake": "25.00", "filled_stake": "0",
                 "order_price": 2.1, "status": "PENDING", "created_at": f"2025-11-16T17:5{i}:00+00:00"}
                for i in range(self.pending)]
        return rows[:limit]

    def bets(self, limit: int) -> list[dict[str, Any]]:
        return [{"bet_id": "b-1", "bookmaker": "fanduel", "placed_stake": "25.00", "placed_price": 2.15,
                 "bet_status": "SETTLED", "settlement_status": "WON", "settlement_amount": "53.75",
                 "clv": 0.021}][:limit]

    def decisions(self, limit: int, reason: str | None) -> list[dict[str, Any]]:
        self.decision_reasons.append(reason)
        rows = [{"at": "2025-11-16T17:59:00+00:00", "strategy": "value", "selection": "x", "verdict": v,
                 "reason": r, "stake": "25.00"} for v, r in (("approved", "ok"), ("rejected", "max_exposure"))]
        return [r for r in rows if reason is None or r["reason"] == reason][:limit]

    def exposure(self) -> dict[str, Any]:
        return {"total": "75.00", "by_fixture": {"Kansas City Chiefs @ Denver Broncos": "75.00"},
                "by_bookmaker": {"draftkings": "50.00", "fanduel": "25.00"}, "by_strategy": {"value": "75.00"},
                "by_market": {"NFL|2025-11-16T18:00:00+00:00|Kansas City Chiefs|Denver Broncos|moneyline": "50.00"}}

    def pnl(self) -> dict[str, Any]:
        return {"today": "4.50", "settled": str(self.settled_pnl),
                "equity": [["2025-11-15T20:00:00+00:00", "-5.00"], ["2025-11-16T18:00:00+00:00", "8.00"],
                           ["2025-11-16T21:00:00+00:00", str(self.settled_pnl)]]}

    def strategies(self) -> list[dict[str, Any]]:
        return [{"name": n, "path": "value", "enabled": True, "params": p} for n, p in self.params.items()]

    async def halt(self, reason: str) -> None:
        self.trading_state, self.halt_reason = "HALTED", reason

    async def resume(self) -> None:
        self.trading_state, self.halt_reason = "ACTIVE", None

    async def cancel_all(self) -> int:
        n, self.pending = self.pending, 0
        self.cancelled += n
        return n

    async def reload_params(self, strategy: str, params: dict[str, Any]) -> None:
        if strategy not in self.params:
            raise ValueError(f"unknown strategy {strategy!r}")
        edge = params.get("min_edge", 0)
        if not isinstance(edge, int | float) or edge < 0:
            raise ValueError(f"strategy {strategy}: params.min_edge: must be >= 0, got {edge!r}")
        self.params[strategy] = self.params[strategy] | params


@dataclass
class Served:
    url: str
    fake: FakeOperated
    server: WebServer
    loop: asyncio.AbstractEventLoop

    def run(self, coro: Any, timeout: float = 10.0) -> Any:
        """Run a coroutine on the server's loop from the test thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


def web_config(**overrides: Any) -> WebConfig:
    values: dict[str, Any] = {"enabled": True, "port": 0, "token": SecretStr(TOKEN),
                              "events_interval_s": 1.0, "auth_failures_per_minute": 1000} | overrides
    return WebConfig(**values)


def serve(config: WebConfig, fake: FakeOperated) -> Iterator[Served]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="web-test-loop", daemon=True)
    thread.start()
    server = WebServer(fake, config)
    served = Served("", fake, server, loop)
    try:
        served.run(server.start())
        served.url = server.url
        yield served
    finally:
        served.run(server.stop())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


@pytest.fixture
def fake() -> FakeOperated:
    return FakeOperated()


@pytest.fixture
def served(fake: FakeOperated) -> Iterator[Served]:
    yield from serve(web_config(), fake)


@pytest.fixture
def logged() -> Iterator[list[str]]:
    """Every loguru record during the test, formatted with its extras and exception."""
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="TRACE",
                      format="{level} {message} {extra} {exception}")
    yield lines
    logger.remove(sink)
