"""The 55-Tech Scraping API as an httpx transport: an HTTP feed's requests relayed through
`POST {scraping.base_url}/fetch` (55-Tech docs, Scraping API Overview, Quickstart, Authentication
and Error Handling; our notes in docs/reference/scraping.md).

A feed keeps its own `httpx.AsyncClient` and code; only the client's transport changes:

    relay = ScrapingRelay(settings.scraping)                 # one per process and API key
    client = httpx.AsyncClient(timeout=20, transport=relay.transport(geo=("DE",)))
    await client.get("https://api.the-odds-api.com/v4/sports/x/odds", params={"apiKey": "..."})

Each request becomes `POST /fetch` with the control headers `X-API-Key` (the Scraping API key),
`X-Target-URL` (the original URL, query included), `X-Geo` / `X-Agent` (config defaults, or the
feed's own) and `X-Expect-JSON` when configured, and a JSON body `{method, headers, body, timeout,
allow_redirects}` (Quickstart > Step 3: POST body fields). The feed's own headers go in `headers`,
without the hop-by-hop ones; `allow_redirects` is false, so the feed's client keeps its own
redirect policy. The answer's envelope `{meta: {status, headers, blocked, agent, ...}, raw,
raw_json}` (Overview > Fetch response format) is unwrapped: the feed gets an `httpx.Response`
with the target's status, the target's headers (less the content/transfer encodings, since the body
arrives decoded) and its body (`raw` as sent, or `raw_json` serialised when `raw` is null).

Errors (Error Handling > HTTP status codes, Block detection, Retry strategies) are `ScrapingError`s,
which are `httpx.TransportError`s, so a feed that knows nothing of the relay counts them as failed
requests. Each names a `kind` for the feed's stats and whether the feed should `back_off`:
- `meta.blocked: true` -> `ScrapingBlocked` ("blocked"), not retried here: the API routes the next
  request through another agent; the feed counts it and waits (backs off) before its next poll;
- 429 -> wait `Retry-After` (at least; at most `retry_after_max_seconds`) or the doubling backoff,
  whichever is longer, then retry; the wait holds every request of the relay (the limit is per key),
  so the next one after a 429 never leaves before `Retry-After` has passed. Out of attempts ->
  `ScrapingRateLimited` ("scraping_rate_limited");
- 502 (no healthy agent) and 504 (target timeout) -> retried after 1 s, 2 s, 4 s ...
  (`backoff_initial_seconds`, capped), at most `max_attempts` tries in all, then
  `ScrapingGatewayError` ("scraping_gateway"). A 504 is retried only for idempotent methods (the
  target may have received a POST);
- 401 (missing key) / 403 (invalid key) -> `ScrapingAuthError` ("scraping_auth"), not retried;
- any other status, or an envelope that is not as documented -> `ScrapingResponseError`
  ("scraping_bad_response").
Requests are also held to `requests_per_second` per key on our side (aiolimiter; the API's
default is 10/s, Authentication > Rate limits).

Secrets: the Scraping API key travels only in `X-API-Key`; a target's credentials (The Odds API's
`apiKey=` query parameter) only in `X-Target-URL`. Nothing here writes either into a log line or an
exception text: targets are named by scheme, host and path (`safe_url`), and every text taken from
a response is masked (bot.config.secrets).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import orjson
from aiolimiter import AsyncLimiter
from loguru import logger
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from bot.config.secrets import mask_text
from bot.feeds.base import loads_lenient, truncate
from bot.feeds.config import HttpTransportOptions, ScrapingConfig

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
"""Methods a 504 may be retried for: repeating them cannot do a thing twice (RFC 9110 §9.2.2)."""

_HOP_REQUEST = frozenset({"host", "content-length", "connection", "accept-encoding", "transfer-encoding",
                          "keep-alive", "te", "upgrade", "proxy-connection", "trailer"})
"""Request headers not forwarded in the `headers` body field: hop-by-hop, or set by the agent."""

_DECODED = frozenset({"content-encoding", "content-length", "transfer-encoding", "connection", "keep-alive"})
"""Target response headers dropped when unwrapping: the envelope holds the body decoded, as text."""

_CONTROL = {"geo": "X-Geo", "agent": "X-Agent"}
HTTPX_USER_AGENT = f"python-httpx/{httpx.__version__}"


def safe_url(url: httpx.URL | str) -> str:
    """`url` without user info, query and fragment, for log lines and error texts: a target's
    credentials often ride in its query (`?apiKey=`)."""
    u = httpx.URL(str(url))
    port = f":{u.port}" if u.port is not None else ""
    return f"{u.scheme}://{u.host}{port}{u.path}"


class ScrapingError(httpx.TransportError):
    """A request the Scraping API did not relay to a usable answer. `kind` is the counter a feed
    adds it to; `back_off` says the feed should wait longer than usual before its next request;
    `retryable` is whether the transport itself tries again (within `max_attempts`)."""

    kind = "scraping_error"
    back_off = False
    retryable = False

    def __init__(self, message: str, *, request: httpx.Request | None = None, status: int | None = None) -> None:
        super().__init__(mask_text(message), request=request)
        self.status = status


class ScrapingBlocked(ScrapingError):
    """`meta.blocked` was true: the target refused the agent (Error Handling > Block detection).
    `status` is the target's status; `agent` the agent that was blocked."""

    kind = "blocked"
    back_off = True

    def __init__(self, message: str, *, request: httpx.Request | None = None, status: int | None = None,
                 agent: str | None = None) -> None:
        super().__init__(message, request=request, status=status)
        self.agent = agent


class ScrapingRateLimited(ScrapingError):
    """HTTP 429 from the Scraping API; `retry_after` is its `Retry-After` in seconds (None when
    absent or unreadable)."""

    kind = "scraping_rate_limited"
    back_off = True
    retryable = True

    def __init__(self, message: str, *, request: httpx.Request | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, request=request, status=429)
        self.retry_after = retry_after


class ScrapingGatewayError(ScrapingError):
    """HTTP 502 (no healthy agent for the domain) or 504 (the target did not answer in time)."""

    kind = "scraping_gateway"
    back_off = True

    def __init__(self, message: str, *, request: httpx.Request | None = None, status: int, retryable: bool) -> None:
        super().__init__(message, request=request, status=status)
        self.retryable = retryable


class ScrapingAuthError(ScrapingError):
    """HTTP 401 (missing key) or 403 (invalid key): `scraping.api_key` needs fixing."""

    kind = "scraping_auth"
    back_off = True


class ScrapingResponseError(ScrapingError):
    """An answer the documents do not describe: another status, or an envelope without a
    readable `meta.status`."""

    kind = "scraping_bad_response"


def parse_retry_after(value: str | None) -> float | None:
    """Seconds a `Retry-After` header asks for (delta-seconds or an HTTP date, RFC 9110 §10.2.3);
    None when absent or unreadable; never negative."""
    if value is None:
        return None
    text = value.strip()
    if len(text) > 64:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


class ScrapingRelay:
    """What the feeds relayed through one Scraping API key share: the key, the request budget
    (`requests_per_second`), the hold a 429 puts on every request, and the counters (`stats`:
    "requests", "blocked", "rate_limited", "gateway_errors", "retries", "auth_errors",
    "bad_response", "bad_header"). `transport()` makes a transport for one feed's client."""

    def __init__(self, config: ScrapingConfig) -> None:
        if config.api_key is None or not config.api_key.get_secret_value():
            raise ValueError("config error: scraping.api_key: not set but a feed has transport: scraping; "
                             "fix: set BOT_SCRAPING__API_KEY")
        self.config = config
        self.stats: Counter[str] = Counter()
        capacity = max(1.0, config.requests_per_second)  # a bucket below one token could never send
        self.limiter = AsyncLimiter(capacity, capacity / config.requests_per_second)
        self._not_before = 0.0  # time.monotonic() before which no request leaves (a 429's Retry-After)

    @property
    def fetch_url(self) -> str:
        return f"{self.config.base_url.rstrip('/')}/fetch"

    def transport(self, geo: tuple[str, ...] | None = None, agent: tuple[str, ...] | None = None) -> ScrapingTransport:
        """A transport for one feed; `geo` / `agent` None take the config's defaults."""
        return ScrapingTransport(self, geo=self.config.geo if geo is None else geo,
                                 agent=self.config.agent if agent is None else agent)

    def hold(self, seconds: float) -> None:
        """No request of this relay leaves for `seconds` from now (or longer, if already held)."""
        self._not_before = max(self._not_before, time.monotonic() + seconds)

    async def gate(self) -> None:
        """Wait out a hold, then take a token of the request budget."""
        while (delay := self._not_before - time.monotonic()) > 0:
            await asyncio.sleep(delay)
        await self.limiter.acquire()

    def backoff(self, attempt: int) -> float:
        """The wait after failed try number `attempt` (1-based): 1 s, 2 s, 4 s ... capped."""
        c = self.config
        return float(min(c.backoff_initial_seconds * 2 ** (attempt - 1), c.backoff_max_seconds))


class ScrapingTransport(httpx.AsyncBaseTransport):
    """Relays each request of the client it is given to through the Scraping API; see the module
    docstring. Closing it (the client's `aclose`) closes its connection pool to the API; it opens
    a new one when used again, so a feed that restarts with a fresh client can keep it."""

    def __init__(self, relay: ScrapingRelay, geo: tuple[str, ...] = (), agent: tuple[str, ...] = ()) -> None:
        self.relay = relay
        self.geo, self.agent = geo, agent
        self._client: httpx.AsyncClient | None = None

    def _api(self) -> httpx.AsyncClient:
        if self._client is None or self._client.is_closed:
            self._client = httpx.AsyncClient(follow_redirects=False)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise ScrapingError(f"scraping: {request.method} {safe_url(request.url)}: the request body is not "
                                "UTF-8 text, which the Scraping API's `body` field cannot carry",
                                request=request) from None
        timeouts = request.extensions.get("timeout") or {}
        target_timeout = float(timeouts.get("read") or self.relay.config.timeout_seconds)
        payload = orjson.dumps({
            "method": request.method,
            "headers": self._forwarded_headers(request),
            "body": text,
            "timeout": target_timeout,
            "allow_redirects": False,
        })
        headers = self._control_headers(request)
        timeout = httpx.Timeout(target_timeout + 10.0, connect=timeouts.get("connect") or 10.0)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.relay.config.max_attempts),
            retry=retry_if_exception(lambda e: isinstance(e, ScrapingError) and e.retryable),
            wait=self._wait,
            before_sleep=self._log_retry,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._attempt(request, payload, headers, timeout, attempt.retry_state.attempt_number)
        raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover

    def _forwarded_headers(self, request: httpx.Request) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, value in request.headers.items():
            low = name.lower()
            if low in _HOP_REQUEST or (low == "user-agent" and value == HTTPX_USER_AGENT):
                continue  # httpx's own user agent is no part of the feed's request: the agent sends its own
            out[name] = value
        return out

    def _control_headers(self, request: httpx.Request) -> dict[str, str]:
        key = self.relay.config.api_key
        assert key is not None  # ScrapingRelay refuses a config without one
        headers = {
            "X-API-Key": key.get_secret_value(),
            "X-Target-URL": str(request.url),
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        if self.geo:
            headers[_CONTROL["geo"]] = ",".join(self.geo)
        if self.agent:
            headers[_CONTROL["agent"]] = ",".join(self.agent)
        if self.relay.config.expect_json:
            headers["X-Expect-JSON"] = "1"
        return headers

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, ScrapingRateLimited):
            return 0.0  # the relay's hold (set from Retry-After) is waited out before the next try
        return self.relay.backoff(state.attempt_number)

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        self.relay.stats["retries"] += 1
        logger.warning("scraping: try {}/{} failed ({}); trying again", state.attempt_number,
                       self.relay.config.max_attempts, exc)

    async def _attempt(self, request: httpx.Request, payload: bytes, headers: dict[str, str],
                       timeout: httpx.Timeout, number: int) -> httpx.Response:
        relay = self.relay
        await relay.gate()
        started = time.monotonic()
        api = await self._api().post(relay.fetch_url, content=payload, headers=headers, timeout=timeout)
        await api.aread()
        relay.stats["requests"] += 1
        where = f"{request.method} {safe_url(request.url)}"
        status = api.status_code
        if status == 200:
            return self._unwrap(request, api, where, started)
        detail = _detail(api)
        if status == 429:
            relay.stats["rate_limited"] += 1
            header = api.headers.get("retry-after")
            retry_after = parse_retry_after(header)
            if header is not None and retry_after is None:
                relay.stats["bad_header"] += 1
                logger.warning("scraping: unreadable Retry-After {!r}; backing off instead", truncate(header, 64))
            wait = relay.backoff(number)
            if retry_after is not None:
                wait = max(wait, min(retry_after, relay.config.retry_after_max_seconds))
            relay.hold(wait)
            raise ScrapingRateLimited(f"scraping: {where}: Scraping API rate limited (HTTP 429, Retry-After "
                                      f"{header if header is not None else 'absent'}): {detail}",
                                      request=request, retry_after=retry_after)
        if status in (502, 504):
            relay.stats["gateway_errors"] += 1
            what = "no healthy agent for the domain" if status == 502 else "the target did not answer in time"
            raise ScrapingGatewayError(f"scraping: {where}: HTTP {status} ({what}): {detail}", request=request,
                                       status=status, retryable=status == 502 or request.method in IDEMPOTENT)
        if status in (401, 403):
            relay.stats["auth_errors"] += 1
            what = "missing API key" if status == 401 else "invalid API key"
            raise ScrapingAuthError(f"scraping: {where}: HTTP {status} ({what}): {detail}; fix: set "
                                    "scraping.api_key (BOT_SCRAPING__API_KEY)", request=request, status=status)
        relay.stats["bad_response"] += 1
        raise ScrapingResponseError(f"scraping: {where}: unexpected HTTP {status} from the Scraping API: {detail}",
                                    request=request, status=status)

    def _unwrap(self, request: httpx.Request, api: httpx.Response, where: str, started: float) -> httpx.Response:
        """The target's answer from the fetch envelope (Overview > Fetch response format)."""
        relay = self.relay
        try:
            envelope = loads_lenient(api.content)
        except (ValueError, RecursionError):
            envelope = None
        meta = envelope.get("meta") if isinstance(envelope, dict) else None
        status = meta.get("status") if isinstance(meta, dict) else None
        if not isinstance(envelope, dict) or not isinstance(meta, dict) or not _is_status(status):
            relay.stats["bad_response"] += 1
            raise ScrapingResponseError(f"scraping: {where}: the fetch envelope has no meta.status: "
                                        f"{truncate(api.content)}", request=request)
        assert isinstance(status, int)
        agent = _agent(meta)
        raw, raw_json = envelope.get("raw"), envelope.get("raw_json")
        if meta.get("blocked") is True:
            relay.stats["blocked"] += 1
            seen = raw if isinstance(raw, str) else raw_json
            raise ScrapingBlocked(f"scraping: {where}: agent {agent} was blocked (target HTTP {status}); the API "
                                  f"routes the next request through another agent; body: {truncate(seen)}",
                                  request=request, status=status, agent=agent)
        if isinstance(raw, str):
            content = raw.encode("utf-8", errors="surrogatepass")
        elif raw_json is not None:
            content = _dump_json(raw_json)
        else:
            content = b""
        logger.debug("scraping: {} -> {} via {} in {:.0f} ms", where, status, agent,
                     (time.monotonic() - started) * 1000)
        return httpx.Response(status, headers=_target_headers(meta.get("headers")), content=content,
                              extensions={"scraping_agent": agent})


def _is_status(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599


def _agent(meta: dict[str, Any]) -> str:
    agent = meta.get("agent")
    ident = agent.get("id") if isinstance(agent, dict) else None
    return truncate(ident, 64) if isinstance(ident, str) else "?"


def _target_headers(headers: object) -> list[tuple[str, str]]:
    """`meta.headers` as header pairs, less what no longer describes the decoded body; a name
    with a list of values gives one pair per value; anything else is skipped."""
    if not isinstance(headers, dict):
        return []
    out: list[tuple[str, str]] = []
    for name, value in headers.items():
        if not isinstance(name, str) or name.lower() in _DECODED:
            continue
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str | int | float) and not isinstance(item, bool):
                out.append((name, str(item)))
    return out


def _dump_json(value: object) -> bytes:
    """`raw_json` back as JSON text; the standard library takes what orjson will not (integers
    beyond 64 bits)."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value).encode()


def _detail(api: httpx.Response) -> str:
    """The `detail` of an error answer (Error Handling > Error response format), or its text."""
    try:
        body = orjson.loads(api.content)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        return truncate(body["detail"], 200)
    return truncate(api.content, 200)


def transport_for(options: HttpTransportOptions, relay: ScrapingRelay | None) -> ScrapingTransport | None:
    """The transport a feed's config asks for: None (httpx's own, direct) or one through `relay`
    with the feed's geo / agent overrides."""
    if options.transport == "direct":
        return None
    if relay is None:
        raise ValueError("config error: scraping.api_key: not set but a feed has transport: scraping; "
                         "fix: set BOT_SCRAPING__API_KEY")
    return relay.transport(geo=options.scraping_geo, agent=options.scraping_agent)
