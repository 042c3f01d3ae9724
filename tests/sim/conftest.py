"""The local ABP server on a loopback port, driven over real HTTP (httpx) and WebSocket
(websockets): `abp(**server_kwargs)` starts one for the test (stopped at teardown)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bot.execution.config import PaperConfig
from bot.sim.abp_server import LocalAbpServer

API_KEY = "sim-test-key"


def order(stake: float = 10.0, **kw: Any) -> dict[str, Any]:
    """A valid PlaceOrderRequest (docs/reference/abp.md §6.2) at pinnacle unless told otherwise."""
    body = {"requestUuid": str(uuid.uuid4()), "fixtureId": "id1000004461512432", "outcomeId": 101, "playerId": 0,
            "orderPrice": 2.0, "orderStake": stake, "userRef": "sim-test", "testOrder": False,
            "bookmakers": "pinnacle", "acceptPartialStake": True}
    body.update(kw)
    return body


class Stream:
    """A logged-in client WebSocket that reads frames with a deadline."""

    def __init__(self, ws: ClientConnection, login_ok: dict[str, Any]) -> None:
        self.ws = ws
        self.login_ok = login_ok

    async def send(self, msg: dict[str, Any]) -> None:
        await self.ws.send(orjson.dumps(msg).decode())

    async def recv(self, timeout: float = 3.0) -> dict[str, Any]:
        return orjson.loads(await asyncio.wait_for(self.ws.recv(), timeout))

    async def data(self, channel: str | None = None, timeout: float = 3.0) -> dict[str, Any]:
        """The next data frame (of `channel`), skipping pings, pongs and other control frames."""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.recv(timeout)
                if frame.get("type") == "data" and channel in (None, frame["channel"]):
                    return frame

    async def frames_within(self, seconds: float) -> list[dict[str, Any]]:
        """Everything that arrives within `seconds` (to show that nothing does), or until the
        server closes the connection."""
        out: list[dict[str, Any]] = []
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while (left := end - loop.time()) > 0:
            try:
                out.append(await self.recv(left))
            except (TimeoutError, ConnectionClosed):
                break
        return out


class Abp:
    """One running server, its base URL and an authenticated HTTP client."""

    def __init__(self, server: LocalAbpServer, url: str) -> None:
        self.server = server
        self.url = url
        self.http = httpx.AsyncClient(base_url=url, headers={"x-api-key": API_KEY}, timeout=5)
        self._streams: list[ClientConnection] = []

    async def place(self, *orders: dict[str, Any], timeout: float = 5.0) -> httpx.Response:
        return await self.http.post("/place-orders", json={"orders": list(orders)}, timeout=timeout)

    async def admin(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        r = await self.http.post(f"/_admin/{path}", json=body or {})
        assert r.status_code == 200, r.text
        return r

    async def stream(self, channels: list[str] | None = None, reliable: bool = True) -> Stream:
        ws = await connect(self.url.replace("http", "ws", 1) + "/ws")
        self._streams.append(ws)
        await ws.send(orjson.dumps({"type": "login", "apiKey": API_KEY, "channels": channels or [],
                                    "reliableDelivery": reliable}).decode())
        login_ok = orjson.loads(await asyncio.wait_for(ws.recv(), 3))
        assert login_ok["type"] == "login_ok", login_ok
        return Stream(ws, login_ok)

    async def close(self) -> None:
        for ws in self._streams:
            await ws.close()
        await self.http.aclose()
        await self.server.stop()


@pytest.fixture
async def abp() -> AsyncIterator[Callable[..., Awaitable[Abp]]]:
    """Start a server with the given LocalAbpServer arguments (small limits and timings)."""
    running: list[Abp] = []

    async def start(**kw: Any) -> Abp:
        kw.setdefault("paper", PaperConfig(default_max_stake=500, default_min_stake=1))
        server = LocalAbpServer(api_key=API_KEY, **kw)
        running.append(Abp(server, await server.start()))
        return running[-1]

    yield start
    for one in running:
        await one.close()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    """Wait until the async `check()` holds; fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not await check():
        if loop.time() > end:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)
