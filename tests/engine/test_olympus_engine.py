"""The engine on the Olympus feed: recorded Bet365 records served by the local Olympus server over
loopback flow through OlympusFeed, the book, a strategy, risk and the paper venue into orders."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.config.settings import load_settings
from bot.engine.wiring import build_engine
from bot.feeds.olympus import STATE_FILE, OlympusFeed
from bot.sim.olympus_server import serving

DATA = Path(__file__).parents[1] / "data" / "olympus" / "recorded.json"
KEY = "olympus-local-key"
E1 = "#AC#B12#C20426855#D19#E27164341#F19#"
E2 = "#AC#B12#C20426855#D19#E27164352#F19#"
E3 = "#AC#B1#C1#D8#E27180533#F3#"


async def test_bet365_records_over_loopback_become_paper_orders(tmp_path: Path) -> None:
    async with serving(DATA) as server:
        settings = load_settings(
            None, mode="paper", state_dir=tmp_path / "state", logging={"json_file": False, "progress": False},
            feeds={"olympus": {"base_url": server.url, "api_key": KEY, "poll_seconds": 0.2,
                               "events": [{"pd": E1}, {"pd": E2}, {"pd": E3}]}},
            strategies=[{"name": "tmpl", "path": "template",
                         "params": {"min_price": 2.1, "stake": 5, "markets": ["moneyline", "1x2"]}}],
        )
        engine = await build_engine(settings, config_dir=tmp_path)
        feed = next(f for f in engine.feeds if isinstance(f, OlympusFeed))
        run = asyncio.create_task(engine.run())
        try:
            async with asyncio.timeout(20):  # a safety limit, not a timing assertion
                while not (len(engine.ledger.orders()) >= 3
                           and all(o.status == "FILLED" for o in engine.ledger.orders())):
                    await asyncio.sleep(0.05)
        finally:
            engine.request_stop("test over")
            async with asyncio.timeout(10):
                await run
    orders = engine.ledger.orders()
    # Broncos 6/5 (2.2), Draw 7/2 (4.5), Tottenham 6/1 (7.0): the moneyline / 1x2 prices >= 2.1
    assert sorted(o.order_price for o in orders) == [2.2, 4.5, 7.0]
    assert {o.bookmakers for o in orders} == {"bet365"}
    assert {o.sport for o in orders} == {"NFL", "England Premier League"}
    assert feed.stats.bad_total == 0 and feed.stats["boards"] >= 1
    assert (tmp_path / "state" / STATE_FILE).is_file()
