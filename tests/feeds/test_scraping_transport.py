"""The Odds API feed relayed through the Scraping API transport (bot/feeds/scraping.py) against
the local relay (bot/sim/scraping_server.py), which forwards to a local Odds-API-shaped server
replaying the real NFL responses (tests/feeds/test_oddsapi_feed.py, FakeOddsApi); all on loopback."""

from __future__ import annotations

import asyncio
import gzip
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
import orjson
import pytest
import uvicorn
from loguru import logger
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.clock import ReplayClock
from bot.feeds.base import EmitFn
from bot.feeds.config import OddsApiConfig, ScrapingConfig
from bot.feeds.oddsapi import OddsApiFeed
from bot.feeds.scraping import (
    ScrapingAuthError,
    ScrapingGatewayError,
    ScrapingRelay,
    ScrapingTransport,
    parse_retry_after,
)
from bot.sim.scraping_server import LocalScrapingServer
from bot.types import FeedEvent, FeedStatus, OddsBatch

from .test_oddsapi_feed import T0, FakeOddsApi
from .test_oddsapi_replay import FIRST3

TARGET_KEY = "odds-target-key-7Qz91"  # The Odds API key: travels only inside X-Target-URL
SCRAPING_KEY = "scraping-key-Hk28xw"


@dataclass
class Target:
    fake: FakeOddsApi
    url: str
    headers: list[dict[str, str]] = field(default_factory=list)  # every request's headers as received


@dataclass
class World:
    direct: Target
    relayed: Target
    relay: LocalScrapingServer
    relay_url: str


async def _serve(app: Starlette) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    async with asyncio.timeout(10):
        while not server.started:
            await asyncio.sleep(0.01)
    return server, task, f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
async def world() -> AsyncIterator[World]:
    with gzip.open(FIRST3, "rb") as f:
        bodies = [orjson.dumps(orjson.loads(line)["data"]) for line in f]
    servers = []
    targets = []
    for _ in range(2):
        # a quota that never stretches the pacing: a successful poll waits poll_seconds (300)
        target = Target(FakeOddsApi(list(bodies), remaining=10**9, api_key=TARGET_KEY), "")

        async def odds(request: Request, t: Target = target) -> Response:
            t.headers.append(dict(request.headers))
            return await t.fake.odds(request)

        server, task, target.url = await _serve(Starlette(routes=[Route("/v4/sports/{sport}/odds", odds)]))
        servers.append((server, task))
        targets.append(target)
    relay = LocalScrapingServer(api_keys=[SCRAPING_KEY])
    relay_url = await relay.start()
    yield World(targets[0], targets[1], relay, relay_url)
    await relay.stop()
    for server, task in servers:
        server.should_exit = True
        await task


def scraping_config(url: str, **kw: object) -> ScrapingConfig:
    base: dict[str, object] = {"base_url": url, "api_key": SecretStr(SCRAPING_KEY), "geo": ("de",),
                               "backoff_initial_seconds": 0.05, "max_attempts": 3}
    return ScrapingConfig.model_validate({**base, **kw})


def odds_feed(url: str, transport: httpx.AsyncBaseTransport | None = None) -> OddsApiFeed:
    cfg = OddsApiConfig(base_url=url, api_key=SecretStr(TARGET_KEY), poll_seconds=300)
    return OddsApiFeed(cfg, ReplayClock(T0), transport=transport)


def collector() -> tuple[list[FeedEvent], EmitFn]:
    events: list[FeedEvent] = []

    async def emit(e: FeedEvent) -> None:
        events.append(e)

    return events, emit


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    """Every loguru line at TRACE and up, unmasked, and the standard library's WARNING and up (what
    the bot forwards to its sinks, bot/engine/logs.py): the transport must not rely on masking."""
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="TRACE", format="{message}")

    class Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    handler = Handler(level=logging.WARNING)
    logging.getLogger().addHandler(handler)
    yield lines
    logging.getLogger().removeHandler(handler)
    logger.remove(sink)


async def test_relayed_polls_emit_the_same_batches_as_direct_polls(world: World) -> None:
    relay = ScrapingRelay(scraping_config(world.relay_url, agent=("de1", "de5")))
    direct = odds_feed(world.direct.url)
    relayed = odds_feed(world.relayed.url, relay.transport())
    (direct_events, direct_emit), (relayed_events, relayed_emit) = collector(), collector()
    delays = []
    for i in range(3):
        for feed in (direct, relayed):
            feed.clock.advance(T0 + timedelta(minutes=30 * i))  # type: ignore[attr-defined]
        delays.append((await direct.poll_once(direct_emit), await relayed.poll_once(relayed_emit)))
    batches = [e for e in relayed_events if isinstance(e, OddsBatch)]
    assert len(batches) == 3 and sum(len(b.updates) for b in batches) > 100
    assert relayed_events == direct_events
    assert all(a == b for a, b in delays)  # the quota headers came through: the same pacing
    assert relayed.requests_remaining == direct.requests_remaining == 10**9 - 9
    assert relayed.stats == direct.stats
    # The relay got the documented control headers, and forwarded the query (the target's key) whole.
    assert [r.status for r in world.relay.requests] == [200, 200, 200]
    first = world.relay.requests[0]
    assert first.method == "POST" and first.target is not None
    assert first.target == str(httpx.URL(world.relayed.url + "/v4/sports/americanfootball_nfl/odds",
                                         params=world.direct.fake.queries[0]))
    assert first.headers["x-geo"] == "DE" and first.headers["x-agent"] == "de1,de5"
    assert first.body["method"] == "GET" and first.body["allow_redirects"] is False
    assert {r.agent for r in world.relay.requests} <= {"de1", "de5"}
    assert world.relayed.fake.queries == world.direct.fake.queries
    # The target never saw the Scraping API's key nor its control headers.
    for seen in world.relayed.headers:
        assert SCRAPING_KEY not in str(seen)
        assert not {"x-api-key", "x-target-url", "x-geo", "x-agent"} & set(seen)
    assert relay.stats["requests"] == 3
    await direct._client.aclose()
    await relayed._client.aclose()


async def test_a_blocked_agent_is_counted_backed_off_and_the_next_poll_goes_through_another(world: World) -> None:
    relay = ScrapingRelay(scraping_config(world.relay_url, geo=()))
    feed = odds_feed(world.relayed.url, relay.transport())
    events, emit = collector()
    world.relay.faults.blocked = 1
    delay = await feed.poll_once(emit)
    assert delay == 600  # backed off: twice poll_seconds
    assert feed.stats["blocked"] == 1 and feed.stats["http_error"] == 0
    assert [type(e) for e in events] == [FeedStatus] and "blocked" in events[0].detail  # type: ignore[union-attr]
    assert len(world.relay.requests) == 1 and world.relayed.fake.queries == []  # not retried, nothing forwarded
    assert await feed.poll_once(emit) == 300
    assert [r.status for r in world.relay.requests] == [200, 200]
    assert world.relay.requests[1].agent != world.relay.requests[0].agent  # the blocked agent is excluded
    assert any(isinstance(e, OddsBatch) for e in events)
    await feed._client.aclose()


async def test_429_waits_retry_after_then_retries_and_gives_up_bounded(world: World) -> None:
    relay = ScrapingRelay(scraping_config(world.relay_url, max_attempts=2))
    feed = odds_feed(world.relayed.url, relay.transport())
    events, emit = collector()
    world.relay.faults.rate_limit, world.relay.faults.retry_after = 1, 1
    assert await feed.poll_once(emit) == 300
    first, second = world.relay.requests
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 1.0  # Retry-After: 1, measured where the requests arrive
    assert feed.stats["scraping_rate_limited"] == 0 and any(isinstance(e, OddsBatch) for e in events)

    world.relay.faults.rate_limit = 5
    assert await feed.poll_once(emit) == 600  # out of tries: counted, backed off
    assert [r.status for r in world.relay.requests[2:]] == [429, 429]  # max_attempts = 2: bounded
    assert world.relay.requests[3].at - world.relay.requests[2].at >= 1.0
    assert feed.stats["scraping_rate_limited"] == 1
    world.relay.faults.rate_limit = 0
    await feed.poll_once(emit)
    assert world.relay.requests[4].status == 200
    assert world.relay.requests[4].at - world.relay.requests[3].at >= 1.0  # the hold outlives the failed poll
    await feed._client.aclose()


async def test_502_and_504_are_retried_with_backoff_and_bounded(world: World) -> None:
    relay = ScrapingRelay(scraping_config(world.relay_url, max_attempts=3))
    feed = odds_feed(world.relayed.url, relay.transport())
    _, emit = collector()
    world.relay.faults.fail_502 = 2
    assert await feed.poll_once(emit) == 300
    assert [r.status for r in world.relay.requests] == [502, 502, 200]
    at = [r.at for r in world.relay.requests]
    assert at[1] - at[0] >= 0.05 and at[2] - at[1] >= 0.1  # 0.05 s, then doubled
    assert relay.stats["retries"] == 2

    world.relay.faults.fail_504 = 10
    assert await feed.poll_once(emit) == 600
    assert [r.status for r in world.relay.requests[3:]] == [504, 504, 504]  # three tries, no more
    assert feed.stats["scraping_gateway"] == 1 and world.relay.faults.fail_504 == 7
    assert len(world.relayed.fake.queries) == 1

    # A POST that timed out at the target may have reached it: a 504 is not retried for it.
    world.relay.faults.fail_504 = 2
    async with httpx.AsyncClient(transport=relay.transport()) as client:
        with pytest.raises(ScrapingGatewayError) as caught:
            await client.post(world.relayed.url + "/v4/anything", json={"a": 1})
    assert caught.value.status == 504 and world.relay.faults.fail_504 == 1
    await feed._client.aclose()


async def test_auth_errors_are_not_retried(world: World) -> None:
    relay = ScrapingRelay(scraping_config(world.relay_url, api_key=SecretStr("not-a-key")))
    async with httpx.AsyncClient(transport=relay.transport()) as client:
        with pytest.raises(ScrapingAuthError, match="HTTP 403"):
            await client.get(world.relayed.url + "/v4/sports/americanfootball_nfl/odds")
    assert [r.status for r in world.relay.requests] == [403]


async def test_the_target_key_and_the_scraping_key_never_reach_a_log(world: World, log_lines: list[str]) -> None:
    relay = ScrapingRelay(scraping_config(world.relay_url))
    feed = odds_feed(world.relayed.url, relay.transport())
    events, emit = collector()
    faults = world.relay.faults
    faults.retry_after = 0  # the waits are another test's subject
    for name, count in (("blocked", 1), ("rate_limit", 3), ("fail_502", 3), ("fail_504", 3), ("blocked", 0)):
        setattr(faults, name, count)
        await feed.poll_once(emit)
    wrong = ScrapingRelay(scraping_config(world.relay_url, api_key=SecretStr("bad-" + SCRAPING_KEY)))
    await odds_feed(world.relayed.url, wrong.transport()).poll_once(emit)
    logger.complete()
    text = "\n".join(log_lines)
    assert "blocked" in text and "429" in text and "502" in text and "504" in text and "403" in text
    assert "/v4/sports/americanfootball_nfl/odds" in text  # the target is named, by its path
    assert TARGET_KEY not in text and SCRAPING_KEY not in text
    details = " ".join(e.detail for e in events if isinstance(e, FeedStatus))
    assert TARGET_KEY not in details and SCRAPING_KEY not in details and "blocked" in details
    await feed._client.aclose()


async def test_a_restarted_feed_keeps_its_transport(world: World) -> None:
    """`run` closes its client when it ends and opens a new one on the next run, with the transport."""
    relay = ScrapingRelay(scraping_config(world.relay_url))
    feed = odds_feed(world.relayed.url, relay.transport())
    feed.config = feed.config.model_copy(update={"poll_seconds": 0.01})
    _, emit = collector()
    for run in range(1, 3):
        task = asyncio.create_task(feed.run(emit))
        async with asyncio.timeout(10):  # two snapshots per run, each through the relay
            while len(world.relay.requests) < 2 or feed.stats["snapshots"] < 2 * run:
                await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert feed._client.is_closed
        world.relay.requests.clear()
    assert isinstance(feed._client._transport, ScrapingTransport)
    assert feed.stats["snapshots"] >= 4 and not feed.stats["http_error"]


def test_retry_after_is_read_as_seconds_or_a_date() -> None:
    assert parse_retry_after("1") == 1.0 and parse_retry_after(" 2.5 ") == 2.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None and parse_retry_after("nan") is None
