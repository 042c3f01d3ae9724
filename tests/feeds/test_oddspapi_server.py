"""The local OddsPapi server is as strict as docs/reference/oddspapi.md §5-§6: auth by `apiKey`, the
documented error bodies, rate limits with their headers, and the WebSocket login rules
(bot/sim/oddspapi_server.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from bot.sim.oddspapi_server import LocalOddsPapiServer, load_dataset

DATA = Path(__file__).parents[1] / "data" / "oddspapi"
SOCCER = "id1000002361061419"


@pytest.fixture
async def server() -> AsyncIterator[tuple[LocalOddsPapiServer, str]]:
    markets, fixtures = load_dataset(DATA)
    srv = LocalOddsPapiServer(markets, fixtures, per_minute=4, login_timeout_seconds=0.3, max_connections=1)
    url = await srv.start()
    try:
        yield srv, url
    finally:
        await srv.stop()


async def test_rest_auth_errors_and_rate_limits(server: tuple[LocalOddsPapiServer, str]) -> None:
    srv, url = server
    async with httpx.AsyncClient(base_url=url) as http:
        missing = await http.get("/en/markets", params={"sportId": 10})
        assert (missing.status_code, missing.json()["code"]) == (401, "missing_api_key")
        assert "X-RateLimit-Limit" not in missing.headers
        wrong = await http.get("/en/markets", params={"sportId": 10, "apiKey": "nope"})
        assert (wrong.status_code, wrong.json()) == (401, {"error": 401, "code": "invalid_api_key",
                                                           "message": "API key is unknown, expired or disabled"})
        key = {"apiKey": srv.api_key}
        ok = await http.get("/en/markets", params={"sportId": 10, **key})
        assert ok.status_code == 200 and {m["marketId"] for m in ok.json()} == {101, 1010, 1068}
        assert ok.headers["X-RateLimit-Limit"] == "4"
        both = await http.get("/en/markets", params={"sportId": 10, "marketIds": 101, **key})
        assert (both.status_code, both.json()["code"]) == (400, "invalid_filters")
        six = "pinnacle,sharpbet,betcris,a,b,c"
        too_many = await http.get("/en/fixtures/odds", params={"fixtureId": SOCCER, "bookmakers": six, **key})
        assert (too_many.status_code, too_many.json()["code"]) == (400, "invalid_filters")
        no_books = await http.get("/en/fixtures/odds", params={"fixtureId": SOCCER, **key})
        assert (no_books.status_code, no_books.json()["code"]) == (400, "missing_bookmaker")
        not_allowed = await http.get("/en/fixtures/odds", params={"fixtureId": SOCCER, "bookmakers": "kalshi", **key})
        assert (not_allowed.status_code, not_allowed.json()["code"]) == (403, "bookmaker_not_allowed")
        # /markets and /fixtures share the per-minute budget (4 here): 2 used above
        answers = [await http.get("/en/fixtures", params={"sportId": 10, **key}) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        limited = [a for a in answers if a.status_code == 429]
        assert limited, [a.status_code for a in answers]
        body = limited[0].json()
        assert (body["error"], body["code"], body["message"]) == (429, "rate_limited", "rate limit exceeded")
        assert body["retryAfterSec"] >= 1 and limited[0].headers["Retry-After"] == str(body["retryAfterSec"])
        assert limited[0].headers["X-RateLimit-Remaining"] == "0"


async def test_ws_login_rules(server: tuple[LocalOddsPapiServer, str]) -> None:
    srv, _ = server
    async with connect(srv.ws_url) as ws:  # no login within the timeout
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4000
    async with connect(srv.ws_url) as ws:
        await ws.send(orjson.dumps({"type": "login", "apiKey": "nope", "channels": ["odds"]}).decode())
        assert orjson.loads(await ws.recv()) == {"type": "error", "code": "invalid_api_key"}
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001
    login = {"type": "login", "apiKey": srv.api_key, "channels": ["odds"], "sportIds": [10],
             "bookmakers": ["pinnacle"], "receiveType": "json"}
    async with connect(srv.ws_url) as ws:
        await ws.send(orjson.dumps(login).decode())
        ok = orjson.loads(await ws.recv())
        assert ok["type"] == "login_ok" and ok["resume"]["serverEpoch"] == srv.epoch
        async with connect(srv.ws_url) as second:  # max_connections=1
            await second.send(orjson.dumps(login).decode())
            assert orjson.loads(await second.recv())["code"] == "too_many_connections"
            with pytest.raises(ConnectionClosed) as closed:
                await second.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4003
        # filters: a betcris-only or NFL update does not reach this pinnacle/soccer login
        srv.publish("id1400003162011811", {"pinnacle": {"x": {"outcomeId": 141, "playerId": 0, "price": 2.5}}})
        srv.publish(SOCCER, {"betcris": {"y": {"outcomeId": 101, "playerId": 0, "price": 1.5}}})
        entry = srv.publish(SOCCER, {"pinnacle": {"z": {"outcomeId": 101, "playerId": 0, "price": 1.55}}})
        frame = orjson.loads(await ws.recv())
        assert frame["entryId"] == entry and frame["payload"]["odds"] == {
            "pinnacle": {"z": {"outcomeId": 101, "playerId": 0, "price": 1.55}}}
