"""Local OddsPapi v5 server: REST + WebSocket on loopback over a small recorded data set, for tests
and rehearsals (docs/reference/oddspapi.md §5-§6; docs/architecture.md, "Simulators"). Needs the
`sim` extra (starlette, uvicorn), like bot/sim/abp_server.py.

Data set (`load_dataset(folder)`, tests/data/oddspapi/): `markets.json` (the `/markets` rows of
each sport, OddsPapi's shape with `outcomes`) and `fixtures.json` (one `/fixtures/odds` answer per
fixture: the fixture's fields, `bookmakers` metadata and `odds`). `rebase` moves every start time
so that the earliest is at that instant (a recording's games are in the past).

As strict as the document (errors `{error, message, code}`, docs/reference/oddspapi.md §5):
- every REST path is `/{lang}/...`, `lang` two letters; auth is the `apiKey` query parameter:
  missing -> 401 `missing_api_key`, wrong -> 401 `invalid_api_key` (no rate headers on either);
- rate limits per key and endpoint class: the odds endpoints `odds_per_second` (10) a second,
  everything else `per_minute` (100) a minute; over it -> 429 `rate_limited` with `retryAfterSec`
  and `Retry-After`; `X-RateLimit-Limit/-Remaining/-Reset` on every authenticated answer;
  `faults_429 = N` answers the next N requests 429;
- `/markets`: exactly one of `marketIds`, `sportId`, `outcomeIds` (else 400 `invalid_filters`),
  integers (else 422 `validation_error`);
- `/fixtures`: one of `sportId`, `tournamentId`, `fixtureIds` (else 400 `invalid_filters`),
  `startTimeFrom` / `startTimeTo` epoch seconds (else 422);
- `/fixtures/odds`: `fixtureId` (one; else 422), `bookmakers` required (400 `missing_bookmaker`),
  at most 5 slugs (400 `invalid_filters`), each allowed to the key (403 `bookmaker_not_allowed`);
  an unknown fixture is 404 `not_found`.
- WebSocket `/ws`: `login` within `login_timeout_seconds` (else close 4000); a first message that
  is not a login -> `error` `login_required` and close 4000; a wrong key -> `error`
  `invalid_api_key` and close 4001; more than `max_connections` (5) open for the key -> close
  4003; `receiveType` other than `json` -> `error` `not_implemented` and close 1003; a channel other
  than those served (`odds`) -> `error` `channel_not_allowed` and close 1008. Then `login_ok`
  (`access`, `resume {serverEpoch, resumeWindowMs, replayChannels, serverEntryIds}`); a login with
  this epoch's `lastSeenId.odds` still buffered gets the entries after it and `resume_complete`,
  any other `lastSeenId` gets `snapshot_required`.

Driving it: `publish(fixture_id, odds)` changes the state REST serves and sends one `odds` UPDATE
to every connection whose filters (sportIds, tournamentIds, fixtureIds: any of them; bookmakers)
match; `send_raw(text)` sends any frame (malformed input for tests); `drop()` closes every
connection (1012), as `bot feeds serve-oddspapi` does on SIGUSR1; `wait_logins(n)` waits until `n`
logins were accepted. `logins` holds the accepted login messages (apiKey removed) and `requests`
every REST request (path and query without the key).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from bot.sim.serving import LoopbackServer, json_response

ODDS_ENDPOINTS = frozenset({"fixtures/odds", "fixtures/odds/main", "futures/odds"})
CHANNELS = frozenset({"odds"})
BUFFER = 1000


def load_dataset(folder: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(markets rows, fixtures with odds) of a data set folder (see the module docstring)."""
    markets = orjson.loads((folder / "markets.json").read_bytes())
    fixtures = orjson.loads((folder / "fixtures.json").read_bytes())
    return markets, fixtures


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None,
           **extra: Any) -> Response:
    body = {"error": status, "message": message, "code": code, **extra}
    return json_response(body, status, headers)


def _ints(text: str | None) -> list[int] | None:
    """"1,2" -> [1, 2]; None when absent; raises ValueError when not integers."""
    if text is None:
        return None
    return [int(part) for part in text.split(",") if part.strip()]


@dataclass
class _Conn:
    ws: WebSocket
    sports: frozenset[int]
    tournaments: frozenset[int]
    fixtures: frozenset[str]
    books: frozenset[str]
    queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)


@dataclass
class _Window:
    start: float = 0.0
    count: int = 0


class LocalOddsPapiServer:
    """See the module docstring."""

    def __init__(
        self,
        markets: Sequence[dict[str, Any]],
        fixtures: Sequence[dict[str, Any]],
        *,
        api_key: str = "local-oddspapi-key",
        allowed_bookmakers: Sequence[str] | None = None,
        odds_per_second: int = 10,
        per_minute: int = 100,
        login_timeout_seconds: float = 10.0,
        max_connections: int = 5,
        rebase: datetime | None = None,
    ) -> None:
        self.api_key = api_key
        self.markets = [dict(m) for m in markets]
        self.fixtures: dict[str, dict[str, Any]] = {f["fixtureId"]: copy.deepcopy(f) for f in fixtures}
        if rebase is not None and self.fixtures:
            shift = int(rebase.timestamp()) - min(f["startTime"] for f in self.fixtures.values())
            for fixture in self.fixtures.values():
                fixture["startTime"] += shift
        books = {b for f in self.fixtures.values() for b in (f.get("odds") or {})}
        self.allowed_bookmakers = frozenset(allowed_bookmakers if allowed_bookmakers is not None else books)
        self.limits = {"odds": (odds_per_second, 1.0), "other": (per_minute, 60.0)}
        self.faults_429 = 0
        self.login_timeout = login_timeout_seconds
        self.max_connections = max_connections
        self.epoch = str(int(time.time() * 1000))
        self.logins: list[dict[str, Any]] = []
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._windows: dict[str, _Window] = {"odds": _Window(), "other": _Window()}
        self._conns: list[_Conn] = []
        self._buffer: deque[tuple[str, str, dict[str, Any]]] = deque(maxlen=BUFFER)  # (entryId, fixtureId, frame)
        self._entry = 0
        self._changed = asyncio.Condition()
        self.app = Starlette(routes=[
            Route("/{lang}/markets", self._markets, methods=["GET"]),
            Route("/{lang}/fixtures", self._fixtures, methods=["GET"]),
            Route("/{lang}/fixtures/odds", self._odds, methods=["GET"]),
            WebSocketRoute("/ws", self._ws),
        ])
        self._uvicorn = LoopbackServer()
        self.port: int | None = None

    # -- running -------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve in the running loop; returns the REST base URL (http://host:port)."""
        url = await self._uvicorn.start(self.app, host, port, lifespan="off", timeout_graceful_shutdown=1,
                                       ws_ping_interval=None)
        self.port = self._uvicorn.port
        self.host = host
        return url

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws"

    async def stop(self) -> None:
        if self._uvicorn.launched:
            self.drop()
        await self._uvicorn.stop()

    def drop(self) -> int:
        """Close every WebSocket connection (1012); returns how many."""
        for conn in self._conns:
            conn.queue.put_nowait(None)
        return len(self._conns)

    async def wait_logins(self, count: int, timeout: float = 10.0) -> None:
        """Until `count` logins were accepted in all."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(self.logins) >= count)

    async def wait_connections(self, count: int, timeout: float = 10.0) -> None:
        """Until exactly `count` WebSocket connections are open and logged in."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(self._conns) == count)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- publishing ----------------------------------------------------------------------------

    def publish(self, fixture_id: str, odds: dict[str, dict[str, dict[str, Any]]]) -> str:
        """Apply `odds` ({bookmaker: {oddsId: entry}}) to the fixture and send one `odds` UPDATE;
        returns its entryId."""
        fixture = self.fixtures[fixture_id]
        stored = fixture.setdefault("odds", {})
        for book, entries in odds.items():
            stored.setdefault(book, {}).update(copy.deepcopy(entries))
        now = int(time.time() * 1000)
        self._entry += 1
        entry_id = f"{now}-{self._entry}"
        frame = {"channel": "odds", "type": "UPDATE", "payload": {"fixtureId": fixture_id, "odds": odds},
                 "ts": now, "entryId": entry_id}
        self._buffer.append((entry_id, fixture_id, frame))
        for conn in self._conns:
            self._send_frame(conn, fixture_id, frame)
        return entry_id

    def send_raw(self, text: str) -> None:
        """Send `text` as it is to every connection."""
        for conn in self._conns:
            conn.queue.put_nowait(text)

    def _send_frame(self, conn: _Conn, fixture_id: str, frame: dict[str, Any]) -> None:
        fixture = self.fixtures[fixture_id]
        filtered = bool(conn.sports or conn.tournaments or conn.fixtures)
        if filtered and not (fixture["sport"]["sportId"] in conn.sports
                             or fixture["tournament"]["tournamentId"] in conn.tournaments
                             or fixture_id in conn.fixtures):
            return
        odds = {b: e for b, e in frame["payload"]["odds"].items() if b in conn.books}
        if odds:
            conn.queue.put_nowait(orjson.dumps({**frame, "payload": {**frame["payload"], "odds": odds}}).decode())

    # -- REST ----------------------------------------------------------------------------------

    async def _guard(self, request: Request, endpoint: str) -> Response | None:
        """Auth and rate limits; None when the request may go on."""
        query = dict(request.query_params)
        key = query.pop("apiKey", None)
        self.requests.append((request.url.path, query))
        if len(request.path_params.get("lang", "")) != 2 or not request.path_params["lang"].isalpha():
            return _error(404, "not_found", "unknown path")
        if not key:
            return _error(401, "missing_api_key", "apiKey query parameter is required")
        if key != self.api_key:
            return _error(401, "invalid_api_key", "API key is unknown, expired or disabled")
        kind = "odds" if endpoint in ODDS_ENDPOINTS else "other"
        limit, period = self.limits[kind]
        window, now = self._windows[kind], time.monotonic()
        if now - window.start >= period:
            window.start, window.count = now, 0
        window.count += 1
        reset = max(1, round(window.start + period - now))
        request.state.headers = {"X-RateLimit-Limit": str(limit),
                                 "X-RateLimit-Remaining": str(max(0, limit - window.count)),
                                 "X-RateLimit-Reset": str(reset)}
        if self.faults_429 > 0 or window.count > limit:
            retry = reset if window.count > limit else 1
            self.faults_429 = max(0, self.faults_429 - 1)
            return _error(429, "rate_limited", "rate limit exceeded",
                          {**request.state.headers, "Retry-After": str(retry)}, retryAfterSec=retry)
        return None

    def _ok(self, request: Request, body: Any) -> Response:
        return Response(orjson.dumps(body), 200, headers=request.state.headers, media_type="application/json")

    async def _markets(self, request: Request) -> Response:
        refused = await self._guard(request, "markets")
        if refused is not None:
            return refused
        q = request.query_params
        given = [name for name in ("marketIds", "sportId", "outcomeIds") if q.get(name)]
        if len(given) != 1:
            return _error(400, "invalid_filters", "exactly one of marketIds, sportId, outcomeIds is required")
        try:
            wanted = set(_ints(q.get(given[0])) or [])
        except ValueError:
            return _error(422, "validation_error", f"{given[0]} must be integers")
        if given[0] == "sportId":
            rows = [m for m in self.markets if m["sportId"] in wanted]
        elif given[0] == "marketIds":
            rows = [m for m in self.markets if m["marketId"] in wanted]
        else:
            rows = [m for m in self.markets if any(o["outcomeId"] in wanted for o in m["outcomes"])]
        return self._ok(request, rows)

    async def _fixtures(self, request: Request) -> Response:
        refused = await self._guard(request, "fixtures")
        if refused is not None:
            return refused
        q = request.query_params
        if not any(q.get(k) for k in ("sportId", "tournamentId", "fixtureIds")):
            return _error(400, "invalid_filters", "one of sportId, tournamentId, fixtureIds is required")
        try:
            sports, tournaments = _ints(q.get("sportId")), _ints(q.get("tournamentId"))
            start_from, start_to = _ints(q.get("startTimeFrom")), _ints(q.get("startTimeTo"))
        except ValueError:
            return _error(422, "validation_error", "sportId, tournamentId, startTimeFrom, startTimeTo must be integers")
        ids = set(q["fixtureIds"].split(",")) if q.get("fixtureIds") else None
        rows = []
        for fixture_id, fixture in self.fixtures.items():
            if sports is not None and fixture["sport"]["sportId"] not in sports:
                continue
            if tournaments is not None and fixture["tournament"]["tournamentId"] not in tournaments:
                continue
            if ids is not None and fixture_id not in ids:
                continue
            if (start_from and fixture["startTime"] < start_from[0]) or (start_to and fixture["startTime"] > start_to[0]):
                continue
            rows.append({k: v for k, v in fixture.items() if k != "odds"})
        return self._ok(request, rows)

    async def _odds(self, request: Request) -> Response:
        refused = await self._guard(request, "fixtures/odds")
        if refused is not None:
            return refused
        q = request.query_params
        fixture_id = q.get("fixtureId")
        if not fixture_id or "," in fixture_id:
            return _error(422, "validation_error", "fixtureId (exactly one) is required")
        if not q.get("bookmakers"):
            return _error(400, "missing_bookmaker", "bookmakers is required")
        books = [b.strip() for b in q["bookmakers"].replace(" ", ",").split(",") if b.strip()]
        if len(books) > 5:
            return _error(400, "invalid_filters", "at most 5 bookmakers per request")
        refused_books = [b for b in books if b not in self.allowed_bookmakers]
        if refused_books:
            return _error(403, "bookmaker_not_allowed", f"bookmaker not allowed: {','.join(refused_books)}")
        fixture = self.fixtures.get(fixture_id)
        if fixture is None:
            return _error(404, "not_found", f"fixture {fixture_id} not found")
        body = {**fixture, "odds": {b: e for b, e in (fixture.get("odds") or {}).items() if b in books},
                "bookmakers": {b: m for b, m in (fixture.get("bookmakers") or {}).items() if b in books}}
        return self._ok(request, body)

    # -- WebSocket -----------------------------------------------------------------------------

    async def _ws(self, ws: WebSocket) -> None:
        await ws.accept()
        try:
            async with asyncio.timeout(self.login_timeout):
                raw = await ws.receive_text()
        except (TimeoutError, WebSocketDisconnect):
            with contextlib.suppress(Exception):
                await ws.close(code=4000, reason="login timeout")
            return
        try:
            login = orjson.loads(raw)
        except orjson.JSONDecodeError:
            login = None
        refusal = self._refuse(login)
        if refusal is not None:
            code, close = refusal
            await ws.send_text(orjson.dumps({"type": "error", "code": code}).decode())
            await ws.close(code=close)
            return
        assert isinstance(login, dict)
        books = set(login.get("bookmakers") or self.allowed_bookmakers) & self.allowed_bookmakers
        conn = _Conn(ws, frozenset(login.get("sportIds") or ()), frozenset(login.get("tournamentIds") or ()),
                     frozenset(login.get("fixtureIds") or ()), frozenset(books))
        last = self._buffer[-1][0] if self._buffer else None
        await ws.send_text(orjson.dumps({
            "type": "login_ok", "access": {"live": True, "pregame": True},
            "resume": {"serverEpoch": self.epoch, "resumeWindowMs": 60000, "replayChannels": ["odds"],
                       "serverEntryIds": {"odds": last}},
        }).decode())
        self._resume(conn, login)
        self._conns.append(conn)
        self.logins.append({k: v for k, v in login.items() if k != "apiKey"})
        await self._notify()
        sender = asyncio.create_task(self._sender(conn))
        try:
            while True:
                await ws.receive_text()  # the client has nothing more to say; read until it goes
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            sender.cancel()
            with contextlib.suppress(ValueError):
                self._conns.remove(conn)
            await self._notify()

    def _refuse(self, login: object) -> tuple[str, int] | None:
        """(error code, close code) for a login that is refused, else None."""
        if not isinstance(login, dict) or login.get("type") != "login":
            return "login_required", 4000
        if login.get("apiKey") != self.api_key:
            return "invalid_api_key", 4001
        if len(self._conns) >= self.max_connections:
            return "too_many_connections", 4003
        if login.get("receiveType", "json") != "json":
            return "not_implemented", 1003
        channels = login.get("channels")
        if channels is not None and (not isinstance(channels, list) or not set(channels) <= CHANNELS):
            return "channel_not_allowed", 1008
        return None

    def _resume(self, conn: _Conn, login: dict[str, Any]) -> None:
        last_seen = login.get("lastSeenId")
        if not isinstance(last_seen, dict) or "odds" not in last_seen:
            return
        ids = [entry_id for entry_id, _, _ in self._buffer]
        if login.get("serverEpoch") != self.epoch or last_seen["odds"] not in ids:
            conn.queue.put_nowait(orjson.dumps({"type": "snapshot_required", "channels": ["odds"]}).decode())
            return
        for entry_id, fixture_id, frame in list(self._buffer)[ids.index(last_seen["odds"]) + 1:]:
            self._send_frame(conn, fixture_id, frame)
        conn.queue.put_nowait(orjson.dumps({"type": "resume_complete", "channels": ["odds"]}).decode())

    async def _sender(self, conn: _Conn) -> None:
        with contextlib.suppress(Exception):
            while True:
                text = await conn.queue.get()
                if text is None:
                    await conn.ws.close(code=1012, reason="server restart")
                    return
                await conn.ws.send_text(text)
