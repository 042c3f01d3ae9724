"""The OddsPapi feed's REST snapshot through the local Scraping API relay is the same snapshot as
polled directly (bot/feeds/scraping.py, bot/feeds/oddspapi.py): the relay is a transport only."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import SecretStr

from bot.clock import ReplayClock
from bot.feeds.config import ScrapingConfig
from bot.feeds.oddspapi import OddsPapiFeed
from bot.feeds.scraping import ScrapingRelay
from bot.sim.scraping_server import LocalScrapingServer
from bot.types import FeedEvent, OddsBatch

from .test_oddspapi_feed import feed_config, make_server

KEY = "scraping-test-key"


async def test_an_oddspapi_snapshot_relayed_equals_the_direct_one() -> None:
    now = datetime.now(UTC)  # the server's kickoffs are 2 h from now; one clock reading for both feeds
    server = make_server()
    base_url = await server.start()
    relay_server = LocalScrapingServer(api_keys=[KEY])
    relay_url = await relay_server.start()
    relay = ScrapingRelay(ScrapingConfig(base_url=relay_url, api_key=SecretStr(KEY)))
    direct = OddsPapiFeed(feed_config(server, base_url), ReplayClock(now))
    relayed = OddsPapiFeed(feed_config(server, base_url), ReplayClock(now), transport=relay.transport())
    got: dict[str, list[FeedEvent]] = {"direct": [], "relayed": []}
    try:
        for name, feed in (("direct", direct), ("relayed", relayed)):
            async def emit(event: FeedEvent, into: list[FeedEvent] = got[name]) -> None:
                into.append(event)
            await feed.snapshot(emit)
            await feed.rest.aclose()
    finally:
        await relay_server.stop()
        await server.stop()
    [batch] = got["relayed"]
    assert isinstance(batch, OddsBatch) and batch.complete and len(batch.updates) > 10
    assert got["relayed"] == got["direct"]
    # every REST call of the relayed feed went through the relay, with the key in its header only
    relayed_paths = [r.target for r in relay_server.requests]
    assert relayed_paths and all(t is not None and t.startswith(base_url) for t in relayed_paths)
    assert all(r.status == 200 for r in relay_server.requests)
    assert relay.stats["requests"] == len(relay_server.requests)
