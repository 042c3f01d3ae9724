"""The bot's HTTP surface: dashboard page, JSON API, server-sent status, health probes and
Prometheus metrics, all reading the engine through `bot.web.ports.Operated`.

Routes (the OpenAPI document at `GET /api/openapi.json` is built from the same table):

    GET  /                       the dashboard (static/index.html; no token, it asks for one)
    GET  /health/live            200 {"live": true}                       no token
    GET  /health/ready           200 / 503 {"ready", "checks"}            no token
    GET  /metrics                Prometheus text                          token unless web.metrics_public
    GET  /api/status|exposure|pnl|strategies|health|openapi.json
    GET  /api/orders?limit=N     GET /api/bets?limit=N     GET /api/decisions?limit=N&reason=R
    GET  /api/events             text/event-stream, `event: status` every events_interval_s and at
                                 once after a state change made here
    POST /api/halt {"reason"}    POST /api/resume    POST /api/cancel-all
    POST /api/strategies/{name}/params {params...}   400 {"error": <one line>} when refused

Every `/api/` route needs `Authorization: Bearer <web.token>` (compared in constant time); a
missing or wrong token is 401 `{"error": ...}`, and a client with too many failures in a minute
gets 429 until the minute ends. A token is never accepted in a URL, never logged, never echoed.
Errors are JSON `{"error": "<one line>"}`; a GET on a POST route is 405.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import orjson
from loguru import logger
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.bus.auth import CommandRefused
from bot.config.secrets import mask_bytes, mask_text, register
from bot.web.config import WebConfig
from bot.web.metrics import registry_for
from bot.web.ports import Operated

log = logger.bind(component="web")

STATIC = Path(__file__).parent / "static"
MAX_BODY = 64 * 1024
MAX_LIMIT = 1000
DEFAULT_LIMIT = 50

Handler = Callable[[Request], Awaitable[Response]]


class ApiError(Exception):
    """A request the API refuses: `status` and a one-line `message` sent as {"error": message}."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _dumps(data: Any) -> bytes:
    """JSON with every registered secret (the web token included) masked (bot.config.secrets).
    default=str: a Decimal or datetime slipping through the engine's JSON-ready contract still renders."""
    return mask_bytes(orjson.dumps(data, default=str, option=orjson.OPT_NON_STR_KEYS))


class _Json(JSONResponse):
    def render(self, content: Any) -> bytes:
        return _dumps(content)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return _Json({"error": message}, status_code=status, headers=headers)


@dataclass(frozen=True)
class Endpoint:
    """One route and its OpenAPI description."""

    method: str
    path: str
    summary: str
    auth: bool = True
    query: tuple[tuple[str, str, str], ...] = ()  # (name, type, description)
    body: dict[str, Any] | None = None  # JSON schema of the request body
    responses: tuple[int, ...] = (200,)
    content_type: str = "application/json"


@dataclass
class _Stream:
    """Wakes the /api/events streams: `changed()` after a state change, `close()` on shutdown."""

    event: asyncio.Event = field(default_factory=asyncio.Event)
    open: int = 0
    closing: bool = False

    def changed(self) -> None:
        self.event.set()
        self.event = asyncio.Event()

    def close(self) -> None:
        self.closing = True
        self.changed()


class _Web:
    """Request handlers bound to one Operated and one WebConfig."""

    def __init__(self, operated: Operated, config: WebConfig) -> None:
        self.operated = operated
        self.config = config
        self._token = config.token.get_secret_value().encode() if config.token is not None else None
        if config.token is not None:
            register([config.token.get_secret_value()])  # masked in every body and log line from now on
        self.stream = _Stream()
        self.registry = registry_for(operated.metrics)
        self._failures: dict[str, tuple[float, int]] = {}
        self._last_refusal_log = 0.0
        self._refusals_unlogged = 0
        self.page, self.page_csp = _load_page(STATIC / "index.html")

    # -- auth --------------------------------------------------------------------------------
    def _client(self, request: Request) -> str:
        return request.client.host if request.client else "?"

    def check_token(self, request: Request) -> None:
        """Raise ApiError 401 (or 429 after too many failures from this client in a minute)."""
        client = self._client(request)
        now = time.monotonic()
        start, failures = self._failures.get(client, (now, 0))
        if now - start >= 60:
            start, failures = now, 0
        if failures >= self.config.auth_failures_per_minute:
            raise ApiError(429, "too many failed authentications; retry in a minute")
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if (self._token is not None and scheme.lower() == "bearer"
                and hmac.compare_digest(value.strip().encode(), self._token)):
            return
        if len(self._failures) > 10_000:  # bounded memory under a spray of addresses
            self._failures.clear()
        self._failures[client] = (start, failures + 1)
        self._log_refusal(request, client, now)
        why = "no web.token configured" if self._token is None else "missing or wrong bearer token"
        raise ApiError(401, why)

    def _log_refusal(self, request: Request, client: str, now: float) -> None:
        # at most one warning per 10 s, so a brute-force attempt cannot flood the log; never the header
        self._refusals_unlogged += 1
        if now - self._last_refusal_log >= 10:
            log.warning("web: refused {} {} from {}: unauthenticated ({} refusal(s) since the last warning)",
                        request.method, request.url.path, client, self._refusals_unlogged)
            self._last_refusal_log, self._refusals_unlogged = now, 0

    def guard(self, handler: Handler, auth: bool) -> Handler:
        async def run(request: Request) -> Response:
            try:
                if auth:
                    self.check_token(request)
                return await handler(request)
            except ApiError as exc:
                headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
                return _error(exc.status, exc.message, headers)
        return run

    # -- page, health, metrics ----------------------------------------------------------------
    async def index(self, request: Request) -> Response:
        return Response(self.page, media_type="text/html; charset=utf-8",
                        headers={"Content-Security-Policy": self.page_csp})

    async def live(self, request: Request) -> Response:
        return _Json({"live": True})

    async def ready(self, request: Request) -> Response:
        health = self.operated.health()
        return _Json(health, status_code=200 if health.get("ready") else 503)

    async def metrics(self, request: Request) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

    # -- reads ---------------------------------------------------------------------------------
    async def status(self, request: Request) -> Response:
        return _Json(self.operated.status())

    async def health(self, request: Request) -> Response:
        return _Json(self.operated.health())

    async def orders(self, request: Request) -> Response:
        return _Json(self.operated.orders(_limit(request)))

    async def bets(self, request: Request) -> Response:
        return _Json(self.operated.bets(_limit(request)))

    async def decisions(self, request: Request) -> Response:
        reason = request.query_params.get("reason") or None
        if reason is not None and len(reason) > 200:
            raise ApiError(400, "query parameter reason: at most 200 characters")
        return _Json(self.operated.decisions(_limit(request), reason))

    async def exposure(self, request: Request) -> Response:
        return _Json(self.operated.exposure())

    async def pnl(self, request: Request) -> Response:
        return _Json(self.operated.pnl())

    async def strategies(self, request: Request) -> Response:
        return _Json(self.operated.strategies())

    async def openapi(self, request: Request) -> Response:
        return _Json(openapi_document())

    async def events(self, request: Request) -> Response:
        if self.stream.open >= self.config.max_event_streams:
            raise ApiError(503, f"too many event streams (web.max_event_streams = {self.config.max_event_streams})")
        return StreamingResponse(self._status_events(), media_type="text/event-stream",
                                 headers={"X-Accel-Buffering": "no"})

    async def _status_events(self) -> AsyncIterator[bytes]:
        self.stream.open += 1
        try:
            yield b"retry: 2000\n\n"
            while not self.stream.closing:
                wake = self.stream.event  # taken before reading, so a change in between is not missed
                try:
                    yield b"event: status\ndata: " + _dumps(self.operated.status()) + b"\n\n"
                except Exception as exc:  # the engine's status failed: tell the page, keep streaming
                    log.exception("web: status for /api/events failed")
                    yield b"event: error\ndata: " + _dumps({"error": f"status failed: {exc!r:.200}"}) + b"\n\n"
                try:
                    await asyncio.wait_for(wake.wait(), self.config.events_interval_s)
                except TimeoutError:
                    pass
        finally:
            self.stream.open -= 1

    # -- commands --------------------------------------------------------------------------------
    async def halt(self, request: Request) -> Response:
        body = await _json_body(request, required=True)
        reason = body.get("reason")
        if not isinstance(reason, str) or not reason.strip() or len(reason) > 500:
            raise ApiError(400, 'body must be {"reason": "<1 to 500 characters>"}')
        reason = mask_text(reason.strip())  # a secret pasted as a reason goes no further
        log.warning("web: halt requested from {}: {}", self._client(request), reason)
        await self.operated.halt(reason)
        self.stream.changed()
        return _Json({"ok": True, "status": self.operated.status()})

    async def resume(self, request: Request) -> Response:
        log.warning("web: resume requested from {}", self._client(request))
        await self.operated.resume()
        self.stream.changed()
        return _Json({"ok": True, "status": self.operated.status()})

    async def cancel_all(self, request: Request) -> Response:
        log.warning("web: cancel-all requested from {}", self._client(request))
        cancelled = await self.operated.cancel_all()
        self.stream.changed()
        return _Json({"ok": True, "cancelled": cancelled})

    async def reload_params(self, request: Request) -> Response:
        name = request.path_params["name"]
        params = await _json_body(request, required=True)
        try:
            await self.operated.reload_params(name, params)
        except (ValueError, CommandRefused) as exc:  # the contract's ValueError; the engine's own refusal
            raise ApiError(400, _one_line(exc)) from None
        log.info("web: strategy {} params reloaded from {}: {}", mask_text(name), self._client(request),
                 mask_text(str(sorted(params))))
        self.stream.changed()
        return _Json({"ok": True, "strategy": name, "params": params})


def _one_line(exc: Exception) -> str:
    text = str(getattr(exc, "reason", None) or exc) or type(exc).__name__
    return " ".join(text.split())[:500]


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit")
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"query parameter limit: expected an integer 1..{MAX_LIMIT}, got {raw[:20]!r}") from None
    if not 1 <= value <= MAX_LIMIT:
        raise ApiError(400, f"query parameter limit: expected an integer 1..{MAX_LIMIT}, got {value}")
    return value


async def _json_body(request: Request, *, required: bool) -> dict[str, Any]:
    """The request's JSON object (at most MAX_BODY bytes); {} for an empty optional body."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise ApiError(413, f"body larger than {MAX_BODY} bytes")
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > MAX_BODY:
            raise ApiError(413, f"body larger than {MAX_BODY} bytes")
    if not chunks and not required:
        return {}
    try:
        body = orjson.loads(bytes(chunks))
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"body is not JSON: {_one_line(exc)}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "body must be a JSON object")
    return body


def _load_page(path: Path) -> tuple[bytes, str]:
    """The page and a Content-Security-Policy allowing exactly its inline script and style
    (by SHA-256 hash), fetches to this origin only, no frames, no forms elsewhere."""
    page = path.read_bytes()
    text = page.decode()

    def hashes(tag: str) -> str:
        blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", text, flags=re.DOTALL)
        return " ".join(
            f"'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'" for b in blocks
        )

    csp = (f"default-src 'none'; script-src {hashes('script')}; style-src {hashes('style')}; "
           "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
           "frame-ancestors 'none'")
    return page, csp


class _SecurityHeaders:
    """Headers on every response: no sniffing, no framing, no referrer, no caching (the API
    carries live state and the page must not be served stale from a proxy)."""

    HEADERS: ClassVar[tuple[tuple[bytes, bytes], ...]] = (
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
        (b"cache-control", b"no-store"),
    )

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (k, v) for k, v in self.HEADERS if k not in names
                ]
            await send(message)

        await self.app(scope, receive, with_headers)


_LIMIT_Q = ("limit", "integer", f"rows, newest first (1..{MAX_LIMIT}, default {DEFAULT_LIMIT})")

ENDPOINTS: tuple[tuple[Endpoint, str], ...] = (
    (Endpoint("GET", "/", "The dashboard page.", auth=False, content_type="text/html"), "index"),
    (Endpoint("GET", "/health/live", "Liveness probe: the process serves HTTP.", auth=False), "live"),
    (Endpoint("GET", "/health/ready", "Readiness probe: feeds, ledger, venue, trading.", auth=False,
              responses=(200, 503)), "ready"),
    (Endpoint("GET", "/metrics", "Prometheus metrics (token unless web.metrics_public).",
              content_type=CONTENT_TYPE_LATEST), "metrics"),
    (Endpoint("GET", "/api/status", "Engine status: counters, clock, risk state, breakers."), "status"),
    (Endpoint("GET", "/api/health", "Health checks (always 200; see ready)."), "health"),
    (Endpoint("GET", "/api/orders", "Recent orders, newest first.", query=(_LIMIT_Q,)), "orders"),
    (Endpoint("GET", "/api/bets", "Recent bets, newest first.", query=(_LIMIT_Q,)), "bets"),
    (Endpoint("GET", "/api/decisions", "Recent risk decisions, newest first.",
              query=(_LIMIT_Q, ("reason", "string", "only decisions with this reason"))), "decisions"),
    (Endpoint("GET", "/api/exposure", "Open exposure by fixture, bookmaker and strategy, and each market's worst case "
              "with backs and lays netted (decimal strings)."),
     "exposure"),
    (Endpoint("GET", "/api/pnl", "Settled PnL today and in total, and the equity curve."), "pnl"),
    (Endpoint("GET", "/api/strategies", "Strategies with their current params."), "strategies"),
    (Endpoint("GET", "/api/events", "Server-sent events: `status` every events_interval_s and after a change.",
              content_type="text/event-stream"), "events"),
    (Endpoint("GET", "/api/openapi.json", "This document."), "openapi"),
    (Endpoint("POST", "/api/halt", "Halt trading (pending orders are cancelled by the engine).",
              body={"type": "object", "required": ["reason"],
                    "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": 500}}},
              responses=(200, 400)), "halt"),
    (Endpoint("POST", "/api/resume", "Resume trading after a halt."), "resume"),
    (Endpoint("POST", "/api/cancel-all", "Cancel every pending order; returns the count."), "cancel_all"),
    (Endpoint("POST", "/api/strategies/{name}/params", "Merge params into a strategy's current ones.",
              body={"type": "object", "additionalProperties": True}, responses=(200, 400)), "reload_params"),
)


def openapi_document() -> dict[str, Any]:
    """OpenAPI 3.1 document of ENDPOINTS (the same table the routes are built from)."""
    paths: dict[str, dict[str, Any]] = {}
    for ep, _ in ENDPOINTS:
        op: dict[str, Any] = {"summary": ep.summary, "responses": {}}
        for code in ep.responses:
            op["responses"][str(code)] = {"description": "OK" if code == 200 else "refused",
                                          "content": {ep.content_type if code in (200, 503) else
                                                      "application/json": {}}}
        if ep.auth:
            op["security"] = [{"bearer": []}]
            op["responses"]["401"] = {"description": "missing or wrong bearer token"}
        params = [{"name": n, "in": "query", "required": False, "schema": {"type": t}, "description": d}
                  for n, t, d in ep.query]
        params += [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                   for n in re.findall(r"{(\w+)}", ep.path)]
        if params:
            op["parameters"] = params
        if ep.body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": ep.body}}}
        paths.setdefault(ep.path, {})[ep.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "betbot operator API", "version": "1"},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    }


def build_app(operated: Operated, config: WebConfig) -> Starlette:
    """The ASGI app. `app.state.web_stream.close()` ends the open /api/events streams (the
    server does it before a graceful shutdown)."""
    web = _Web(operated, config)
    routes = [Route(ep.path, web.guard(getattr(web, name), ep.auth and not (name == "metrics" and config.metrics_public)),
                    methods=[ep.method])
              for ep, name in ENDPOINTS]

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return _error(exc.status_code, str(exc.detail), dict(exc.headers or {}))

    async def server_error(request: Request, exc: Exception) -> Response:
        log.opt(exception=exc).error("web: {} {} failed", request.method, request.url.path)
        return _error(500, "internal error (logged)")

    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error, Exception: server_error})
    app.add_middleware(_SecurityHeaders)
    app.state.web_stream = web.stream
    return app
