"""Local 55-Tech MM API server (starlette + uvicorn, like bot/sim/abp_server.py) for tests and
rehearsals: the read-only client API and the `/ws/subscribe` WebSocket on loopback, as strict as
the MM documents (55-Tech docs, "MM Authentication", "MM Error Handling", "MM WebSocket"; our notes
in docs/reference/mm.md). Needs the `sim` extra.

Strict where the documents speak:
- every `/api/v1/*` request needs `X-API-Key`, a UUID equal to the server's key; otherwise 401
  `{"detail": "Invalid or missing API key"}` (MM Authentication > Error responses), also for a
  wrong header name (`Authorization: Bearer`, MM Error Handling > Common errors);
- 100 requests per rolling minute per key (`rate_limit`, `rate_window_seconds`); beyond, 429
  `{"detail": "Rate limit exceeded: 100 requests per minute"}` (MM Error Handling > Rate limiting);
- unknown ids are 404 `{"detail": "Not found"}`; bad query values are 422 with the documented
  `{"detail": [{"loc": ["query", name], "msg", "type"}]}` (status values of /positions, dates of
  /pnl and the summaries as YYYY-MM-DD);
- `GET /ws/subscribe` over plain HTTP is 426 (MM Error Handling > WebSocket upgrade);
- WebSocket: the subscribe must come within `subscribe_timeout_seconds` (30) or the connection is
  closed; `api_key required`, `Invalid api_key format`, `Invalid API key` and, past 5 open
  connections for the key, `Connection limit exceeded` answer `{"type": "error", "message": ...}`
  and close; `subscribed` carries `subscription_id` and the channels; `ping` -> `pong`;
  `heartbeat` every `heartbeat_seconds` (60); `unsubscribe` ends the subscription; `emergency`
  and `scores` go to every subscriber of the channel (global), the rest only to the key's client.

Switches (methods, and the same as POST /_admin/... for `bot`-less use): `set_positions(rows)`,
`set_open_orders(rows)`, `set_emergency(active, reason)` (an `emergency` broadcast),
`faults` (`fail_5xx`: the next N API requests answer 500). Recorded: `cancel_all_calls` (each
POST /api/v1/orders/cancel-all with its query), `requests` (method, path, query, status).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from bot.execution.mm_config import MAX_REQUESTS_PER_MINUTE, MAX_WS_CONNECTIONS
from bot.sim.serving import LoopbackServer
from bot.sim.serving import json_response as _json

AUTH_DETAIL = "Invalid or missing API key"
POSITION_STATUSES = {"open", "matched", "filled", "cancelled", "active"}  # MM docs, List positions
CHANNELS = {"orders", "bets", "accounts", "scores", "emergency"}
GLOBAL_CHANNELS = {"scores", "emergency"}
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _invalid(name: str, msg: str, kind: str = "value_error") -> Response:
    return _json({"detail": [{"loc": ["query", name], "msg": msg, "type": kind}]}, 422)


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


@dataclass
class Faults:
    fail_5xx: int = 0  # the next N API requests answer 500


@dataclass
class _Conn:
    ws: WebSocket
    channels: set[str] = field(default_factory=set)
    queue: asyncio.Queue[dict[str, Any] | None] = field(default_factory=asyncio.Queue)


class LocalMmServer:
    """ASGI app + uvicorn runner (see the module docstring)."""

    def __init__(self, *, api_key: str, client: str = "local-client", rate_limit: int = MAX_REQUESTS_PER_MINUTE,
                 rate_window_seconds: float = 60.0, heartbeat_seconds: float = 60.0,
                 subscribe_timeout_seconds: float = 30.0, max_connections: int = MAX_WS_CONNECTIONS) -> None:
        if not _is_uuid(api_key):
            raise ValueError("the MM API key must be a UUID")
        self.api_key = api_key
        self.client = client
        self.rate_limit = rate_limit
        self.rate_window_seconds = rate_window_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.subscribe_timeout_seconds = subscribe_timeout_seconds
        self.max_connections = max_connections
        self.faults = Faults()
        self.positions: list[dict[str, Any]] = []
        self.open_orders: list[dict[str, Any]] = []
        self.emergency = False
        self.emergency_reason = ""
        self.cancel_all_calls: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.ws_refusals: list[str] = []  # error messages sent to refused subscribes
        self._hits: deque[float] = deque()  # monotonic times of the key's counted requests
        self._conns: list[_Conn] = []
        self._subscription_ids = 0
        self.app = Starlette(routes=self._routes())
        self._uvicorn = LoopbackServer()
        self.port: int | None = None
        self.base_url = ""

    # -- running -----------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve in the running loop; returns the base URL (http://127.0.0.1:<port>)."""
        self.base_url = await self._uvicorn.start(self.app, host, port, lifespan="off", timeout_graceful_shutdown=1,
                                                 ws_ping_interval=None)
        self.port = self._uvicorn.port
        return self.base_url

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http", "ws", 1) + "/ws/subscribe"

    async def stop(self) -> None:
        if self._uvicorn.launched:
            for conn in list(self._conns):
                conn.queue.put_nowait(None)
        await self._uvicorn.stop()

    # -- switches ----------------------------------------------------------------------------

    def set_positions(self, rows: list[dict[str, Any]]) -> None:
        self.positions = [dict(r) for r in rows]

    def set_open_orders(self, rows: list[dict[str, Any]]) -> None:
        self.open_orders = [dict(r) for r in rows]

    def set_emergency(self, active: bool, reason: str = "") -> None:
        """Switch emergency mode and broadcast it (MM WebSocket > Payload examples > Emergency status)."""
        self.emergency, self.emergency_reason = active, reason
        payload = {"emergency": active, "reason": reason, "triggeredAt": datetime.now(UTC).isoformat()}
        self.broadcast("emergency", "UPDATE", payload)

    def broadcast(self, channel: str, event: str, payload: dict[str, Any], old: dict[str, Any] | None = None) -> None:
        frame: dict[str, Any] = {"type": "broadcast", "channel": channel, "event": event, "payload": payload}
        if old is not None:
            frame["old"] = old
        for conn in self._conns:
            if channel in conn.channels:
                conn.queue.put_nowait(frame)

    def drop_streams(self) -> int:
        conns = list(self._conns)
        for conn in conns:
            conn.queue.put_nowait(None)
        return len(conns)

    @property
    def connections(self) -> int:
        return len(self._conns)

    # -- HTTP --------------------------------------------------------------------------------

    def _routes(self) -> list[Any]:
        api = [
            ("/api/v1/me", self._me, ["GET"]),
            ("/api/v1/orders/open", self._orders_open, ["GET"]),
            ("/api/v1/orders/summary", self._summary, ["GET"]),
            ("/api/v1/orders/cancel-all", self._cancel_all, ["POST"]),
            ("/api/v1/orders/{order_id}/cancel", self._cancel_one, ["POST"]),
            ("/api/v1/orders/{order_id}", self._order, ["GET"]),
            ("/api/v1/orders", self._orders, ["GET"]),
            ("/api/v1/positions/summary", self._summary, ["GET"]),
            ("/api/v1/positions", self._positions, ["GET"]),
            ("/api/v1/pnl", self._pnl, ["GET"]),
        ]
        admin = [
            ("/_admin/positions", self._admin_positions, ["POST"]),
            ("/_admin/open-orders", self._admin_open_orders, ["POST"]),
            ("/_admin/emergency", self._admin_emergency, ["POST"]),
            ("/_admin/cancel-all", self._admin_cancel_all, ["GET"]),
            ("/_admin/faults", self._admin_faults, ["POST"]),
        ]
        routes: list[Any] = [Route(p, self._guard(h), methods=m) for p, h, m in api]
        routes += [Route(p, h, methods=m) for p, h, m in admin]
        routes += [Route("/ws/subscribe", self._upgrade_required, methods=["GET", "POST"]),
                   WebSocketRoute("/ws/subscribe", self._ws)]
        return routes

    def _guard(self, handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            response = await self._checked(request, handler)
            self.requests.append({"method": request.method, "path": request.url.path,
                                  "query": dict(request.query_params), "status": response.status_code})
            return response

        return endpoint

    async def _checked(self, request: Request, handler: Any) -> Response:
        key = request.headers.get("x-api-key")
        if key is None or not _is_uuid(key) or key != self.api_key:
            return _json({"detail": AUTH_DETAIL}, 401)
        now = time.monotonic()
        while self._hits and now - self._hits[0] >= self.rate_window_seconds:
            self._hits.popleft()
        if len(self._hits) >= self.rate_limit:
            return _json({"detail": f"Rate limit exceeded: {self.rate_limit} requests per minute"}, 429)
        self._hits.append(now)
        if self.faults.fail_5xx > 0:
            self.faults.fail_5xx -= 1
            return _json({"detail": "Internal server error"}, 500)
        result: Response = await handler(request)
        return result

    async def _me(self, request: Request) -> Response:
        return _json({"client": self.client, "clientName": self.client.title(), "active": True})

    async def _orders_open(self, request: Request) -> Response:
        fixture_id = request.query_params.get("fixture_id")
        rows = [o for o in self.open_orders if fixture_id is None or o.get("fixtureId") == fixture_id]
        return _json(rows)

    async def _orders(self, request: Request) -> Response:
        params = request.query_params
        rows = [o for o in self.open_orders
                if params.get("fixture_id") in (None, o.get("fixtureId"))
                and params.get("exchange") in (None, o.get("exchange"))
                and params.get("status") in (None, o.get("orderStatus"))]
        return _json(rows)

    async def _order(self, request: Request) -> Response:
        raw = request.path_params["order_id"]
        if not str(raw).isdigit():
            return _json({"detail": [{"loc": ["path", "order_id"], "msg": "Input should be a valid integer",
                                      "type": "int_parsing"}]}, 422)
        found = next((o for o in self.open_orders if o.get("orderId") == int(raw)), None)
        return _json(found) if found is not None else _json({"detail": "Not found"}, 404)

    async def _cancel_one(self, request: Request) -> Response:
        return await self._order(request)

    async def _cancel_all(self, request: Request) -> Response:
        query = dict(request.query_params)
        self.cancel_all_calls.append({"query": query, "at": datetime.now(UTC).isoformat()})
        keep = [o for o in self.open_orders
                if query.get("exchange") not in (None, o.get("exchange"))
                or query.get("fixture_id") not in (None, o.get("fixtureId"))]
        cancelled = len(self.open_orders) - len(keep)
        self.open_orders = keep
        return _json({"cancelled": cancelled})

    async def _positions(self, request: Request) -> Response:
        raw = request.query_params.get("status", "active")
        wanted = {s.strip() for s in raw.split(",")}
        bad = wanted - POSITION_STATUSES
        if bad:
            return _invalid("status", f"unknown status {min(bad)!r} (one of {sorted(POSITION_STATUSES)})")
        rows = self.positions
        if wanted & {"matched", "filled"} and not wanted & {"open", "active"}:
            rows = [p for p in rows if float(p.get("matchedStake") or 0) > 0]
        return _json(rows)

    async def _pnl(self, request: Request) -> Response:
        for name in ("from_date", "to_date"):
            value = request.query_params.get(name)
            if value is not None and not _valid_date(value):
                return _invalid(name, "Input should be a valid date in the format YYYY-MM-DD", "date_from_datetime_parsing")
        return _json({"realizedPnl": 0.0, "unrealizedPnl": 0.0, "totalPnl": 0.0})

    async def _summary(self, request: Request) -> Response:
        for name in ("from_date", "to_date"):
            value = request.query_params.get(name)
            if value is not None and not _valid_date(value):
                return _invalid(name, "Input should be a valid date in the format YYYY-MM-DD", "date_from_datetime_parsing")
        return _json({"count": len(self.positions) + len(self.open_orders)})

    async def _upgrade_required(self, request: Request) -> Response:
        return _json({"detail": "Upgrade Required: use a WebSocket connection"}, 426)

    # -- admin -------------------------------------------------------------------------------

    async def _admin_positions(self, request: Request) -> Response:
        self.set_positions(list(await request.json()))
        return _json({"positions": len(self.positions)})

    async def _admin_open_orders(self, request: Request) -> Response:
        self.set_open_orders(list(await request.json()))
        return _json({"orders": len(self.open_orders)})

    async def _admin_emergency(self, request: Request) -> Response:
        body = await request.json()
        self.set_emergency(bool(body.get("active")), str(body.get("reason", "")))
        return _json({"emergency": self.emergency})

    async def _admin_cancel_all(self, request: Request) -> Response:
        return _json(self.cancel_all_calls)

    async def _admin_faults(self, request: Request) -> Response:
        body = await request.json()
        self.faults.fail_5xx = int(body.get("fail_5xx", self.faults.fail_5xx))
        return _json({"fail_5xx": self.faults.fail_5xx})

    # -- WebSocket ---------------------------------------------------------------------------

    async def _ws(self, ws: WebSocket) -> None:
        await ws.accept()
        try:
            msg = orjson.loads(await asyncio.wait_for(ws.receive_text(), self.subscribe_timeout_seconds))
        except (TimeoutError, WebSocketDisconnect, orjson.JSONDecodeError):
            with contextlib.suppress(RuntimeError):
                await ws.close(code=1008)
            return
        problem = self._subscribe_problem(msg)
        if problem is not None:
            self.ws_refusals.append(problem)
            await ws.send_text(orjson.dumps({"type": "error", "message": problem}).decode())
            await ws.close(code=1008)
            return
        conn = _Conn(ws, {c for c in msg.get("channels") or [] if c in CHANNELS})
        self._conns.append(conn)
        self._subscription_ids += 1
        conn.queue.put_nowait({"type": "subscribed", "subscription_id": self._subscription_ids,
                               "channels": sorted(conn.channels)})
        sender = asyncio.create_task(self._sender(conn))
        beat = asyncio.create_task(self._heartbeat(conn))
        try:
            while True:
                raw = orjson.loads(await ws.receive_text())
                kind = raw.get("type") if isinstance(raw, dict) else None
                if kind == "ping":
                    conn.queue.put_nowait({"type": "pong"})
                elif kind == "unsubscribe":
                    conn.channels.clear()
                    conn.queue.put_nowait({"type": "unsubscribed"})
                else:
                    conn.queue.put_nowait({"type": "error", "message": f"unknown message type {kind!r}"})
        except (WebSocketDisconnect, RuntimeError, orjson.JSONDecodeError):
            pass
        finally:
            beat.cancel()
            sender.cancel()
            with contextlib.suppress(ValueError):
                self._conns.remove(conn)

    def _subscribe_problem(self, msg: Any) -> str | None:
        """The documented error of a subscribe message, or None (MM WebSocket > Error messages)."""
        if not isinstance(msg, dict) or msg.get("type") != "subscribe":
            return "subscribe message required"
        key = msg.get("api_key")
        if not key:
            return "api_key required"
        if not _is_uuid(key):
            return "Invalid api_key format"
        if key != self.api_key:
            return "Invalid API key"
        if len(self._conns) >= self.max_connections:
            return "Connection limit exceeded"
        return None

    async def _sender(self, conn: _Conn) -> None:
        while True:
            frame = await conn.queue.get()
            if frame is None:
                await conn.ws.close(code=1012)
                return
            await conn.ws.send_text(orjson.dumps(frame).decode())

    async def _heartbeat(self, conn: _Conn) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            conn.queue.put_nowait({"type": "heartbeat"})


def _valid_date(value: str) -> bool:
    if not _DATE.fullmatch(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True
