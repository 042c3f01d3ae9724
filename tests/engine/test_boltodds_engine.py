"""The engine on a live feed: real BoltOdds frames served over a loopback WebSocket by the local
BoltOdds server flow through BoltOddsFeed, the book, a strategy, risk and the paper venue."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.config.settings import load_settings
from bot.engine.wiring import build_engine
from bot.sim.bolt_server import BoltServer, load_frames

SAMPLES = Path(__file__).parents[1] / "data" / "boltodds" / "message_samples.json"
KEY = "bolt-local-key"


async def test_boltodds_frames_over_loopback_become_paper_orders(tmp_path: Path) -> None:
    async with BoltServer(load_frames(SAMPLES), api_key=KEY, ping_interval=None) as server:
        settings = load_settings(
            None, mode="paper", state_dir=tmp_path / "state", logging={"json_file": False, "progress": False},
            feeds={"boltodds": {"url": server.url, "rest_url": server.rest_url, "api_key": KEY,
                                "sportsbooks": ["draftkings"], "check_filters": False}},
            strategies=[{"name": "tmpl", "path": "template", "params": {"min_price": 2.5, "stake": 5}}],
            risk={"max_orders_per_window": 5},
        )
        engine = await build_engine(settings, config_dir=tmp_path)
        run = asyncio.create_task(engine.run())
        try:
            async with asyncio.timeout(20):  # a safety limit, not a timing assertion
                while not (server.finished.is_set() and engine.stats.signals > 5
                           and len(engine.ledger.orders()) == 5
                           and all(o.status == "FILLED" for o in engine.ledger.orders())):
                    await asyncio.sleep(0.05)
        finally:
            engine.request_stop("test over")
            async with asyncio.timeout(10):  # the feed stops although frames were streaming
                await run
    assert server.subscriptions == [{"sportsbooks": ["draftkings"]}]
    orders = engine.ledger.orders()
    assert {o.sport for o in orders} == {"NFL"} and {o.bookmakers for o in orders} == {"draftkings"}
    assert all(o.order_price >= 2.5 for o in orders)
    # The rest were rejected: over the order-rate cap, or priced above risk.max_price (20).
    assert set(engine.stats.by_reason) == {"RATE_LIMIT", "ODDS_OUT_OF_RANGE"}
    assert sum(engine.stats.by_reason.values()) == engine.stats.signals - 5
