"""Local ABP server: a PaperVenue behind ABP's real HTTP and WebSocket protocols, on loopback,
with fault injection (docs/reference/abp.md §3, §5-6, §13; docs/architecture.md, "Simulators").
For tests and manual runs (`bot abp serve`, which needs the `sim` extra).

Faults (`Faults`, changeable at run time with POST /_admin/faults):
- `delay_seconds`: every API answer waits this long;
- `drop_after_store`: the next N place-orders calls store the orders, then never answer (the
  client times out: the response is lost after the order exists);
- `fail_5xx`: the next N API requests answer 503 before doing anything;
- `rate_limit`: the next N API requests answer 429 with `Retry-After: retry_after` (the R2 body,
  docs/reference/abp.md §3);
- `ws_gap`: the next N stream messages are numbered but never sent nor kept for replay;
- POST /_admin/ws-drop closes every stream (messages meanwhile are lost if `lose_while_down`);
- POST /_admin/emergency {"active": bool, "reason": str} switches emergency mode.
GET /_admin/requests lists every API request received (method, path, query, JSON body).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import uvicorn
from loguru import logger
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from bot.clock import Clock, WallClock
from bot.execution.config import PaperConfig
from bot.execution.venue import VenueMessage
from bot.sim.paper import OrderPriceQuotes, PaperVenue, QuoteSource
from bot.types import SettlementStatus

REPLAY_BUFFER = 100  # docs/reference/abp.md §13.4


class Faults(BaseModel):
    """The injected faults (see the module docstring); validated, so a typo in POST
    /_admin/faults is a 422 naming the field rather than a fault silently not injected."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    delay_seconds: float = Field(0.0, ge=0)
    drop_after_store: int = Field(0, ge=0)
    drop_hang_seconds: float = Field(3600.0, ge=0)
    fail_5xx: int = Field(0, ge=0)
    rate_limit: int = Field(0, ge=0)
    retry_after: float = Field(1.0, ge=0)
    ws_gap: int = Field(0, ge=0)
    lose_while_down: bool = True


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status, headers=headers, media_type="application/json")


@dataclass
class _Subscription:
    """Per-API-key stream state: seq survives reconnects so `replay` can fill a gap."""

    seq: int = 0
    buffer: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=REPLAY_BUFFER))
    connections: list[_Conn] = field(default_factory=list)


@dataclass
class _Conn:
    ws: WebSocket
    channels: set[str]
    queue: asyncio.Queue[dict[str, Any] | None] = field(default_factory=asyncio.Queue)


class LocalAbpServer:
    """ASGI app + uvicorn runner. `venue` is the PaperVenue behind it (tests may settle bets
    or change quotes through it directly when running in the same process)."""

    def __init__(
        self,
        *,
        api_key: str = "test-key",
        venue: PaperVenue | None = None,
        clock: Clock | None = None,
        quotes: QuoteSource | None = None,
        paper: PaperConfig | None = None,
        faults: Faults | None = None,
        ping_seconds: float = 30.0,
        login_timeout_seconds: float = 30.0,
        advance_seconds: float = 0.05,
        conflict_shape: str = "r2",
    ) -> None:
        self.clock = clock or WallClock()
        self.venue = venue or PaperVenue(
            self.clock, quotes or OrderPriceQuotes(), paper, conflict_shape=conflict_shape
        )
        self.api_key = api_key
        self.faults = faults or Faults()
        self.requests: list[dict[str, Any]] = []
        self.accounts: dict[tuple[str, str], dict[str, Any]] = {}
        self._ping_seconds = ping_seconds
        self._login_timeout = login_timeout_seconds
        self._advance_seconds = advance_seconds
        self._sub = _Subscription()
        self._down = False
        self._hanging: set[asyncio.Task[Any]] = set()
        self.venue.listen(self._publish)
        self.app = Starlette(routes=self._routes(), lifespan=self._lifespan)
        self._server: uvicorn.Server | None = None
        self.port: int | None = None

    # -- running -----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette):
        task = asyncio.create_task(self._advance_loop())
        try:
            yield
        finally:
            task.cancel()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve in the running loop; returns the base URL (http://127.0.0.1:<port>)."""
        config = uvicorn.Config(
            self.app, host=host, port=port, log_level="warning", lifespan="on",
            timeout_graceful_shutdown=1, ws_ping_interval=None,
        )
        self._server = uvicorn.Server(config)
        self._serve_task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._serve_task.done():
                self._serve_task.result()
            await asyncio.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        if self._server is not None:
            for conn in list(self._sub.connections):
                conn.queue.put_nowait(None)
            self._server.should_exit = True
            await self._serve_task

    async def _advance_loop(self) -> None:
        while True:
            await asyncio.sleep(self._advance_seconds)
            self.venue.advance()

    # -- stream side ---------------------------------------------------------------------------

    def _publish(self, msg: VenueMessage) -> None:
        self._sub.seq += 1
        frame = {
            "type": "data", "channel": msg.channel, "event": msg.event, "payload": msg.payload,
            "ts": int(datetime.now(UTC).timestamp() * 1000), "seq": self._sub.seq, "requireAck": True,
        }
        if self.faults.ws_gap > 0:
            self.faults.ws_gap -= 1
            return
        if self._down and self.faults.lose_while_down:
            return
        self._sub.buffer.append(frame)
        for conn in self._sub.connections:
            if not conn.channels or msg.channel in conn.channels:
                conn.queue.put_nowait(frame)

    def drop_streams(self) -> int:
        """Close every stream connection; returns how many were open."""
        conns = list(self._sub.connections)
        self._down = bool(conns)
        for conn in conns:
            conn.queue.put_nowait(None)
        return len(conns)

    async def _ws(self, ws: WebSocket) -> None:
        await ws.accept()
        try:
            login = orjson.loads(await asyncio.wait_for(ws.receive_text(), self._login_timeout))
        except (TimeoutError, WebSocketDisconnect, orjson.JSONDecodeError):
            await ws.close(code=4001)
            return
        if login.get("type") != "login" or login.get("apiKey") != self.api_key:
            await ws.send_text(orjson.dumps({"type": "error", "message": "Invalid or inactive API key"}).decode())
            await ws.close(code=4003)
            return
        conn = _Conn(ws, set(login.get("channels") or []))
        self._sub.connections.append(conn)
        self._down = False
        reliable = bool(login.get("reliableDelivery"))
        await ws.send_text(orjson.dumps({
            "type": "login_ok", "clientName": "paper", "channels": sorted(conn.channels),
            "subscriptionId": 1,
            "access": {"clientFiltered": ["orders", "bets", "settlements", "accounts", "balance", "betslip"],
                       "global": ["fixtures", "currencies", "status", "emergency"]},
            "reliableDelivery": reliable,
            "features": {"messageOrdering": True, "acknowledgments": reliable, "batchAck": reliable},
        }).decode())
        sender = asyncio.create_task(self._sender(conn))
        pinger = asyncio.create_task(self._pinger(conn))
        try:
            while True:
                msg = orjson.loads(await ws.receive_text())
                await self._on_client(conn, msg)
        except (WebSocketDisconnect, RuntimeError, orjson.JSONDecodeError):
            pass
        finally:
            pinger.cancel()
            sender.cancel()
            with contextlib.suppress(ValueError):
                self._sub.connections.remove(conn)

    async def _on_client(self, conn: _Conn, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "ping":
            conn.queue.put_nowait({"type": "pong"})
        elif kind == "replay":
            from_seq = int(msg.get("fromSeq") or 0)
            for frame in list(self._sub.buffer):
                if frame["seq"] > from_seq and (not conn.channels or frame["channel"] in conn.channels):
                    conn.queue.put_nowait(frame)
        elif kind in ("ack", "ack_batch"):
            upto = int(msg.get("upToSeq", msg.get("seq", 0)) or 0)
            while self._sub.buffer and self._sub.buffer[0]["seq"] <= upto:
                self._sub.buffer.popleft()
        elif kind == "update_channels":
            conn.channels = set(msg.get("channels") or [])
            conn.queue.put_nowait({"type": "channels_updated", "channels": sorted(conn.channels)})
        elif kind == "subscribe_betslip":
            await self._subscribe_betslip(conn, msg)
        elif kind == "unsubscribe_betslip":
            ids = {k: msg.get(k) for k in ("fixtureId", "outcomeId", "playerId")}
            conn.queue.put_nowait({"type": "unsubscribed_betslip", **ids})
        elif kind != "pong":
            conn.queue.put_nowait({"type": "error", "message": f"unknown message type {kind!r}", "ref": msg})

    async def _subscribe_betslip(self, conn: _Conn, msg: dict[str, Any]) -> None:
        books = msg.get("bookmakers")
        if not isinstance(books, list) or not books:
            conn.queue.put_nowait({"type": "error", "message": "bookmakers must be a non-empty list", "ref": msg})
            return
        ttl = min(max(int(msg.get("ttl") or 60), 10), 3600)
        key = {k: msg.get(k) for k in ("fixtureId", "outcomeId", "playerId")}
        expires = datetime.now(UTC).timestamp() + ttl
        conn.queue.put_nowait({
            "type": "subscribed_betslip", **key, "bookmakers": books, "skipped": [],
            "expiresAt": datetime.fromtimestamp(expires, UTC).isoformat(),
        })
        self._publish(VenueMessage("betslip", "UPDATE", {"clientName": "paper", **key, "odds": self._odds(key, books)}))

    async def _sender(self, conn: _Conn) -> None:
        while True:
            frame = await conn.queue.get()
            if frame is None:
                await conn.ws.close(code=1012)
                return
            await conn.ws.send_text(orjson.dumps(frame).decode())

    async def _pinger(self, conn: _Conn) -> None:
        while True:
            await asyncio.sleep(self._ping_seconds)
            conn.queue.put_nowait({"type": "ping"})

    # -- HTTP side -----------------------------------------------------------------------------

    def _routes(self) -> list[Any]:
        api = [
            ("/place-orders", self._place, ["POST"]),
            ("/cancel-orders", self._cancel, ["POST"]),
            ("/cancel-all-orders", self._cancel_all, ["POST"]),
            ("/orders", self._orders, ["GET"]),
            ("/bets", self._bets, ["GET"]),
            ("/bets/{bet_id:int}", self._bet, ["GET"]),
            ("/betslip", self._betslip, ["GET"]),
            ("/accounts", self._accounts, ["GET", "POST"]),
            ("/accounts/{bookmaker}/{username}", self._account, ["GET", "PATCH", "DELETE"]),
            ("/bookmakers", self._bookmakers, ["GET"]),
            ("/markets", self._markets, ["GET"]),
            ("/positions", self._positions, ["GET"]),
            ("/pnl", self._pnl, ["GET"]),
        ]
        routes: list[Any] = [Route(p, self._guard(h), methods=m) for p, h, m in api]
        routes += [
            Route("/status", self._status, methods=["GET"]),
            Route("/_admin/faults", self._admin_faults, methods=["GET", "POST"]),
            Route("/_admin/requests", self._admin_requests, methods=["GET"]),
            Route("/_admin/ws-drop", self._admin_ws_drop, methods=["POST"]),
            Route("/_admin/emergency", self._admin_emergency, methods=["POST"]),
            Route("/_admin/state", self._admin_state, methods=["GET"]),
            Route("/_admin/settle", self._admin_settle, methods=["POST"]),
            WebSocketRoute("/ws", self._ws),
        ]
        return routes

    def _guard(self, handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            raw = await request.body()
            try:
                body = orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError:
                return _json({"detail": [{"loc": ["body"], "msg": "JSON decode error", "type": "json_invalid"}]}, 422)
            self.requests.append({"method": request.method, "path": request.url.path,
                                  "query": dict(request.query_params), "body": body,
                                  "at": time.monotonic()})
            key = request.headers.get("x-api-key")
            if key is None:
                return _json({"detail": "Missing API key header: x-api-key"}, 403)
            if key != self.api_key:
                return _json({"error": "Invalid or inactive API key"}, 401)
            f = self.faults
            if f.delay_seconds:
                await asyncio.sleep(f.delay_seconds)
            if f.rate_limit > 0:
                f.rate_limit -= 1
                return _json({"detail": "Rate limit exceeded", "limit": "100", "retry_after": f.retry_after}, 429,
                             {"Retry-After": str(f.retry_after), "X-RateLimit-Limit": "100",
                              "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(f.retry_after)})
            if f.fail_5xx > 0:
                f.fail_5xx -= 1
                return _json({"detail": "Service temporarily unavailable"}, 503)
            request.state.json = body
            return await handler(request)

        return endpoint

    async def _place(self, request: Request) -> Response:
        body = request.state.json
        if isinstance(body, dict) and any(isinstance(o, dict) and o.get("futureId") for o in body.get("orders") or []):
            return _json({"detail": "Futures order placement is not yet implemented"}, 501)
        status, out = self.venue.place(body)
        if self.faults.drop_after_store > 0 and status != 422:
            self.faults.drop_after_store -= 1
            logger.info("local ABP: dropping the place-orders answer after storing")
            await asyncio.sleep(self.faults.drop_hang_seconds)
        return _json(out, status)

    async def _cancel(self, request: Request) -> Response:
        body = request.state.json or {}
        if not any(body.get(k) for k in ("orderIds", "requestUuids", "userRef")):
            return _json({"detail": "At least one filter is required: orderIds, requestUuids or userRef"}, 400)
        out = self.venue.cancel(request_uuids=body.get("requestUuids"), order_ids=body.get("orderIds"),
                                user_ref=body.get("userRef"))
        if not out.pop("matched"):
            return _json({"detail": "No matching orders found"}, 404)
        return _json(out)

    async def _cancel_all(self, request: Request) -> Response:
        out = self.venue.cancel(all_orders=True)
        out.pop("matched")
        return _json(out)

    async def _orders(self, request: Request) -> Response:
        q = request.query_params
        if not any(q.get(k) for k in ("orderIds", "requestUuids", "userRef")):
            return _json({"detail": "At least one filter is required: orderIds, requestUuids or userRef"}, 400)
        self.venue.advance()
        rows = self.venue.orders(request_uuids=_split(q.get("requestUuids")),
                                 order_ids=[int(i) for i in _split(q.get("orderIds"))], user_ref=q.get("userRef"))
        return _page(rows, "orders", "orderId", q.get("afterOrderId"), q.get("limit"))

    async def _bets(self, request: Request) -> Response:
        q = request.query_params
        if not any(q.get(k) for k in ("betIds", "orderIds", "userRef")):
            return _json({"detail": "At least one filter is required: betIds, orderIds or userRef"}, 400)
        rows = self.venue.bets(bet_ids=[int(i) for i in _split(q.get("betIds"))],
                               order_ids=[int(i) for i in _split(q.get("orderIds"))], user_ref=q.get("userRef"))
        return _page(rows, "bets", "betId", q.get("afterBetId"), q.get("limit"), status="success")

    async def _bet(self, request: Request) -> Response:
        rows = self.venue.bets(bet_ids=[request.path_params["bet_id"]])
        return _json(rows[0]) if rows else _json({"detail": "Bet not found"}, 404)

    def _odds(self, key: dict[str, Any], books: list[str] | None) -> dict[str, Any]:
        order = {**key, "orderPrice": 2.0, "bookmakers": ",".join(books) if books else None}
        prices = self.venue._quotes.quotes(order)  # the venue's quote source prices the betslip
        out: dict[str, Any] = {}
        for book, price in prices.items():
            if price is None or (books and book not in books):
                continue
            lo, hi = self.venue._limits(book)
            odds_id = f"{key.get('fixtureId')}:{book}:{key.get('outcomeId')}:{key.get('playerId') or 0}"
            out[book] = {odds_id: {
                "price": price, "limit": float(hi), "limitMin": float(lo), "limitCurrency": "USD",
                "limitUsd": float(hi), "limitMinUsd": float(lo), "active": True, "account": f"{book}_paper",
                "currencyInfo": {"currency": "USD", "currencyValue": 1.0},
                "bookmakerFixtureId": None, "bookmakerMarketId": None, "bookmakerOutcomeId": None, "meta": None,
            }}
        return out

    async def _betslip(self, request: Request) -> Response:
        q = request.query_params
        if q.get("futureId"):
            return _json({"detail": "Futures betslip is not yet implemented"}, 501)
        try:
            key = {"fixtureId": q.get("fixtureId"), "outcomeId": int(q["outcomeId"]), "playerId": int(q["playerId"])}
        except (KeyError, ValueError):
            return _json({"detail": [{"loc": ["query", "outcomeId"], "msg": "Field required", "type": "missing"}]}, 422)
        odds = self._odds(key, _split(q.get("bookmakers")) or None)
        if not odds:
            return _json({"detail": "No odds found for given parameters"}, 404)
        return _json({**key, "client": "paper", "userRef": None, "fixtureInfo": None, "outcomeInfo": None,
                      "playerInfo": None, "odds": odds})

    async def _accounts(self, request: Request) -> Response:
        if request.method == "GET":
            book = request.query_params.get("bookmaker")
            rows = [a for a in self.accounts.values() if book is None or a["bookmaker"] == book]
            return _json(sorted(rows, key=lambda a: -a["priority"]))
        body = request.state.json or {}
        if not isinstance(body.get("bookmaker"), str) or not isinstance(body.get("username"), str):
            return _json({"detail": [{"loc": ["body", "bookmaker"], "msg": "Field required", "type": "missing"}]}, 422)
        key = (body["bookmaker"], body["username"])
        if key in self.accounts:
            return _json({"detail": "Account already exists"}, 409)
        now = datetime.now(UTC).isoformat()
        account = {"bookmaker": key[0], "username": key[1], "client": "paper", "password": "***",
                   "balance": 0.0, "active": True, "priority": 0, "maxStake": None, "minStake": None,
                   "currencyId": "USD", "verifyBetslip": False, "multiLimitAllowed": True, "meta": {},
                   "createdAt": now, "updatedAt": now}
        account.update({k: v for k, v in body.items() if k in account and k != "password"})
        self.accounts[key] = account
        return _json(account, 201)

    async def _account(self, request: Request) -> Response:
        key = (request.path_params["bookmaker"], request.path_params["username"])
        account = self.accounts.get(key)
        if account is None:
            return _json({"detail": "Account not found"}, 404)
        if request.method == "DELETE":
            del self.accounts[key]
            return Response(status_code=204)
        if request.method == "PATCH":
            body = request.state.json or {}
            account.update({k: v for k, v in body.items() if k in account and k != "password"})
            account["updatedAt"] = datetime.now(UTC).isoformat()
        return _json(account)

    async def _bookmakers(self, request: Request) -> Response:
        books = getattr(self.venue._quotes, "_bookmakers", ("paper",))
        rows = []
        for i, book in enumerate(books, start=1):
            lo, hi = self.venue._limits(book)
            rows.append({"bookmakerId": i, "bookmaker": book, "bookmakerName": book.title(), "active": True,
                         "maxStake": float(hi), "minStake": float(lo)})
        return _json(rows)

    async def _markets(self, request: Request) -> Response:
        rows = [
            {"marketId": 101, "marketLength": 3, "sportId": 10, "playerProp": False, "handicap": 0,
             "marketName": "Full Time Result", "marketNameShort": "1X2", "marketType": "1x2", "period": "result",
             "oddsTypes": [{"outcomeId": 101, "outcomeName": "1"}, {"outcomeId": 102, "outcomeName": "X"},
                           {"outcomeId": 103, "outcomeName": "2"}]},
        ]
        sport = request.query_params.get("sportId")
        return _json([m for m in rows if sport is None or str(m["sportId"]) == sport])

    def _grouped(self, request: Request, settled: bool) -> tuple[str, dict[str, list[dict[str, Any]]]]:
        group_by = request.query_params.get("groupBy", "bookmaker")
        field_name = {"bookmaker": "bookmaker", "account": "account", "userRef": "userRef"}.get(group_by, "bookmaker")
        groups: dict[str, list[dict[str, Any]]] = {}
        for bet in self.venue.all_bets():
            is_settled = bet["settlementStatus"] != "UNSETTLED"
            if is_settled == settled and bet["betStatus"] in ("PLACED", "CONFIRMED"):
                groups.setdefault(str(bet[field_name]), []).append(bet)
        return group_by, groups

    async def _positions(self, request: Request) -> Response:
        group_by, groups = self._grouped(request, settled=False)
        rows = []
        for key, bets in groups.items():
            stake = sum(Decimal(str(b["placedStake"])) for b in bets)
            avg = sum(Decimal(str(b["placedStake"])) * Decimal(str(b["placedPrice"])) for b in bets) / stake
            rows.append({group_by: key, "openBets": len(bets), "totalStake": float(stake),
                         "avgPrice": round(float(avg), 4), "fixtureIds": len({b["orderId"] for b in bets})})
        return _json({"status": "success", "groupBy": group_by, "positions": rows, "count": len(rows),
                      "totalStake": sum(r["totalStake"] for r in rows),
                      "totalOpenBets": sum(r["openBets"] for r in rows)})

    async def _pnl(self, request: Request) -> Response:
        group_by, groups = self._grouped(request, settled=True)
        rows = []
        for key, bets in groups.items():
            staked = sum(Decimal(str(b["placedStake"])) for b in bets)
            back = sum(Decimal(str(b["settlementAmount"] or 0)) for b in bets)
            wins = sum(b["settlementStatus"] in ("WON", "HALF_WON") for b in bets)
            rows.append({group_by: key, "settledBets": len(bets), "wins": wins,
                         "losses": sum(b["settlementStatus"] in ("LOST", "HALF_LOST") for b in bets),
                         "voids": sum(b["settlementStatus"] == "VOID" for b in bets),
                         "pushes": sum(b["settlementStatus"] == "PUSH" for b in bets),
                         "totalStaked": float(staked), "totalWon": float(back), "totalLost": 0.0,
                         "netPnl": float(back - staked), "winRate": round(100 * wins / len(bets), 2)})
        return _json({"status": "success", "groupBy": group_by, "pnl": rows, "count": len(rows),
                      "totalNetPnl": sum(r["netPnl"] for r in rows), "totalStaked": sum(r["totalStaked"] for r in rows),
                      "totalSettledBets": sum(r["settledBets"] for r in rows)})

    async def _status(self, request: Request) -> Response:
        emergency = {"active": self.venue.emergency, "reason": self.venue.emergency_reason}
        return _json({"status": "ok", "emergency": emergency})

    # -- admin (fault injection, inspection) ---------------------------------------------------------

    async def _admin_faults(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                changes = orjson.loads(await request.body() or b"{}")
                self.faults = Faults.model_validate({**self.faults.model_dump(), **changes})
            except (orjson.JSONDecodeError, TypeError, ValidationError) as exc:
                return _json({"error": str(exc).splitlines()[:3]}, 422)
        return _json(self.faults.model_dump())

    async def _admin_requests(self, request: Request) -> Response:
        return _json(self.requests)

    async def _admin_ws_drop(self, request: Request) -> Response:
        return _json({"dropped": self.drop_streams()})

    async def _admin_emergency(self, request: Request) -> Response:
        body = orjson.loads(await request.body() or b"{}")
        self.venue.set_emergency(bool(body.get("active")), str(body.get("reason", "")))
        return _json({"active": self.venue.emergency})

    async def _admin_settle(self, request: Request) -> Response:
        body = orjson.loads(await request.body() or b"{}")
        try:
            self.venue.settle(int(body["betId"]), SettlementStatus(body["status"]))
        except (KeyError, ValueError) as exc:
            return _json({"detail": str(exc)}, 400)
        return _json(self.venue.bets(bet_ids=[int(body["betId"])])[0])

    async def _admin_state(self, request: Request) -> Response:
        return _json({"orders": self.venue.all_orders(), "bets": self.venue.all_bets()})


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def _page(rows: list[dict[str, Any]], key: str, id_field: str, after: str | None, limit: str | None,
          status: str | None = None) -> Response:
    """Keyset page over rows sorted by id desc: `after` = nextCursor of the previous page."""
    if not rows:
        return _json({"detail": f"No {key} found"}, 404)
    size = min(max(int(limit or 50), 1), 1000)
    if after is not None:
        rows = [r for r in rows if r[id_field] < int(after)]
    page = rows[:size]
    more = len(rows) > size
    out: dict[str, Any] = {key: page, "count": len(page), "hasMore": more,
                           "nextCursor": page[-1][id_field] if more else None}
    if status:
        out = {"status": status, **out}
    return _json(out)
