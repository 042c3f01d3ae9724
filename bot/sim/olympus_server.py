"""A local Olympus Data API server: a test fixture and dev tool (docs/architecture.md,
"Simulators"; `bot feeds serve-olympus`, which needs the `sim` extra).

Replays recorded responses (tests/data/olympus/recorded.json: per event pd the successive
`/matchmarkets/markets` and `/props` answers, the last one repeating; competition and race
coupon answers) behind the session protocol of the Olympus docs (docs/reference/olympus.md §1-§3, §8), at
least as strict as they are:
- every request needs the API key header (`api_key_header`, when the server has a key): missing
  or wrong is 401 `{"error": "invalid API key"}` (the seed documents 401 for "authentication failed");
- every endpoint but `/session/start` needs a `sessionId` (JSON body for POST, query for GET):
  missing is 400, unknown or expired is 401 `{"error": "invalid session", ...}` ("401: Invalid
  session"); `pd` is required where documented (400) and must be a recorded one (404);
- `POST /session/start` takes only the documented parameters (`userAgent`, `bootstrap`, `sst`,
  `sessionId`, `proxyUrl`, `country_code`, `bet365_url`; anything else or a wrong type is 400);
  an `sst` resumes: the same session when its `sessionId` is still alive, else a new id under the
  same `sst`; an unknown `sst` is 401. A session expires after `session_ttl` seconds without a
  request ("Sessions expire after inactivity"); `/session/status` reports `expiresIn`;
- `/session/login` checks `username` / `password` (401 on a mismatch); `/account/info` needs a
  login (403 "login required");
- every response carries a request id in `X-Request-Id`; error bodies are JSON.

Faults (`OlympusFaults`, also POST /_admin/faults): `expire` (every live session expires now,
once), `fail_401` (the next N session-bound requests answer 401 and end their live session),
`fail_403`, `rate_limit` (429, `Retry-After: retry_after` when set), `fail_5xx` (503),
`malformed` (the next N market responses carry one unreadable PA price), `delay_seconds` (every
answer waits); `paths` limits the status faults to the listed paths. GET /_admin/requests lists every request (monotonic time, method, path, session
id, pd, userAgent, proxyUrl, sst, status).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.sim.serving import LoopbackServer
from bot.sim.serving import json_response as _json

_START_FIELDS = {"userAgent": str, "bootstrap": bool, "sst": str, "sessionId": str, "proxyUrl": str,
                 "country_code": str, "bet365_url": str}
DEFAULT_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"


class OlympusFaults(BaseModel):
    """Injected faults (module docstring); a typo in POST /_admin/faults is a 422."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    expire: bool = False
    fail_401: int = Field(0, ge=0)
    fail_403: int = Field(0, ge=0)
    rate_limit: int = Field(0, ge=0)
    retry_after: float | None = Field(None, ge=0)
    fail_5xx: int = Field(0, ge=0)
    malformed: int = Field(0, ge=0)
    delay_seconds: float = Field(0.0, ge=0)
    paths: list[str] = Field([], description="fail_401/fail_403/rate_limit/fail_5xx hit only these paths; empty = all")


@dataclass
class _Session:
    session_id: str
    sst: str
    user_agent: str
    proxy_url: str | None
    created_at: datetime
    last_seen: float
    logged_in: bool = False
    expired: bool = False


@dataclass
class Recorded:
    """The responses to replay (tests/data/olympus/README.md)."""

    markets: dict[str, list[Any]] = field(default_factory=dict)
    props: dict[str, list[Any]] = field(default_factory=dict)
    competitions: dict[str, list[Any]] = field(default_factory=dict)
    racing: dict[str, list[Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Recorded:
        data = orjson.loads(path.read_bytes())
        events = data.get("events", {})
        return cls(
            markets={pd: e["markets"] for pd, e in events.items() if e.get("markets")},
            props={pd: e["props"] for pd, e in events.items() if e.get("props")},
            competitions=dict(data.get("competitions", {})),
            racing=dict(data.get("racing", {})),
        )


def _corrupt(body: Any) -> Any:
    """`body` with its first priced PA's `OD` unreadable (JSON records, envelope or text page)."""
    if isinstance(body, str):
        return body.replace("OD=", "OD=x", 1)
    body = copy.deepcopy(body)
    records = body.get("records") if isinstance(body, dict) else body
    for record in records or []:
        if isinstance(record, dict) and record.get("type") == "PA" and record.get("OD"):
            record["OD"] = "seven/fifths"
            break
    return body


class OlympusServer:
    """The ASGI app and its uvicorn runner (see the module docstring)."""

    def __init__(self, recorded: Recorded, *, api_key: str | None = "olympus-local-key",
                 api_key_header: str = "X-API-Key", session_ttl: float = 600.0,
                 username: str | None = None, password: str | None = None,
                 faults: OlympusFaults | None = None, balance: float = 120.5) -> None:
        self.recorded = recorded
        self.api_key, self.api_key_header = api_key, api_key_header
        self.session_ttl = session_ttl
        self.username, self.password = username, password
        self.balance = balance
        self.faults = faults or OlympusFaults()
        self.sessions: dict[str, _Session] = {}
        self.requests: list[dict[str, Any]] = []
        self.changed = asyncio.Condition()  # notified after every request is logged
        self._served: dict[tuple[str, str], int] = {}
        self._ids = itertools.count(1)
        self.app = Starlette(routes=[
            Route("/session/start", self._start, methods=["POST"]),
            Route("/session/info", self._info, methods=["GET"]),
            Route("/session/status", self._status, methods=["GET"]),
            Route("/session/keepalive", self._keepalive, methods=["POST"]),
            Route("/session/login", self._login, methods=["POST"]),
            Route("/account/info", self._account, methods=["GET"]),
            Route("/matchmarkets/markets", self._markets, methods=["POST"]),
            Route("/props", self._props, methods=["POST"]),
            Route("/splashcontent/competitions_from_session", self._competitions, methods=["GET"]),
            Route("/racing/racecoupon", self._racing, methods=["GET"]),
            Route("/_admin/faults", self._admin_faults, methods=["POST"]),
            Route("/_admin/requests", self._admin_requests, methods=["GET"]),
        ])
        self._uvicorn = LoopbackServer()
        self.url = ""

    # -- running -------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve in the running loop; returns the base URL."""
        self.url = await self._uvicorn.start(self.app, host, port, lifespan="off", timeout_graceful_shutdown=1)
        return self.url

    async def stop(self) -> None:
        await self._uvicorn.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def expire_all(self) -> int:
        """Every live session expires now (the `expire` fault); returns how many."""
        live = [s for s in self.sessions.values() if not s.expired]
        for session in live:
            session.expired = True
        return len(live)

    def calls(self, path: str, status: int | None = None) -> list[dict[str, Any]]:
        """The logged requests to `path` (answered with `status`, when given)."""
        return [r for r in self.requests if r["path"] == path and (status is None or r["status"] == status)]

    async def wait_for(self, predicate: Any, timeout: float = 10.0) -> None:
        """Until `predicate()` holds (checked after every request); TimeoutError after `timeout`."""
        async with asyncio.timeout(timeout), self.changed:
            await self.changed.wait_for(predicate)

    # -- plumbing ------------------------------------------------------------------------------

    async def _answer(self, request: Request, handler: Any, *, session: bool = True) -> Response:
        """Auth, session and fault checks shared by every endpoint, then `handler(args, session)`;
        the request is logged with its answer's status."""
        entry: dict[str, Any] = {"at": time.monotonic(), "method": request.method, "path": request.url.path}
        request_id = f"req-{next(self._ids):06d}-{secrets.token_hex(4)}"
        try:
            response = await self._checked(request, handler, entry, session)
        except _Refusal as refusal:
            response = _json(refusal.body, refusal.status, refusal.headers)
        response.headers["X-Request-Id"] = request_id
        entry["status"] = response.status_code
        self.requests.append(entry)
        async with self.changed:
            self.changed.notify_all()
        return response

    async def _checked(self, request: Request, handler: Any, entry: dict[str, Any], session: bool) -> Response:
        if self.faults.delay_seconds:
            await asyncio.sleep(self.faults.delay_seconds)
        if self.api_key is not None and request.headers.get(self.api_key_header) != self.api_key:
            raise _Refusal(401, {"error": "invalid API key", "detail": f"send the key in {self.api_key_header}"})
        if request.method == "GET":
            args: dict[str, Any] = dict(request.query_params)
        else:
            try:
                args = orjson.loads(await request.body() or b"null")
            except orjson.JSONDecodeError:
                raise _Refusal(400, {"error": "body must be JSON"}) from None
            if not isinstance(args, dict):
                raise _Refusal(400, {"error": "body must be a JSON object"})
        entry["sessionId"], entry["pd"] = args.get("sessionId"), args.get("pd")
        targeted = not self.faults.paths or request.url.path in self.faults.paths
        for key in ("userAgent", "proxyUrl", "sst"):
            entry[key] = args.get(key)
        if targeted and self.faults.fail_5xx > 0:
            self.faults.fail_5xx -= 1
            raise _Refusal(503, {"error": "upstream unavailable"})
        if targeted and self.faults.rate_limit > 0:
            self.faults.rate_limit -= 1
            headers = {"Retry-After": f"{self.faults.retry_after:g}"} if self.faults.retry_after is not None else None
            raise _Refusal(429, {"error": "rate limit exceeded"}, headers)
        if targeted and self.faults.fail_403 > 0:
            self.faults.fail_403 -= 1
            raise _Refusal(403, {"error": "action not permitted", "reason": "region block"})
        if not session:
            return await handler(args, None)
        if self.faults.expire:
            self.faults.expire = False
            self.expire_all()
        sid = args.get("sessionId")
        if not isinstance(sid, str) or not sid:
            raise _Refusal(400, {"error": "sessionId required"})
        found = self._live(sid)
        if found is None:
            raise _Refusal(401, {"error": "invalid session", "detail": "unknown or expired sessionId", "sessionId": sid})
        if targeted and self.faults.fail_401 > 0:  # the session is declared invalid: it is over
            self.faults.fail_401 -= 1
            found.expired = True
            raise _Refusal(401, {"error": "invalid session", "detail": "authentication failed", "sessionId": sid})
        found.last_seen = time.monotonic()
        return await handler(args, found)

    def _live(self, sid: str) -> _Session | None:
        found = self.sessions.get(sid)
        if found is None or found.expired:
            return None
        if time.monotonic() - found.last_seen > self.session_ttl:
            found.expired = True
            return None
        return found

    def _replay(self, kind: str, table: dict[str, list[Any]], pd: Any) -> Response:
        if not isinstance(pd, str) or not pd:
            raise _Refusal(400, {"error": "pd required"})
        answers = table.get(pd)
        if not answers:
            raise _Refusal(404, {"error": "resource not found", "pd": pd})
        n = self._served.get((kind, pd), 0)
        self._served[(kind, pd)] = n + 1
        body = answers[min(n, len(answers) - 1)]
        if kind in ("markets", "props") and self.faults.malformed > 0:
            self.faults.malformed -= 1
            body = _corrupt(body)
        if isinstance(body, str):
            return Response(body, 200, media_type="text/plain")
        return _json(body)

    # -- endpoints (docs/reference/olympus.md §1, §3) --------------------------------------------------

    async def _start(self, request: Request) -> Response:
        async def go(args: dict[str, Any], _: _Session | None) -> Response:
            for key, value in args.items():
                kind = _START_FIELDS.get(key)
                if kind is None or not isinstance(value, kind):
                    raise _Refusal(400, {"error": f"bad parameter {key!r}"})
            sst = args.get("sst")
            if sst is not None:
                owners = [s for s in self.sessions.values() if s.sst == sst]
                if not owners:
                    raise _Refusal(401, {"error": "invalid session", "detail": "unknown sst"})
                alive = self._live(args.get("sessionId", ""))
                if alive is not None and alive.sst == sst:
                    alive.last_seen = time.monotonic()
                    return self._session_body(alive)
            sid = f"b365-{secrets.token_hex(16)}"
            made = _Session(sid, sst or secrets.token_urlsafe(12), args.get("userAgent") or DEFAULT_UA,
                            args.get("proxyUrl"), datetime.now(UTC), time.monotonic())
            self.sessions[sid] = made
            return self._session_body(made)

        return await self._answer(request, go, session=False)

    @staticmethod
    def _session_body(s: _Session) -> Response:
        return _json({"sessionId": s.session_id, "userAgent": s.user_agent, "sst": s.sst, "proxyUrl": s.proxy_url})

    async def _info(self, request: Request) -> Response:
        async def go(args: dict[str, Any], s: _Session) -> Response:
            return _json({"sessionId": s.session_id, "userAgent": s.user_agent, "proxyUrl": s.proxy_url,
                          "active": True, "loggedIn": s.logged_in,
                          "createdAt": s.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")})

        return await self._answer(request, go)

    async def _status(self, request: Request) -> Response:
        async def go(args: dict[str, Any], s: _Session) -> Response:
            return _json({"sessionId": s.session_id, "active": True, "loggedIn": s.logged_in,
                          "expiresIn": int(self.session_ttl)})

        return await self._answer(request, go)

    async def _keepalive(self, request: Request) -> Response:
        async def go(args: dict[str, Any], s: _Session) -> Response:
            return _json({"ok": True, "alive": True})

        return await self._answer(request, go)

    async def _login(self, request: Request) -> Response:
        async def go(args: dict[str, Any], s: _Session) -> Response:
            user, password = args.get("username"), args.get("password")
            if not isinstance(user, str) or not isinstance(password, str):
                raise _Refusal(400, {"error": "username and password required"})
            if self.username is None or (user, password) != (self.username, self.password):
                raise _Refusal(401, {"error": "authentication failed"})
            s.logged_in = True
            return _json({"ok": True, "accountInfo": {"username": user, "country": "UK", "currency": "GBP",
                                                      "balance": self.balance}})

        return await self._answer(request, go)

    async def _account(self, request: Request) -> Response:
        async def go(args: dict[str, Any], s: _Session) -> Response:
            if not s.logged_in:
                raise _Refusal(403, {"error": "login required"})
            return _json({"balance": self.balance, "currency": "GBP", "bets": [
                {"betId": "B1234567890", "stake": 10.0, "returns": 18.5, "status": "settled",
                 "placedAt": "2025-11-06T13:00:00Z"}]})

        return await self._answer(request, go)

    async def _markets(self, request: Request) -> Response:
        return await self._answer(request, lambda a, s: self._async(self._replay("markets", self.recorded.markets,
                                                                                 a.get("pd"))))

    async def _props(self, request: Request) -> Response:
        return await self._answer(request, lambda a, s: self._async(self._replay("props", self.recorded.props,
                                                                                 a.get("pd"))))

    async def _competitions(self, request: Request) -> Response:
        return await self._answer(request, lambda a, s: self._async(
            self._replay("competitions", self.recorded.competitions, a.get("pd"))))

    async def _racing(self, request: Request) -> Response:
        return await self._answer(request, lambda a, s: self._async(self._replay("racing", self.recorded.racing,
                                                                                 a.get("pd"))))

    @staticmethod
    async def _async(response: Response) -> Response:
        return response

    async def _admin_faults(self, request: Request) -> Response:
        try:
            changes = orjson.loads(await request.body())
            merged = OlympusFaults.model_validate({**self.faults.model_dump(), **changes})
        except (orjson.JSONDecodeError, ValidationError, TypeError) as exc:
            return _json({"error": str(exc)[:300]}, 422)
        self.faults = merged
        return _json(self.faults.model_dump())

    async def _admin_requests(self, request: Request) -> Response:
        return _json(self.requests)


class _Refusal(Exception):
    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers


@contextlib.asynccontextmanager
async def serving(path: Path, **kwargs: Any) -> AsyncIterator[OlympusServer]:
    """An OlympusServer on the recorded responses at `path`, on a free loopback port."""
    server = OlympusServer(Recorded.load(path), **kwargs)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
