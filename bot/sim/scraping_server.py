"""A local 55-Tech Scraping API relay: `/fetch` forwarded to LOOPBACK targets only, with the
documented errors and fault switches (55-Tech docs, Scraping API Overview, Quickstart,
Authentication, Error Handling; docs/reference/scraping.md). A test fixture and dev tool
(`bot feeds serve-scraping`, which needs the `sim` extra); it never opens a connection beyond
loopback.

As strict as the documents, and where they name no status, stricter (docs/reference/scraping.md §5):
- every endpoint but `GET /healthz` needs `X-API-Key`: none -> 401, an unknown one -> 403, both
  with `{"detail": "Invalid or missing API key"}` (Authentication > Error responses, Error Handling >
  Error response format);
- `/fetch` (GET, POST, PUT, PATCH, DELETE) needs `X-Target-URL`: missing -> 400 `{"detail":
  "Missing target URL: set the X-Target-URL header"}`; a URL that is not http(s) -> 400; a host that
  is not loopback (127.0.0.0/8, ::1, localhost) -> 400 and nothing is sent;
- `X-Geo` (and its aliases `X-Geo-CC`, `X-Geo-Strict`, `X-CC`, `X-Country`) must be ISO two-letter
  codes (`Germany` -> 400 "Invalid geo code"); `X-Agent` must name known agents (-> 400);
  `X-Timeout` must be a positive number (-> 400); agents are picked among those the headers allow
  and not excluded for the target's domain: none -> 502 "No healthy agent available";
- `POST /fetch` takes an optional JSON object with exactly the documented fields `method`,
  `headers`, `body`, `timeout`, `allow_redirects` (Quickstart > Step 3); anything else -> 422.
  Only `headers` of the body go to the target (for the other methods, the request's own headers
  less the control headers and `X-API-Key`): the control headers are stripped (Overview > Control
  headers);
- rate limit per key (`rps`, burst = rps; the documented default 10/s): over it -> 429 with
  `Retry-After`, `X-RateLimit-Limit`, `X-RateLimit-Remaining: 0` (Authentication > Rate limits);
- the answer is the documented envelope `{meta: {status, final_url, http_version, elapsed_ms,
  blocked, headers, agent: {id}, bytes}, raw, raw_json}` (Overview > Fetch response format):
  `raw_json` holds the body when it is strict JSON, else `raw` holds the text; the target's headers
  are passed as they came (content encodings included, while the body is decoded);
- a target that does not answer in time (the body's `timeout`, `X-Timeout`, default 30 s) -> 504;
  one that refuses the connection -> 502.

Fault switches (`Faults`, also POST /_admin/faults): `blocked` (the next N fetches come back
`meta.blocked: true` with the target status 403 and "Access Denied"; the agent is then excluded for
the domain, so the next request goes through another one, Error Handling > Block detection);
`rate_limit` (the next N -> 429 with `Retry-After: retry_after`); `fail_502`, `fail_504` (the next
N -> that status, before anything is forwarded). GET /_admin/requests lists what was received
(targets masked), in order, with the time (`time.monotonic()`) and the status answered;
`requests` holds the same with the targets as sent, for tests in the same process.
"""

from __future__ import annotations

import ipaddress
import math
import re
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import httpx
import orjson
from loguru import logger
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.config.secrets import mask_text
from bot.feeds.scraping import safe_url
from bot.sim.serving import LoopbackServer, admin_faults
from bot.sim.serving import json_response as _json

DEFAULT_AGENTS: Mapping[str, str] = {"de1": "DE", "de5": "DE", "at5": "AT", "us3": "US"}
"""Agent slug -> country; real slugs from the documents' examples (Quickstart > Step 4)."""

AUTH_DETAIL = "Invalid or missing API key"  # Error Handling > Error response format
GEO_HEADERS = ("x-geo", "x-geo-cc", "x-geo-strict", "x-cc", "x-country")  # Overview > Control headers
CONTROL_HEADERS = frozenset({"x-target-url", "x-expect-json", "x-agent", "x-timeout", *GEO_HEADERS})
_NOT_FORWARDED = CONTROL_HEADERS | {"x-api-key", "host", "content-length", "connection", "transfer-encoding",
                                    "accept-encoding", "keep-alive", "content-type"}
_GEO = re.compile(r"^[A-Za-z]{2}$")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


class Faults(BaseModel):
    """The injected faults (see the module docstring); a typo in POST /_admin/faults is a 422."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    blocked: int = Field(0, ge=0)
    rate_limit: int = Field(0, ge=0)
    retry_after: int = Field(1, ge=0)
    fail_502: int = Field(0, ge=0)
    fail_504: int = Field(0, ge=0)


class FetchBody(BaseModel):
    """The POST /fetch body (Quickstart > Step 3: POST body fields); nothing else is accepted."""

    model_config = ConfigDict(extra="forbid", strict=True)

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] | None = None
    headers: dict[str, str] = {}
    body: str = ""
    timeout: float = Field(30.0, gt=0, le=600)
    allow_redirects: bool = True


@dataclass
class Received:
    """One /fetch request as the server saw it and what it answered."""

    at: float  # time.monotonic() on arrival
    method: str
    target: str | None
    headers: dict[str, str]  # the control headers received (X-API-Key left out)
    body: Any
    status: int = 0  # the status this server answered
    agent: str | None = None
    forwarded: dict[str, str] = field(default_factory=dict)  # headers sent to the target


def is_loopback(host: str) -> bool:
    """True for localhost and loopback IP literals only; no name is resolved."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _Bucket:
    """Token bucket: `rate` per second, burst `rate`."""

    def __init__(self, rate: float) -> None:
        self.rate, self.tokens, self.stamp = rate, rate, time.monotonic()

    def take(self) -> float:
        """0 when a token was taken, else the seconds until one is due."""
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class LocalScrapingServer:
    """ASGI app + uvicorn runner; see the module docstring. `api_keys` are the valid keys,
    `agents` slug -> country, `rps` the per-key limit (None: none)."""

    def __init__(self, *, api_keys: Sequence[str] = ("test-key",), agents: Mapping[str, str] = DEFAULT_AGENTS,
                 rps: float | None = 10.0, faults: Faults | None = None) -> None:
        self.api_keys = frozenset(api_keys)
        self.agents = dict(agents)
        self.rps = rps
        self.faults = faults or Faults()
        self.requests: list[Received] = []
        self.usage: Counter[str] = Counter()
        self.excluded: dict[str, set[str]] = {}  # domain -> agents blocked there
        self._buckets: dict[str, _Bucket] = {}
        self._next_agent = 0
        self._client: httpx.AsyncClient | None = None
        self.app = Starlette(routes=[
            Route("/fetch", self._fetch, methods=list(METHODS)),
            Route("/healthz", self._healthz, methods=["GET"]),
            Route("/usage", self._guarded(self._usage), methods=["GET"]),
            Route("/network/status", self._guarded(self._network_status), methods=["GET"]),
            Route("/network/agents", self._guarded(self._network_agents), methods=["GET"]),
            Route("/_admin/faults", self._admin_faults, methods=["GET", "POST"]),
            Route("/_admin/requests", self._admin_requests, methods=["GET"]),
        ])
        self._uvicorn = LoopbackServer()
        self.port: int | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve in the running loop; returns the base URL (http://127.0.0.1:<port>)."""
        self._client = httpx.AsyncClient(trust_env=False)
        url = await self._uvicorn.start(self.app, host, port, lifespan="off", timeout_graceful_shutdown=1)
        self.port = self._uvicorn.port
        return url

    async def stop(self) -> None:
        await self._uvicorn.stop()
        if self._client is not None:
            await self._client.aclose()

    # -- auth and limits -----------------------------------------------------------------------

    def _auth(self, request: Request) -> Response | None:
        """The documented answer to a missing (401) or unknown (403) key, or the rate limit's
        429; None when the request may go on."""
        key = request.headers.get("x-api-key")
        if not key:
            return _json({"detail": AUTH_DETAIL}, 401)
        if key not in self.api_keys:
            return _json({"detail": AUTH_DETAIL}, 403)
        f = self.faults
        if f.rate_limit > 0:
            f.rate_limit -= 1
            return self._too_many(f.retry_after)
        if self.rps is not None:
            due = self._buckets.setdefault(key, _Bucket(self.rps)).take()
            if due > 0:
                return self._too_many(max(1, math.ceil(due)))
        return None

    def _too_many(self, retry_after: int) -> Response:
        limit = str(int(self.rps)) if self.rps is not None else "10"
        return _json({"detail": "Rate limit exceeded"}, 429, {
            "Retry-After": str(retry_after), "X-RateLimit-Limit": limit, "X-RateLimit-Remaining": "0"})

    def _guarded(self, handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            return self._auth(request) or await handler(request)

        return endpoint

    # -- /fetch ----------------------------------------------------------------------------------

    async def _fetch(self, request: Request) -> Response:
        raw = await request.body()
        control = {k: v for k, v in request.headers.items() if k.lower() in CONTROL_HEADERS}
        record = Received(time.monotonic(), request.method, request.headers.get("x-target-url"), control, None)
        self.requests.append(record)
        response = await self._answer(request, raw, record)
        record.status = response.status_code
        self.usage["total"] += 1
        self.usage["success" if response.status_code == 200 else "fail"] += 1
        return response

    async def _answer(self, request: Request, raw: bytes, record: Received) -> Response:
        denied = self._auth(request)
        if denied is not None:
            return denied
        target = record.target
        if not target:
            return _json({"detail": "Missing target URL: set the X-Target-URL header"}, 400)
        try:
            url = httpx.URL(target)
        except (httpx.InvalidURL, ValueError):
            return _json({"detail": "Invalid target URL"}, 400)
        if url.scheme not in ("http", "https") or not url.host:
            return _json({"detail": "Invalid target URL: http(s) only"}, 400)
        if not is_loopback(url.host):
            return _json({"detail": "This local relay forwards to loopback targets only"}, 400)
        body: FetchBody | None = None
        if request.method == "POST" and raw.strip():
            try:
                record.body = orjson.loads(raw)
                body = FetchBody.model_validate(record.body)
            except orjson.JSONDecodeError:
                return _json({"detail": [{"loc": ["body"], "msg": "JSON decode error", "type": "json_invalid"}]}, 422)
            except ValidationError as exc:
                return _json({"detail": orjson.loads(exc.json(include_url=False, include_input=False))}, 422)
        geo, problem = self._geo(request)
        if problem:
            return _json({"detail": problem}, 400)
        wanted = [a.strip().lower() for a in request.headers.get("x-agent", "").split(",") if a.strip()]
        unknown = [a for a in wanted if a not in self.agents]
        if unknown:
            return _json({"detail": f"Unknown agent: {', '.join(unknown)}"}, 400)
        timeout = body.timeout if body is not None else 30.0
        if "x-timeout" in request.headers:
            try:
                timeout = float(request.headers["x-timeout"])
            except ValueError:
                timeout = -1.0
            if not 0 < timeout <= 600:
                return _json({"detail": "Invalid X-Timeout: seconds, above 0"}, 400)
        f = self.faults
        if f.fail_502 > 0:
            f.fail_502 -= 1
            return _json({"detail": "Bad gateway: no healthy agent available for this domain"}, 502)
        if f.fail_504 > 0:
            f.fail_504 -= 1
            return _json({"detail": "Gateway timeout: target did not respond within timeout"}, 504)
        agent = self._pick(url.host, geo, wanted)
        if agent is None:
            return _json({"detail": "Bad gateway: no healthy agent available for this domain"}, 502)
        record.agent = agent
        if f.blocked > 0:
            f.blocked -= 1
            self.excluded.setdefault(url.host, set()).add(agent)
            return _json(self._envelope(403, target, {"content-type": "text/html"}, b"Access Denied", agent, 1,
                                        "HTTP/1.1", blocked=True))
        method: str
        if body is not None:
            method, headers, content = body.method or "POST", body.headers, body.body.encode()
            follow = body.allow_redirects
        else:
            method, content, follow = request.method, raw, True
            headers = {k: v for k, v in request.headers.items() if k.lower() not in _NOT_FORWARDED}
        record.forwarded = dict(headers)
        return await self._forward(method, url, headers, content, follow, timeout, agent)

    def _geo(self, request: Request) -> tuple[set[str] | None, str | None]:
        codes: set[str] = set()
        for name in GEO_HEADERS:
            for code in (c.strip() for c in request.headers.get(name, "").split(",")):
                if not code:
                    continue
                if not _GEO.match(code):
                    return None, f"Invalid geo code: {code[:40]} (ISO 3166 two-letter codes, e.g. DE)"
                codes.add(code.upper())
        return (codes or None), None

    def _pick(self, domain: str, geo: set[str] | None, wanted: list[str]) -> str | None:
        """An agent the headers allow and not excluded for `domain`, in turn."""
        blocked = self.excluded.get(domain, set())
        candidates = [a for a in (wanted or list(self.agents))
                      if a not in blocked and (geo is None or self.agents[a] in geo)]
        if not candidates:
            return None
        self._next_agent += 1
        return candidates[(self._next_agent - 1) % len(candidates)]

    async def _forward(self, method: str, url: httpx.URL, headers: dict[str, str], content: bytes, follow: bool,
                       timeout: float, agent: str) -> Response:
        assert self._client is not None
        started = time.monotonic()
        try:
            answer = await self._client.request(method, url, headers=headers, content=content or None,
                                                follow_redirects=follow, timeout=timeout)
        except httpx.TimeoutException:
            return _json({"detail": f"Gateway timeout: target did not respond within {timeout:g}s"}, 504)
        except httpx.HTTPError as exc:
            logger.debug("scraping relay: {} {} failed: {}", method, safe_url(url), mask_text(type(exc).__name__))
            return _json({"detail": "Bad gateway: target unreachable"}, 502)
        target_headers: dict[str, str] = {}
        for name, value in answer.headers.multi_items():
            key = name.lower()
            target_headers[key] = f"{target_headers[key]}, {value}" if key in target_headers else value
        elapsed = int((time.monotonic() - started) * 1000)
        return _json(self._envelope(answer.status_code, str(answer.url), target_headers, answer.content, agent,
                                    elapsed, answer.http_version))

    @staticmethod
    def _envelope(status: int, final_url: str, headers: dict[str, str], content: bytes, agent: str, elapsed: int,
                  http_version: str, *, blocked: bool = False) -> dict[str, Any]:
        raw_json: Any = None
        raw: str | None = None
        try:
            raw_json = orjson.loads(content) if content else None  # strict JSON only: NaN stays text
        except orjson.JSONDecodeError:
            raw_json = None
        if raw_json is None:
            raw = content.decode("utf-8", errors="replace")
        return {
            "meta": {"status": status, "final_url": final_url, "http_version": http_version,
                     "elapsed_ms": elapsed, "blocked": blocked, "headers": headers,
                     "agent": {"id": f"scraping-{agent}"}, "bytes": len(content)},
            "raw": raw,
            "raw_json": raw_json,
        }

    # -- other endpoints -------------------------------------------------------------------------

    async def _healthz(self, request: Request) -> Response:
        return _json({"ok": True})

    async def _usage(self, request: Request) -> Response:
        total = self.usage["total"]
        return _json({"total": total, "success": self.usage["success"], "fail": self.usage["fail"],
                      "success_rate": round(100 * self.usage["success"] / total, 1) if total else 100.0,
                      "rate_limit": {"rps": self.rps, "burst": self.rps}, "by_protocol": {"fetch": total}})

    async def _network_status(self, request: Request) -> Response:
        countries = Counter(self.agents.values())
        return _json({"total_nodes": len(self.agents), "total_countries": len(countries),
                      "nodes_by_country": dict(countries)})

    async def _network_agents(self, request: Request) -> Response:
        return _json([{"slug": s, "name": f"scraping-{s}", "country": c} for s, c in self.agents.items()])

    async def _admin_faults(self, request: Request) -> Response:
        self.faults, response = await admin_faults(request, self.faults)
        return response

    async def _admin_requests(self, request: Request) -> Response:
        rows = []
        for r in self.requests:
            row = asdict(r)
            row["target"] = mask_text(r.target) if r.target else None
            row["headers"] = {k: mask_text(v) for k, v in r.headers.items()}
            row["body"] = None
            rows.append(row)
        return _json(rows)
