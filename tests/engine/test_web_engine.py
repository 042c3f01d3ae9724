"""The dashboard's API on a real engine (bot/engine/operations.py behind bot/web/): /metrics
moves while odds arrive, /health/ready turns unready when the feed goes stale on the engine
clock and ready again when it recovers, and a halt through the API halts the engine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bot.clock import ReplayClock
from bot.config import secrets
from bot.config.settings import load_settings
from bot.engine.wiring import build_engine
from bot.types import FixtureKey, MarketKey, OddsBatch, OddsUpdate, Selection
from tests.engine.conftest import write_config

TOKEN = "web-token-for-the-test-0123"
GAME = FixtureKey("NFL", "Chicago Bears", "Minnesota Vikings", datetime(2025, 11, 16, 18, tzinfo=UTC))


def _batch(at: datetime) -> OddsBatch:
    sel = Selection(GAME, MarketKey("moneyline"), "home")
    return OddsBatch("oddsapi", at, (OddsUpdate("oddsapi", "fanduel", sel, 2.1, None, False, at, at, {}),))


def _metric(text: str, name: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    raise AssertionError(f"{name} not in /metrics")


async def test_metrics_move_readiness_follows_feed_freshness_and_halt_works(tmp_path: Path) -> None:
    config = write_config(tmp_path, web={"enabled": True, "port": 0, "token": TOKEN},
                          feeds={"stale_after_seconds": 600})
    engine = await build_engine(load_settings(config), config_dir=tmp_path)
    clock = engine.clock
    assert isinstance(clock, ReplayClock)
    await engine.start()
    try:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{engine.web.port}") as http:
            assert (await http.get("/health/live")).status_code == 200
            ready = await http.get("/health/ready")
            assert ready.status_code == 503 and not ready.json()["checks"]["feeds"]["ok"]  # no event yet

            t0 = datetime(2025, 11, 16, 12, tzinfo=UTC)
            clock.advance(t0)
            await engine._handle(_batch(t0))
            first = (await http.get("/metrics", headers=auth)).text
            assert (await http.get("/health/ready")).status_code == 200

            clock.advance(t0 + timedelta(seconds=601))  # no event for longer than stale_after
            stale = await http.get("/health/ready")
            assert stale.status_code == 503 and "oddsapi" in stale.json()["checks"]["feeds"]["detail"]
            await engine._handle(_batch(clock.now()))
            assert (await http.get("/health/ready")).status_code == 200
            second = (await http.get("/metrics", headers=auth)).text
            assert _metric(second, "bot_events_total") == _metric(first, "bot_events_total") + 1
            assert _metric(second, "bot_odds_updates_total") == _metric(first, "bot_odds_updates_total") + 1

            assert (await http.get("/api/status")).status_code == 401
            assert (await http.get("/api/halt", headers=auth)).status_code == 405
            assert (await http.post("/api/halt", headers=auth, json={"reason": "web test"})).status_code == 200
            assert str(engine.risk.control.state) == "HALTED"
            status = (await http.get("/api/status", headers=auth)).json()
            assert status["risk"]["trading_state"] == "HALTED"
            for read in ("orders", "bets", "decisions", "exposure", "pnl", "strategies", "health"):
                answer = await http.get(f"/api/{read}", headers=auth)
                assert answer.status_code == 200, (read, answer.text)
            exposure = (await http.get("/api/exposure", headers=auth)).json()
            assert exposure["by_market"] == {k: str(v) for k, v in engine.risk.market_exposure().items()}
            strategies = (await http.get("/api/strategies", headers=auth)).json()
            assert strategies[0]["name"] == "value_consensus" and strategies[0]["params"]["min_edge"] == 0.03
    finally:
        await engine.shutdown()
        secrets.forget_all()


async def test_a_taken_port_is_an_error_not_a_stop(tmp_path: Path) -> None:
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        config = write_config(tmp_path, web={"enabled": True, "port": taken.getsockname()[1], "token": TOKEN})
        engine = await build_engine(load_settings(config), config_dir=tmp_path)
        await engine.start()
        try:
            assert engine.web is None and engine.stats.errors == 1
            assert engine.started  # trading goes on without the dashboard
        finally:
            await engine.shutdown()
    finally:
        taken.close()
        secrets.forget_all()
