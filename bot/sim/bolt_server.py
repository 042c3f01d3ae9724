"""A local BoltOdds-protocol server: a test fixture and dev tool (docs/architecture.md,
"Simulators").

Serves a recording of BoltOdds frames over a real WebSocket on loopback with the documented
handshake (BoltOdds docs, Quick Start; docs/reference/boltodds.md §2): `socket_connected` on
connect, then a `subscribe` with filters, answered by `subscription_updated`, an `initial_state`
per (sportsbook, game) of the server's current state, and from then on the recorded frames as
they are broadcast. It answers the REST discovery calls (`/api/get_info`, `/api/get_games`,
`/api/get_markets`) on the same port, like the real host.

The server keeps one world: a broadcaster applies each recorded frame to its state (replace /
merge / delete as docs/reference/boltodds.md §9 says) and sends it, filtered, to every
subscriber. It waits for a subscriber before each frame, so nothing is broadcast to nobody.
`drop()` closes every connection; `drop_after` drops them right after the given frame numbers
(1-based), for deterministic reconnect tests. A reconnecting client gets the state as of the
drop as `initial_state` frames, then the frames it has not seen.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterable
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import orjson
from loguru import logger
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from bot.feeds.recording import read_records

Message = dict[str, Any]
_REPLACE = {"initial_state", "game_added", "game_update"}


def load_frames(path: Path) -> list[str]:
    """Frames to serve from a recording (`{"ts", "source": "boltodds", "raw"}` lines) or from a
    captured-samples JSON (`{action: [frames]}`, sorted by timestamp)."""
    if path.suffix == ".json":
        samples = orjson.loads(path.read_bytes())
        frames = sorted((f for fs in samples.values() for f in fs), key=lambda f: f.get("timestamp", ""))
        return [orjson.dumps(f).decode() for f in frames]
    return [r.raw for r in read_records(path, "recording") if r.source == "boltodds" and r.raw is not None]


def _messages(frame: str) -> list[Message]:
    try:
        parsed = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return []
    items = parsed if isinstance(parsed, list) else [parsed]
    return [m for m in items if isinstance(m, dict)]


class _Filters:
    """A client's subscription filters; an absent filter means all."""

    def __init__(self, filters: dict[str, list[str]]) -> None:
        self.sports = set(filters.get("sports") or ())
        self.books = set(filters.get("sportsbooks") or ())
        self.games = set(filters.get("games") or ())
        self.markets = set(filters.get("markets") or ())

    def message(self, message: Message) -> Message | None:
        """The message as this client sees it, or None if filtered out."""
        data = message.get("data")
        if not isinstance(data, dict):
            return message  # ping, error, ...
        for wanted, value in ((self.sports, data.get("sport")), (self.books, data.get("sportsbook")),
                              (self.games, data.get("game"))):
            if wanted and isinstance(value, str) and value not in wanted:
                return None
        outcomes = data.get("outcomes")
        if self.markets and isinstance(outcomes, dict) and outcomes:
            kept = {k: o for k, o in outcomes.items() if o.get("outcome_name") in self.markets}
            if not kept and message.get("action") == "line_update":
                return None
            return {**message, "data": {**data, "outcomes": kept}}
        return message


class _Client:
    def __init__(self, ws: ServerConnection, filters: _Filters) -> None:
        self.ws, self.filters = ws, filters


class BoltServer:
    """Serve `frames` (text frames, in order) on `host:port` (0 = a free port).

    `interval` seconds between broadcast frames (0 = as fast as the clients take them);
    `ping_interval` seconds between `{"action": "ping"}` keep-alives (None = none); `api_key`
    if set must match the `key` query parameter; `info` is the `get_info` answer; `answers`
    replaces any discovery endpoint's answer as given (e.g. an unexpected shape, for tests).
    """

    def __init__(
        self,
        frames: Iterable[str],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        interval: float = 0.0,
        ping_interval: float | None = 15.0,
        drop_after: Iterable[int] = (),
        info: dict[str, list[str]] | None = None,
        answers: dict[str, Any] | None = None,
    ) -> None:
        self.frames = list(frames)
        self.host, self.port, self.api_key = host, port, api_key
        self.interval, self.ping_interval = interval, ping_interval
        self.drop_after = set(drop_after)
        self.info = info
        self.answers = answers or {}
        self.sent = 0  # frames broadcast so far
        self.subscriptions: list[dict[str, list[str]]] = []  # every subscribe's filters
        self.connections = 0
        self.finished = asyncio.Event()  # every frame was broadcast
        self._state: dict[tuple[str | None, str], Message] = {}  # (sportsbook, game)
        self._clients: list[_Client] = []
        self._subscribed = asyncio.Event()
        self._lock = asyncio.Lock()
        self._server: Server | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def url(self) -> str:
        """The WebSocket URL (`ws://host:port/api`); REST lives under the same `/api`."""
        return f"ws://{self.host}:{self.port}/api"

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.port}/api"

    async def start(self) -> Self:
        self._server = await serve(self._handle, self.host, self.port, max_size=None,
                                   process_request=self._http)
        self.port = self._server.sockets[0].getsockname()[1]
        self._tasks = [asyncio.create_task(self._broadcast(), name="bolt-server-broadcast")]
        if self.ping_interval:
            self._tasks.append(asyncio.create_task(self._pings(), name="bolt-server-pings"))
        logger.info("BoltOdds test server on {} ({} frames)", self.url, len(self.frames))
        return self

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server:
            self._server.close()
            await self._server.wait_closed()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def drop(self) -> int:
        """Close every client connection (code 1011, as a backend failure would); returns how
        many were dropped."""
        clients, self._clients = self._clients, []
        self._subscribed.clear()
        for client in clients:
            await client.ws.close(1011, "dropped on command")
        return len(clients)

    # -- HTTP: REST discovery and the key check ------------------------------------------------

    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        parts = urlsplit(request.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if self.api_key is not None and query.get("key") != self.api_key:
            return connection.respond(HTTPStatus.UNAUTHORIZED, "invalid key\n")
        endpoint = parts.path.rstrip("/").rsplit("/", 1)[-1]
        if endpoint == "api":
            return None  # the WebSocket upgrade
        answers = {"get_info": self._info, "get_games": self._games, "get_markets": self._markets}
        if endpoint not in answers:
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        body = orjson.dumps(self.answers[endpoint] if endpoint in self.answers else answers[endpoint](query))
        headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return Response(200, "OK", headers, body)

    def _all_data(self) -> list[dict[str, Any]]:
        datas = [m["data"] for f in self.frames for m in _messages(f) if isinstance(m.get("data"), dict)]
        return [d for d in datas if isinstance(d.get("game"), str) and isinstance(d.get("sport"), str)]

    def _info(self, query: dict[str, str]) -> dict[str, list[str]]:
        if self.info is not None:
            return self.info
        datas = self._all_data()
        return {"sports": sorted({d["sport"] for d in datas}),
                "sportsbooks": sorted({d["sportsbook"] for d in datas})}

    def _games(self, query: dict[str, str]) -> dict[str, dict[str, Any]]:
        sports = set(query["sports"].split(",")) if query.get("sports") else None
        return {
            d["game"]: {"universal_id": d.get("universal_game_id"), "game": d["game"],
                        "when": d.get("info", {}).get("when"), "sport": d["sport"],
                        "orig_teams": d.get("info", {}).get("orig_teams")}
            for d in self._all_data() if sports is None or d["sport"] in sports
        }

    def _markets(self, query: dict[str, str]) -> dict[str, dict[str, list[str]]]:
        sports = set(query["sports"].split(",")) if query.get("sports") else None
        books = set(query["sportsbooks"].split(",")) if query.get("sportsbooks") else None
        out: dict[str, dict[str, set[str]]] = {}
        for d in self._all_data():
            if (sports and d["sport"] not in sports) or (books and d["sportsbook"] not in books):
                continue
            names = {o.get("outcome_name") for o in (d.get("outcomes") or {}).values()}
            out.setdefault(d["sportsbook"], {}).setdefault(d["sport"], set()).update(n for n in names if n)
        return {b: {s: sorted(n) for s, n in sp.items()} for b, sp in out.items()}

    # -- WebSocket ---------------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        try:
            await ws.send(orjson.dumps({"action": "socket_connected"}).decode())
            request = orjson.loads(await ws.recv())
            if not (isinstance(request, dict) and request.get("action") == "subscribe"):
                await ws.close(1008, "expected subscribe")
                return
            filters = request.get("filters") or {}
            self.subscriptions.append(filters)
            client = _Client(ws, _Filters(filters))
            async with self._lock:  # a consistent snapshot: no frame is applied meanwhile
                await ws.send(orjson.dumps({"action": "subscription_updated"}).decode())
                now = datetime.now(UTC).isoformat()
                for data in self._state.values():
                    seen = client.filters.message({"timestamp": now, "action": "initial_state", "data": data})
                    if seen is not None:
                        await ws.send(orjson.dumps(seen).decode())
                self._clients.append(client)
                self._subscribed.set()
            await ws.wait_closed()
        except (ConnectionClosed, orjson.JSONDecodeError):
            pass
        finally:
            self._clients = [c for c in self._clients if c.ws is not ws]
            if not self._clients:
                self._subscribed.clear()

    def _apply(self, message: Message) -> None:
        """Move the world by one message (docs/reference/boltodds.md §9)."""
        action, data = message.get("action"), message.get("data")
        if not isinstance(data, dict):
            return
        book, game = data.get("sportsbook"), data.get("game")
        if action in _REPLACE and isinstance(game, str):
            self._state[(book, game)] = copy.deepcopy(data)
        elif action == "line_update" and isinstance(game, str):
            current = self._state.setdefault((book, game), {**copy.deepcopy(data), "outcomes": {}})
            current["outcomes"].update(copy.deepcopy(data.get("outcomes") or {}))
        elif action == "game_removed" and isinstance(game, str):
            self._state.pop((book, game), None)
        elif action in ("book_clear", "sport_clear"):
            sport = data.get("sport") if action == "sport_clear" else None
            for key, d in list(self._state.items()):
                if (action == "book_clear" and key[0] == book) or (sport and d.get("sport") == sport):
                    del self._state[key]

    async def _broadcast(self) -> None:
        for number, frame in enumerate(self.frames, 1):
            await self._subscribed.wait()
            async with self._lock:
                messages = _messages(frame)
                for message in messages:
                    self._apply(message)
                for client in list(self._clients):
                    await self._send_filtered(client, frame, messages)
                self.sent = number
            if number in self.drop_after:
                await self.drop()
            if self.interval:
                await asyncio.sleep(self.interval)
        self.finished.set()

    async def _send_filtered(self, client: _Client, frame: str, messages: list[Message]) -> None:
        seen = [m for m in (client.filters.message(m) for m in messages) if m is not None]
        if messages and not seen:
            return
        # Unreadable frames are relayed as recorded: the client must cope with them.
        text = frame if not messages or seen == messages else orjson.dumps(seen if len(seen) > 1 else seen[0]).decode()
        try:
            await client.ws.send(text)
        except ConnectionClosed:
            pass

    async def _pings(self) -> None:
        assert self.ping_interval
        while True:
            await asyncio.sleep(self.ping_interval)
            for client in list(self._clients):
                try:
                    await client.ws.send('{"action": "ping"}')
                except ConnectionClosed:
                    pass
