"""OddsApiFeed against a local HTTP server replaying the real NFL responses over loopback."""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import uvicorn
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.clock import ReplayClock
from bot.feeds.config import OddsApiConfig
from bot.feeds.oddsapi import OddsApiFeed, next_quota_reset
from bot.feeds.recording import read_records
from bot.types import FeedEvent, FeedStatus, OddsUpdate

from .conftest import unbatched
from .test_oddsapi_replay import FIRST3, flat

T0 = datetime(2025, 11, 16, 12, 40, tzinfo=UTC)


class FakeOddsApi:
    """Serves the recorded responses in order, with quota headers, and logs every query."""

    def __init__(self, bodies: list[bytes], remaining: int = 500, api_key: str = "k") -> None:
        self.bodies, self.remaining, self.api_key = bodies, remaining, api_key
        self.queries: list[dict[str, str]] = []
        self.script: list[int] = []  # status codes to answer before the next body

    async def odds(self, request: Request) -> Response:
        self.queries.append(dict(request.query_params))
        if request.path_params["sport"] != "americanfootball_nfl" or request.query_params.get("apiKey") != self.api_key:
            return Response(b'{"message": "bad"}', 401)
        if self.script:
            return Response(b"oops", self.script.pop(0))
        self.remaining -= 3
        body = self.bodies.pop(0) if self.bodies else b"[]"
        return Response(body, 200, {"x-requests-remaining": str(self.remaining), "x-requests-used": "1",
                                    "x-requests-last": "3"}, media_type="application/json")


@pytest.fixture
async def api() -> AsyncIterator[tuple[FakeOddsApi, str]]:
    with gzip.open(FIRST3, "rb") as f:
        bodies = [orjson.dumps(orjson.loads(line)["data"]) for line in f]
    fake = FakeOddsApi(bodies)
    app = Starlette(routes=[Route("/v4/sports/{sport}/odds", fake.odds)])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    yield fake, f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    await task


def make_feed(base_url: str, tmp_path: Path, **kw: object) -> tuple[OddsApiFeed, list[FeedEvent], ReplayClock]:
    clock = ReplayClock(T0)
    cfg = OddsApiConfig(base_url=base_url, api_key=SecretStr("k"), poll_seconds=300,
                        record_to=tmp_path / "oddsapi.jsonl.gz", **kw)  # type: ignore[arg-type]
    events: list[FeedEvent] = []
    return OddsApiFeed(cfg, clock), events, clock


async def test_polls_diff_record_and_pace_within_quota(api: tuple[FakeOddsApi, str], tmp_path: Path) -> None:
    fake, url = api
    feed, events, clock = make_feed(url, tmp_path)

    async def emit(e: FeedEvent) -> None:
        events.extend(unbatched([e]))

    delay = await feed.poll_once(emit)
    assert fake.queries[0] == {"apiKey": "k", "markets": "h2h,spreads,totals", "oddsFormat": "american",
                               "dateFormat": "iso", "regions": "us"}
    first = [e for e in events if isinstance(e, OddsUpdate)]
    with gzip.open(FIRST3, "rb") as f:
        raw = [orjson.loads(line) for line in f]
    assert len(first) == len(flat(raw[0])) and feed.requests_remaining == 497
    # 497 requests at 3 per poll must last until 1 December: more than the 300 s floor.
    until_reset = (next_quota_reset(T0) - T0).total_seconds()
    assert delay == pytest.approx(until_reset / (492 // 3))
    events.clear()
    clock.advance(T0 + timedelta(minutes=30))
    await feed.poll_once(emit)
    second = [e for e in events if isinstance(e, OddsUpdate)]
    a, b = flat(raw[0]), flat(raw[1])
    assert sum(u.suspended for u in second) == len(a.keys() - b.keys())
    assert all(u.received_at == T0 + timedelta(minutes=30) for u in second)
    await feed._client.aclose()
    feed._recorder.close()  # type: ignore[union-attr]
    recorded = list(read_records(tmp_path / "oddsapi.jsonl.gz"))
    assert [r.ts for r in recorded] == [T0, T0 + timedelta(minutes=30)]
    assert orjson.loads(recorded[0].raw or "") == raw[0]["data"]


async def test_errors_rate_limits_and_an_exhausted_quota(api: tuple[FakeOddsApi, str], tmp_path: Path) -> None:
    fake, url = api
    feed, events, _ = make_feed(url, tmp_path, bookmakers=["draftkings"], requests_reserve=490)

    async def emit(e: FeedEvent) -> None:
        events.extend(unbatched([e]))

    fake.script = [500, 429]
    assert await feed.poll_once(emit) == 300
    assert await feed.poll_once(emit) == 600  # 429 doubles the wait
    assert [(e.connected, e.stale) for e in events if isinstance(e, FeedStatus)] == [(False, False)] * 2
    assert (feed.stats["http_error"], feed.stats["rate_limited"]) == (1, 1)
    assert "bookmakers" in fake.queries[-1] and "regions" not in fake.queries[-1]
    # A reserve of 490 at 3 requests a poll: 497 left -> 2 polls spread over the rest of the
    # month, 494 -> 1, 491 -> none: paused until the quota resets.
    until_reset = (next_quota_reset(T0) - T0).total_seconds()
    assert await feed.poll_once(emit) == pytest.approx(until_reset / 2)
    assert await feed.poll_once(emit) == pytest.approx(until_reset)
    assert await feed.poll_once(emit) == pytest.approx(until_reset)
    assert feed.requests_remaining == 491
    await feed._client.aclose()


async def test_run_keeps_polling_until_cancelled(api: tuple[FakeOddsApi, str], tmp_path: Path) -> None:
    fake, url = api
    feed, events, _ = make_feed(url, tmp_path)
    feed.config = feed.config.model_copy(update={"poll_seconds": 0.01})
    fake.remaining = 10**9

    async def emit(e: FeedEvent) -> None:
        events.extend(unbatched([e]))

    task = asyncio.create_task(feed.run(emit))
    async with asyncio.timeout(10):
        while feed.stats["snapshots"] < 5:
            await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # From the fourth response on the board is empty: every fixture left it, once.
    assert sum(1 for e in events if type(e).__name__ == "BookCleared") == 28
