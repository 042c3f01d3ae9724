"""Local ABP server: a PaperVenue behind ABP's real HTTP and WebSocket protocols, on loopback,
with fault injection (docs/reference/abp.md §3, §5-6, §13; docs/architecture.md, "Simulators").
For tests and manual runs (`bot abp serve`, which needs the `sim` extra).

As strict as the ABP documents (constructor arguments of `LocalAbpServer`):
- `bookmakers` (default: the real slugs pinnacle, betcris, sharpbet, docs/reference/abp.md §12) and
  `allowed_bookmakers` (the key's allowed slugs, empty = all): GET /bookmakers lists exactly the
  books offered (both lists); an order naming none of them is declined "Bookmaker not available",
  named books outside them are ignored; GET /betslip for none of them is 403;
- `accounts`: GET /accounts starts with these rows (default: one active "<book>_main" per offered
  book, in its account currency);
- `book_currencies` ({"betcris": "EUR"}) and `rates` ({"EUR": 0.92}, units per 1 USD, §11): bets at
  such a book carry placedCurrency EUR, placedStake and settlementAmount in EUR, betslip limits in
  EUR plus `limitUsd`; a book whose currency has no rate declines "Currency conversion failed".
  Each login gets one `currencies` UPDATE frame per rate; POST /_admin/rates {"EUR": 0.93} (null
  removes a rate) changes rates and publishes them;
- `book_limits` (USD): per book stake limits; mode 1 above the limit is declined "Order stake X
  USD exceeds available limit Y USD", otherwise filled up to the limit (§8.2, §8.3);
- reliable delivery (§13.4): frames stay buffered (100) until acked (`ack` one seq, `ack_batch`
  up to a seq) and are re-sent to reliable connections every `resend_seconds` (30) until then;
  `replay` re-sends the buffer from a seq; `requireAck` is set only on reliable connections.

Faults (`Faults`, changeable at run time with POST /_admin/faults):
- `delay_seconds`: every API answer waits this long;
- `timeout_n`: the next N API requests hang `drop_hang_seconds` without doing anything, then 504;
- `place_delay_seconds`: POST /place-orders waits this long BEFORE storing the orders (a client
  that timed out has no answer; the orders then exist and fill as usual);
- `drop_after_store`: the next N place-orders calls store the orders, then never answer (the
  client times out: the response is lost after the order exists);
- `fail_5xx`: the next N API requests answer 503 before doing anything;
- `rate_limit`: the next N API requests answer 429 with `Retry-After: retry_after` (the R2 body,
  docs/reference/abp.md §3);
- `duplicate_reply`: a duplicate requestUuid is "skip" (R2: skipped, 409 only when all are),
  "409" (R1: any duplicate rejects the request) or "decline" ("Duplicate requestUuid"), §8.4, §15;
- `ws_gap`: the next N stream messages are numbered but never sent nor kept for replay;
- `silent`: open streams get nothing at all (no ping, pong, data or login_ok; data stays buffered
  for replay and re-send) and are not closed;
- `no_status`: GET /status answers 404 (the endpoint is not in every revision of the documents);
- `lose_while_down`: messages after POST /_admin/ws-drop and before the next login are lost.
Admin endpoints: POST /_admin/ws-drop closes every stream; POST /_admin/restart closes every
stream and renumbers; POST /_admin/renumber restarts `seq` at 1 under the same subscriptionId
(the replay buffer is emptied, as a restarted server's would be); POST /_admin/emergency {"active",
"reason"} switches emergency mode (an `emergency` STATUS frame; new orders declined); POST
/_admin/status {"status": ...} publishes a `status` STATUS frame; POST /_admin/settle {"betId",
"status"} settles a bet; POST /_admin/delete-bet {"betId"} removes a bet from every view with a
`bets` DELETE frame. GET /_admin/requests lists every API request received (method, path,
query, JSON body); GET /_admin/state dumps orders and bets.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

import orjson
from loguru import logger
from pydantic import BaseModel, ConfigDict, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from bot.clock import Clock, WallClock
from bot.execution.config import PaperConfig
from bot.execution.venue import VenueMessage
from bot.sim.paper import OrderPriceQuotes, PaperVenue, QuoteSource, StakeLimits, account_name
from bot.sim.serving import LoopbackServer, admin_faults
from bot.sim.serving import json_response as _json
from bot.types import SettlementStatus

REPLAY_BUFFER = 100  # docs/reference/abp.md §13.4
DEFAULT_BOOKMAKERS = ("pinnacle", "betcris", "sharpbet")  # real ABP slugs, docs/reference/abp.md §12


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
    duplicate_reply: Literal["skip", "409", "decline"] = "skip"
    silent: bool = False
    no_status: bool = False
    place_delay_seconds: float = Field(0.0, ge=0)
    timeout_n: int = Field(0, ge=0)


def _ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


def parse_pairs(values: Sequence[str], what: str) -> dict[str, str]:
    """`["betcris=EUR", ...]` -> {"betcris": "EUR"} (the `bot abp serve` options).

    Raises:
        ValueError: an item is not KEY=VALUE.
    """
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"{what}: expected KEY=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


@dataclass
class _Buffered:
    frame: dict[str, Any]
    sent_at: float  # monotonic time of the last (re-)send


@dataclass
class _Subscription:
    """Per-API-key stream state: seq survives reconnects so `replay` can fill a gap."""

    seq: int = 0
    buffer: deque[_Buffered] = field(default_factory=lambda: deque(maxlen=REPLAY_BUFFER))
    connections: list[_Conn] = field(default_factory=list)


@dataclass
class _Conn:
    ws: WebSocket
    channels: set[str]
    reliable: bool = False
    queue: asyncio.Queue[dict[str, Any] | None] = field(default_factory=asyncio.Queue)

    def wants(self, channel: str) -> bool:
        return not self.channels or channel in self.channels


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
        bookmakers: Sequence[str] = DEFAULT_BOOKMAKERS,
        allowed_bookmakers: Sequence[str] = (),
        accounts: Sequence[Mapping[str, Any]] | None = None,
        book_currencies: Mapping[str, str] | None = None,
        rates: Mapping[str, float | Decimal] | None = None,
        book_limits: Mapping[str, StakeLimits] | None = None,
        resend_seconds: float = 30.0,
    ) -> None:
        """See the module docstring for `bookmakers` .. `book_limits`. `accounts`: initial
        AccountCreateRequest bodies (None = one per offered book, [] = none)."""
        self.clock = clock or WallClock()
        self.bookmakers = tuple(b for b in bookmakers if not allowed_bookmakers or b in allowed_bookmakers)
        self.venue = venue or PaperVenue(
            self.clock, quotes or OrderPriceQuotes(self.bookmakers), paper, conflict_shape=conflict_shape,
            bookmaker_limits=book_limits, bookmakers=self.bookmakers, book_currencies=book_currencies,
            currencies={"USD": Decimal(1), **{k: Decimal(str(v)) for k, v in (rates or {}).items()}},
        )
        self.api_key = api_key
        self.faults = faults or Faults()
        self.requests: list[dict[str, Any]] = []
        self.accounts: dict[tuple[str, str], dict[str, Any]] = {}
        self.system_status = "ok"
        self._ping_seconds = ping_seconds
        self._login_timeout = login_timeout_seconds
        self._advance_seconds = advance_seconds
        self._resend_seconds = resend_seconds
        self._sub = _Subscription()
        self._down = False
        self._hanging: set[asyncio.Task[Any]] = set()  # delayed placements outlive their request
        for body in accounts if accounts is not None else self._default_accounts():
            self._add_account(dict(body))
        self.venue.listen(self._publish)
        self.app = Starlette(routes=self._routes(), lifespan=self._lifespan)
        self._uvicorn = LoopbackServer()
        self.port: int | None = None

    # -- running -----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette):
        tasks = [asyncio.create_task(self._advance_loop()), asyncio.create_task(self._resend_loop())]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve in the running loop; returns the base URL (http://127.0.0.1:<port>)."""
        url = await self._uvicorn.start(self.app, host, port, lifespan="on", timeout_graceful_shutdown=1,
                                       ws_ping_interval=None)
        self.port = self._uvicorn.port
        return url

    async def stop(self) -> None:
        if self._uvicorn.launched:
            for conn in list(self._sub.connections):
                conn.queue.put_nowait(None)
            for task in list(self._hanging):
                task.cancel()
        await self._uvicorn.stop()

    async def _advance_loop(self) -> None:
        while True:
            await asyncio.sleep(self._advance_seconds)
            self.venue.advance()

    # -- stream side ---------------------------------------------------------------------------

    def _publish(self, msg: VenueMessage, only: _Conn | None = None) -> None:
        """Number a data frame, buffer it for replay/re-send and queue it to the subscribed
        connections (or to `only`)."""
        self._sub.seq += 1
        frame = {"type": "data", "channel": msg.channel, "event": msg.event, "payload": msg.payload,
                 "ts": _ms(), "seq": self._sub.seq}
        if self.faults.ws_gap > 0:
            self.faults.ws_gap -= 1
            return
        if self._down and self.faults.lose_while_down:
            return
        self._sub.buffer.append(_Buffered(frame, time.monotonic()))
        for conn in [only] if only is not None else self._sub.connections:
            if conn.wants(msg.channel):
                conn.queue.put_nowait(frame)

    def drop_streams(self) -> int:
        """Close every stream connection; returns how many were open."""
        conns = list(self._sub.connections)
        self._down = bool(conns)
        for conn in conns:
            conn.queue.put_nowait(None)
        return len(conns)

    def renumber(self) -> None:
        """Restart `seq` under the same subscriptionId: the next frame is seq 1. The replay
        buffer goes too, as a restarted server's would."""
        self._sub.seq = 0
        self._sub.buffer.clear()

    def restart_streams(self) -> int:
        """A server restart as the stream sees it: every stream closed, `seq` renumbered."""
        dropped = self.drop_streams()
        self.renumber()
        return dropped

    def set_rates(self, changes: Mapping[str, float | Decimal | None]) -> None:
        """Change rates (units per USD; None removes one) and publish the new ones on the
        `currencies` channel (docs/reference/abp.md §11)."""
        self.venue.set_rates(changes)
        rates = self.venue.rates
        for currency in changes:
            if currency in rates and currency != "USD":
                self._publish(self._rate_message(currency, rates[currency]))

    @staticmethod
    def _rate_message(currency: str, value: Decimal) -> VenueMessage:
        return VenueMessage("currencies", "UPDATE", {"currency": currency, "currencyValue": float(value), "ts": _ms()})

    async def _ws(self, ws: WebSocket) -> None:
        await ws.accept()
        try:
            login = orjson.loads(await asyncio.wait_for(ws.receive_text(), self._login_timeout))
        except (TimeoutError, WebSocketDisconnect, orjson.JSONDecodeError):
            await ws.close(code=4001)
            return
        if not isinstance(login, dict) or login.get("type") != "login" or login.get("apiKey") != self.api_key:
            await ws.send_text(orjson.dumps({"type": "error", "message": "Invalid or inactive API key"}).decode())
            await ws.close(code=4003)
            return
        reliable = bool(login.get("reliableDelivery"))
        conn = _Conn(ws, set(login.get("channels") or []), reliable)
        self._sub.connections.append(conn)
        self._down = False
        conn.queue.put_nowait({
            "type": "login_ok", "clientName": "paper", "channels": sorted(conn.channels),
            "subscriptionId": 1,
            "access": {"clientFiltered": ["orders", "bets", "settlements", "accounts", "balance", "betslip"],
                       "global": ["fixtures", "currencies", "status", "emergency"]},
            "reliableDelivery": reliable,
            "features": {"messageOrdering": True, "acknowledgments": reliable, "batchAck": reliable},
        })
        for currency, value in sorted(self.venue.rates.items()):
            if currency != "USD":
                self._publish(self._rate_message(currency, value), only=conn)
        sender = asyncio.create_task(self._sender(conn))
        pinger = asyncio.create_task(self._pinger(conn))
        try:
            while True:
                msg = orjson.loads(await ws.receive_text())
                await self._on_client_safely(conn, msg if isinstance(msg, dict) else {"type": None, "raw": msg})
        except (WebSocketDisconnect, RuntimeError, orjson.JSONDecodeError):
            pass
        finally:
            pinger.cancel()
            sender.cancel()
            with contextlib.suppress(ValueError):
                self._sub.connections.remove(conn)

    async def _on_client_safely(self, conn: _Conn, msg: dict[str, Any]) -> None:
        """A malformed field (a non-numeric seq...) gets an `error` frame, not a dead connection."""
        try:
            await self._on_client(conn, msg)
        except (ValueError, TypeError) as exc:
            logger.warning("local ABP: bad client message {}: {}", msg, exc)
            conn.queue.put_nowait({"type": "error", "message": f"bad message: {exc}", "ref": msg})

    async def _on_client(self, conn: _Conn, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "ping":
            conn.queue.put_nowait({"type": "pong"})
        elif kind == "replay":
            from_seq = int(msg.get("fromSeq") or 0)
            for item in list(self._sub.buffer):
                if item.frame["seq"] > from_seq and conn.wants(item.frame["channel"]):
                    conn.queue.put_nowait(item.frame)
        elif kind == "ack":  # one message (docs/reference/abp.md §13.4)
            seq = int(msg.get("seq") or 0)
            self._drop_buffered(lambda s: s == seq)
        elif kind == "ack_batch":  # every seq <= upToSeq
            upto = int(msg.get("upToSeq") or 0)
            self._drop_buffered(lambda s: s <= upto)
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

    def _drop_buffered(self, acked: Any) -> None:
        kept = [item for item in self._sub.buffer if not acked(item.frame["seq"])]
        self._sub.buffer.clear()
        self._sub.buffer.extend(kept)

    async def _subscribe_betslip(self, conn: _Conn, msg: dict[str, Any]) -> None:
        books = msg.get("bookmakers")
        if not isinstance(books, list) or not books:
            conn.queue.put_nowait({"type": "error", "message": "bookmakers must be a non-empty list", "ref": msg})
            return
        ttl = min(max(int(msg.get("ttl") or 60), 10), 3600)
        key = {k: msg.get(k) for k in ("fixtureId", "outcomeId", "playerId")}
        expires = datetime.now(UTC).timestamp() + ttl
        usable = [b for b in books if b in self.bookmakers]
        conn.queue.put_nowait({
            "type": "subscribed_betslip", **key, "bookmakers": usable,
            "skipped": [b for b in books if b not in usable],
            "expiresAt": datetime.fromtimestamp(expires, UTC).isoformat(),
        })
        odds = self._odds(key, usable) if usable else {}
        self._publish(VenueMessage("betslip", "UPDATE", {"clientName": "paper", **key, "odds": odds}))

    async def _sender(self, conn: _Conn) -> None:
        while True:
            frame = await conn.queue.get()
            if frame is None:
                await conn.ws.close(code=1012)
                return
            if self.faults.silent:
                continue  # a hung server: nothing leaves; data stays buffered for replay/re-send
            if conn.reliable and frame.get("type") == "data":
                frame = {**frame, "requireAck": True}
            await conn.ws.send_text(orjson.dumps(frame).decode())

    async def _pinger(self, conn: _Conn) -> None:
        while True:
            await asyncio.sleep(self._ping_seconds)
            conn.queue.put_nowait({"type": "ping"})

    async def _resend_loop(self) -> None:
        """Re-send unacked frames to reliable connections (docs/reference/abp.md §13.4)."""
        tick = min(max(self._resend_seconds / 5, 0.02), 1.0)
        while True:
            await asyncio.sleep(tick)
            if not self.faults.silent:
                self._resend_due(time.monotonic())

    def _resend_due(self, now: float) -> None:
        reliable = [c for c in self._sub.connections if c.reliable]
        if not reliable:
            return
        for item in self._sub.buffer:
            if now - item.sent_at < self._resend_seconds:
                continue
            item.sent_at = now
            for conn in reliable:
                if conn.wants(item.frame["channel"]):
                    conn.queue.put_nowait(item.frame)

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
        admin = [
            ("/_admin/faults", self._admin_faults, ["GET", "POST"]),
            ("/_admin/requests", self._admin_requests, ["GET"]),
            ("/_admin/ws-drop", self._admin_ws_drop, ["POST"]),
            ("/_admin/restart", self._admin_restart, ["POST"]),
            ("/_admin/renumber", self._admin_renumber, ["POST"]),
            ("/_admin/emergency", self._admin_emergency, ["POST"]),
            ("/_admin/status", self._admin_status, ["POST"]),
            ("/_admin/rates", self._admin_rates, ["POST"]),
            ("/_admin/state", self._admin_state, ["GET"]),
            ("/_admin/settle", self._admin_settle, ["POST"]),
            ("/_admin/delete-bet", self._admin_delete_bet, ["POST"]),
        ]
        routes: list[Any] = [Route(p, self._guard(h), methods=m) for p, h, m in api]
        routes += [Route(p, h, methods=m) for p, h, m in admin]
        routes += [Route("/status", self._status, methods=["GET"]), WebSocketRoute("/ws", self._ws)]
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
            if f.timeout_n > 0:
                f.timeout_n -= 1
                await asyncio.sleep(f.drop_hang_seconds)  # the client times out; nothing was done
                return _json({"detail": "Gateway timeout: the request was not processed"}, 504)
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
        # A task, so the orders are stored after the delay even when the client gave up meanwhile.
        task = asyncio.create_task(self._store(body, self.faults.place_delay_seconds))
        self._hanging.add(task)
        task.add_done_callback(self._hanging.discard)
        status, out = await asyncio.shield(task)
        if self.faults.drop_after_store > 0 and status != 422:
            self.faults.drop_after_store -= 1
            logger.info("local ABP: dropping the place-orders answer after storing")
            await asyncio.sleep(self.faults.drop_hang_seconds)
        return _json(out, status)

    async def _store(self, body: Any, delay: float) -> tuple[int, dict[str, Any]]:
        if delay:
            await asyncio.sleep(delay)
        return self.venue.place(body, duplicate_reply=self.faults.duplicate_reply)

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

    def _currency_info(self, currency: str) -> dict[str, Any] | None:
        """{currency, currencyValue}, or None when no rate is known (docs/reference/abp.md §7)."""
        rate = self.venue.rates.get(currency)
        return None if rate is None else {"currency": currency, "currencyValue": float(rate)}

    def _odds(self, key: dict[str, Any], books: list[str]) -> dict[str, Any]:
        """Betslip odds of the offered `books`: limits in the account currency and in USD (§6.1)."""
        order = {**key, "orderPrice": 2.0, "bookmakers": ",".join(books)}
        prices = self.venue._quotes.quotes(order)  # the venue's quote source prices the betslip
        out: dict[str, Any] = {}
        for book, price in prices.items():
            if price is None or book not in books:
                continue
            lo, hi = self.venue._limits(book)
            currency = self.venue.book_currency(book)
            info = self._currency_info(currency)
            rate = Decimal(str(info["currencyValue"])) if info else None
            odds_id = f"{key.get('fixtureId')}:{book}:{key.get('outcomeId')}:{key.get('playerId') or 0}"
            out[book] = {odds_id: {
                "price": price, "limit": None if rate is None else float(hi * rate),
                "limitMin": None if rate is None else float(lo * rate), "limitCurrency": currency,
                "limitUsd": float(hi), "limitMinUsd": float(lo), "active": rate is not None,
                "account": account_name(book), "currencyInfo": info,
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
        named = _split(q.get("bookmakers"))
        books = [b for b in named if b in self.bookmakers] if named else list(self.bookmakers)
        if not books:
            return _json({"detail": f"No accounts configured for bookmaker(s): {','.join(named)}"}, 403)
        odds = self._odds(key, books)
        if not odds:
            return _json({"detail": "No odds found for given parameters"}, 404)
        return _json({**key, "client": "paper", "userRef": None, "fixtureInfo": None, "outcomeInfo": None,
                      "playerInfo": None, "odds": odds})

    def _default_accounts(self) -> list[dict[str, Any]]:
        return [{"bookmaker": b, "username": account_name(b), "currencyId": self.venue.book_currency(b)}
                for b in self.bookmakers]

    def _add_account(self, body: dict[str, Any]) -> dict[str, Any]:
        now = datetime.now(UTC).isoformat()
        account = {"bookmaker": body["bookmaker"], "username": body["username"], "client": "paper",
                   "password": "***", "balance": 0.0, "active": True, "priority": 0, "maxStake": None,
                   "minStake": None, "currencyId": "USD", "verifyBetslip": False, "multiLimitAllowed": True,
                   "meta": {}, "createdAt": now, "updatedAt": now}
        account.update({k: v for k, v in body.items() if k in account and k != "password"})
        self.accounts[(account["bookmaker"], account["username"])] = account
        return account

    def _account_row(self, account: dict[str, Any]) -> dict[str, Any]:
        return {**account, "currencyInfo": self._currency_info(str(account["currencyId"]))}

    async def _accounts(self, request: Request) -> Response:
        if request.method == "GET":
            book = request.query_params.get("bookmaker")
            rows = [self._account_row(a) for a in self.accounts.values() if book is None or a["bookmaker"] == book]
            return _json(sorted(rows, key=lambda a: -a["priority"]))
        body = request.state.json or {}
        if not isinstance(body.get("bookmaker"), str) or not isinstance(body.get("username"), str):
            return _json({"detail": [{"loc": ["body", "bookmaker"], "msg": "Field required", "type": "missing"}]}, 422)
        if (body["bookmaker"], body["username"]) in self.accounts:
            return _json({"detail": "Account already exists"}, 409)
        return _json(self._account_row(self._add_account(body)), 201)

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
        return _json(self._account_row(account))

    async def _bookmakers(self, request: Request) -> Response:
        """Exactly the books this key can reach (docs/reference/abp.md §12); 404 when none."""
        if not self.bookmakers:
            return _json({"detail": "No bookmakers found"}, 404)
        rows = []
        for i, book in enumerate(self.bookmakers, start=1):
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
        if self.faults.no_status:
            return _json({"detail": "Not Found"}, 404)
        emergency = {"active": self.venue.emergency, "reason": self.venue.emergency_reason}
        return _json({"status": self.system_status, "emergency": emergency})

    # -- admin (fault injection, inspection) ---------------------------------------------------------

    async def _admin_faults(self, request: Request) -> Response:
        self.faults, response = await admin_faults(request, self.faults)
        return response

    async def _admin_requests(self, request: Request) -> Response:
        return _json(self.requests)

    async def _admin_ws_drop(self, request: Request) -> Response:
        return _json({"dropped": self.drop_streams()})

    async def _admin_restart(self, request: Request) -> Response:
        return _json({"dropped": self.restart_streams()})

    async def _admin_renumber(self, request: Request) -> Response:
        self.renumber()
        return _json({"seq": self._sub.seq})

    async def _admin_emergency(self, request: Request) -> Response:
        body = await _admin_body(request)
        if body is None:
            return _json({"detail": "expected a JSON object {active, reason}"}, 400)
        self.venue.set_emergency(bool(body.get("active")), str(body.get("reason", "")))
        return _json({"active": self.venue.emergency})

    async def _admin_status(self, request: Request) -> Response:
        body = await _admin_body(request)
        if body is None or not isinstance(body.get("status"), str):
            return _json({"detail": "expected a JSON object {status: str}"}, 400)
        self.system_status = body["status"]
        self._publish(VenueMessage("status", "STATUS", {**body, "ts": _ms()}))
        return _json({"status": self.system_status})

    async def _admin_rates(self, request: Request) -> Response:
        body = await _admin_body(request)
        try:
            if body is None:
                raise ValueError("expected a JSON object {currency: units per USD | null}")
            changes = {str(k): None if v is None else Decimal(str(v)) for k, v in body.items()}
            if any(v is not None and not (v.is_finite() and v > 0) for v in changes.values()):
                raise ValueError("a rate must be a number > 0")
        except (ValueError, ArithmeticError) as exc:
            return _json({"detail": str(exc)}, 400)
        self.set_rates(changes)
        return _json({k: float(v) for k, v in self.venue.rates.items()})

    async def _admin_settle(self, request: Request) -> Response:
        body = await _admin_body(request) or {}
        try:
            self.venue.settle(int(body["betId"]), SettlementStatus(body["status"]))
        except (KeyError, ValueError, TypeError) as exc:
            return _json({"detail": str(exc)}, 400)
        return _json(self.venue.bets(bet_ids=[int(body["betId"])])[0])

    async def _admin_delete_bet(self, request: Request) -> Response:
        body = await _admin_body(request) or {}
        try:
            return _json(self.venue.delete_bet(int(body["betId"])))
        except (KeyError, ValueError, TypeError) as exc:
            return _json({"detail": f"no such bet: {exc}"}, 400)

    async def _admin_state(self, request: Request) -> Response:
        return _json({"orders": self.venue.all_orders(), "bets": self.venue.all_bets()})


async def _admin_body(request: Request) -> dict[str, Any] | None:
    """An admin request's JSON object ({} when empty); None when it is not one."""
    try:
        body = orjson.loads(await request.body() or b"{}")
    except orjson.JSONDecodeError:
        return None
    return body if isinstance(body, dict) else None


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
