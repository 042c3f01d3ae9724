"""A scripted ABP WebSocket server on loopback, for the stream tests.

Each connection must `login` first (docs/reference/abp.md §13.1: JSON, the API key, a `channels`
list, within the auth window); the server answers `login_ok` with the session's `subscriptionId`
and runs the test's script for that session while recording every client message. Client messages
are held to the documented shapes (§13.4, §13.6-13.7): anything else gets an `error` frame with
`ref` and is listed in `Session.errors`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, Self

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from bot.execution.config import AbpConfig
from bot.execution.venue import RESYNC, VenueMessage

API_KEY = "scripted-key"

# client message type -> the integer fields it must carry (docs/reference/abp.md §13.4, §13.6)
CLIENT_MESSAGES: dict[str, tuple[str, ...]] = {
    "ping": (), "pong": (), "ack": ("seq",), "ack_batch": ("upToSeq",), "replay": ("fromSeq",),
    "update_channels": (), "subscribe_betslip": ("outcomeId", "playerId"),
    "unsubscribe_betslip": ("outcomeId", "playerId"),
}


class Session:
    """One logged-in connection: the script sends with it; `received` is what the client sent."""

    def __init__(self, ws: ServerConnection, login: dict[str, Any], answer_pings: bool) -> None:
        self.ws = ws
        self.answer_pings = answer_pings  # a script may turn it off: a server gone silent
        self.login = login
        self.received: list[dict[str, Any]] = []
        self.errors: list[Any] = []
        self.started = asyncio.get_running_loop().time()

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(orjson.dumps(frame).decode())

    async def data(self, seq: int, channel: str = "orders", event: str = "UPDATE", payload: Any = None) -> None:
        """A data frame in the documented envelope (docs/reference/abp.md §13.3)."""
        await self.send({
            "type": "data", "channel": channel, "event": event,
            "payload": {"orderId": seq} if payload is None else payload,
            "ts": int(time.time() * 1000), "seq": seq, "requireAck": bool(self.login.get("reliableDelivery")),
        })

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.received if m.get("type") == kind]

    def acked(self) -> int:
        """The highest `ack_batch upToSeq` so far (0: none)."""
        return max((m["upToSeq"] for m in self.of("ack_batch")), default=0)

    async def close(self) -> None:
        await self.ws.close()


Script = Callable[[Session], Awaitable[None]]


async def idle(session: Session) -> None:
    """Say nothing; the connection stays open until the client leaves."""


class ScriptedAbp:
    """`async with ScriptedAbp([script0, script1, ...]) as srv:` connection i runs script i (the
    last one for any later connection); after a script returns the connection stays open until
    the client closes it. `answer_pings=False` makes a server that never answers `ping`."""

    def __init__(
        self, scripts: list[Script], *, subscription_ids: list[int] | None = None, answer_pings: bool = True,
        auth_seconds: float = 30.0,
    ) -> None:
        self.scripts = scripts or [idle]
        self.subscription_ids = subscription_ids or [1]
        self.answer_pings = answer_pings
        self.auth_seconds = auth_seconds
        self.sessions: list[Session] = []
        self._server: Server | None = None

    async def __aenter__(self) -> Self:
        self._server = await serve(self._handle, "127.0.0.1", 0, ping_interval=None)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = next(iter(self._server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}/ws"

    def config(self, **kw: Any) -> AbpConfig:
        """An AbpConfig for this server with fast reconnects; `kw` overrides."""
        base: dict[str, Any] = {
            "ws_url": self.url, "api_key": API_KEY, "ws_ping_seconds": 5.0, "ws_login_timeout_seconds": 2.0,
            "ws_reconnect_initial_seconds": 0.02, "ws_reconnect_max_seconds": 0.05,
            "ws_dead_after_seconds": 5.0, "ws_gap_wait_seconds": 2.0, "emergency_wait_seconds": 2.0,
        }
        return AbpConfig(**(base | kw))

    async def _handle(self, ws: ServerConnection) -> None:
        login = await self._login(ws)
        if login is None:
            return
        index = len(self.sessions)
        session = Session(ws, login, self.answer_pings)
        self.sessions.append(session)
        reliable = bool(login.get("reliableDelivery"))
        await session.send({
            "type": "login_ok", "clientName": "scripted", "channels": login["channels"],
            "subscriptionId": self.subscription_ids[min(index, len(self.subscription_ids) - 1)],
            "access": {"clientFiltered": ["orders", "bets", "settlements", "accounts", "balance", "betslip"],
                       "global": ["fixtures", "currencies", "status", "emergency"]},
            "reliableDelivery": reliable,
            "features": {"messageOrdering": True, "acknowledgments": reliable, "batchAck": reliable},
        })
        reader = asyncio.create_task(self._read(session))
        try:
            with contextlib.suppress(ConnectionClosed):
                await self.scripts[min(index, len(self.scripts) - 1)](session)
            await reader
        finally:
            reader.cancel()

    async def _login(self, ws: ServerConnection) -> dict[str, Any] | None:
        try:
            async with asyncio.timeout(self.auth_seconds):
                login = orjson.loads(await ws.recv())
        except (TimeoutError, orjson.JSONDecodeError, ConnectionClosed):
            await ws.close(4001)
            return None
        if (not isinstance(login, dict) or login.get("type") != "login" or login.get("apiKey") != API_KEY
                or not isinstance(login.get("channels"), list)
                or not isinstance(login.get("reliableDelivery", False), bool)):
            await ws.send(orjson.dumps({"type": "error", "message": "Invalid login", "ref": login}).decode())
            await ws.close(4003)
            return None
        return login

    async def _read(self, session: Session) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for text in session.ws:
                msg = _parse(text)
                if msg is None or not _valid(msg):
                    session.errors.append(text)
                    await session.send({"type": "error", "message": "bad client message", "ref": text})
                    continue
                session.received.append(msg)
                if msg["type"] == "ping" and session.answer_pings:
                    await session.send({"type": "pong"})


def _parse(text: str | bytes) -> dict[str, Any] | None:
    try:
        msg = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return msg if isinstance(msg, dict) else None


def _valid(msg: dict[str, Any]) -> bool:
    fields = CLIENT_MESSAGES.get(msg.get("type"))  # type: ignore[arg-type]
    return fields is not None and all(
        isinstance(msg.get(f), int) and not isinstance(msg.get(f), bool) and msg[f] >= 0 for f in fields)


class Inbox:
    """The stream's `on_message`: keeps every VenueMessage in arrival order."""

    def __init__(self) -> None:
        self.items: list[VenueMessage] = []

    async def __call__(self, msg: VenueMessage) -> None:
        self.items.append(msg)

    def data(self) -> list[VenueMessage]:
        return [m for m in self.items if m.channel != RESYNC]

    def resyncs(self, event: str) -> list[VenueMessage]:
        return [m for m in self.items if m.channel == RESYNC and m.event == event]

    def order_ids(self) -> list[Any]:
        return [m.payload["orderId"] for m in self.data() if m.channel == "orders"]
