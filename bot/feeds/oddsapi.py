"""The Odds API v4 polling feed: `GET /v4/sports/{sport}/odds` on a schedule that stays within
the account's request quota, each response diffed against the previous one
(`bot/feeds/oddsapi_decode.py`).

Quota: every response carries `x-requests-remaining` and `x-requests-last` (the cost of that
call: markets x regions). The next poll waits `poll_seconds`, or longer when the remaining
requests would not last until the quota resets (taken as the start of the next UTC month);
at or below `requests_reserve` it stops polling until then. HTTP 429 doubles the wait.

The quota headers are range-checked like every number a feed reads (docs/architecture.md,
"Invariants > Nothing lost, nothing silent"): `x-requests-remaining` must be a whole number in
[0, QUOTA_MAX] and `x-requests-last` one in [0, COST_MAX]. A header that is not (`inf`, `nan`,
`-5`, `1e30`, garbage) is counted as "bad_header", logged, and treated as absent: the quota is
then unknown and the next poll waits `poll_seconds` (an unreadable cost is estimated as markets x
regions). A poison header never pauses polling until the next month nor stops the loop.

`run` can be called again after it ended (the engine restarts a live feed that failed): it opens
a fresh HTTP client and recorder when the previous run closed them. A response the differ
cannot handle (a bug, not bad input, which the differ counts itself) is logged with its
traceback and counted as "decoder_error"; polling goes on.

Each response is emitted as one complete `OddsBatch` (the differ's), so the book takes the whole
board before any strategy runs (docs/architecture.md, Pipeline).

`transport` (config `transport: scraping`) relays the polls through the 55-Tech Scraping API
(bot/feeds/scraping.py). Its errors are counted by their `kind` ("blocked",
"scraping_rate_limited", "scraping_gateway", ...); those that ask to back off double the wait,
like a 429 of The Odds API itself.
"""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime

import httpx
from loguru import logger

from bot.clock import Clock
from bot.feeds.base import EmitFn, FeedStats, truncate
from bot.feeds.config import OddsApiConfig
from bot.feeds.oddsapi_decode import SOURCE, OddsApiDiffer
from bot.feeds.recording import Recorder
from bot.feeds.scraping import ScrapingError
from bot.types import FeedStatus

QUOTA_MAX = 10**9  # x-requests-remaining above this is not a real monthly quota
COST_MAX = 10**6  # nor x-requests-last above this the cost of one call


def next_quota_reset(now: datetime) -> datetime:
    """Start of the next calendar month (UTC), when a monthly quota renews."""
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


class OddsApiFeed:
    """Polls The Odds API until cancelled; see the module docstring. `stats` counts polls,
    updates and errors; `requests_remaining` is the last quota figure seen."""

    name = SOURCE

    def __init__(self, config: OddsApiConfig, clock: Clock, client: httpx.AsyncClient | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self.clock = clock
        self.stats = FeedStats(SOURCE)
        self._differ = OddsApiDiffer(SOURCE, config.odds_format, self.stats)
        self._transport = transport
        self._client = client or self._new_client()
        self._recorder: Recorder | None = None
        self._open_recorder()
        self.requests_remaining: int | None = None
        self._cost = 1  # requests one poll uses (x-requests-last)
        self._backoff = 1.0

    @property
    def _params(self) -> dict[str, str]:
        c = self.config
        params = {
            "apiKey": c.api_key.get_secret_value(),
            "markets": ",".join(c.markets),
            "oddsFormat": c.odds_format,
            "dateFormat": "iso",
        }
        if c.bookmakers:  # the API takes bookmakers instead of regions
            params["bookmakers"] = ",".join(c.bookmakers)
        else:
            params["regions"] = ",".join(c.regions)
        return params

    def _new_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=self.config.timeout_seconds, transport=self._transport)

    def _open_recorder(self) -> None:
        if self.config.record_to and self._recorder is None:
            self._recorder = Recorder(self.config.record_to)

    async def run(self, emit: EmitFn) -> None:
        """Poll until cancelled (again after an earlier run ended: see the module docstring)."""
        if self._client.is_closed:
            self._client = self._new_client()
        self._open_recorder()
        try:
            while True:
                await asyncio.sleep(await self.poll_once(emit))
        finally:
            if self._recorder:
                self._recorder.close()
                self._recorder = None
            await self._client.aclose()

    async def poll_once(self, emit: EmitFn) -> float:
        """One request; emits its events. Returns the seconds to wait before the next one."""
        url = f"{self.config.base_url.rstrip('/')}/v4/sports/{self.config.sport}/odds"
        self.stats["polls"] += 1
        try:
            response = await self._client.get(url, params=self._params)
        except ScrapingError as exc:  # the relay's own failures, each counted by its kind
            if not exc.back_off:
                return await self._failed(emit, str(exc), exc.kind)
            self._backoff = min(self._backoff * 2, 64.0)
            return await self._failed(emit, str(exc), exc.kind) * self._backoff
        except httpx.HTTPError as exc:
            return await self._failed(emit, f"{type(exc).__name__}: {exc}", "http_error")
        received = self.clock.now()
        self._read_quota(response)
        if response.status_code == 429:
            self._backoff = min(self._backoff * 2, 64.0)
            return await self._failed(emit, "HTTP 429 rate limited", "rate_limited") * self._backoff
        if response.status_code != 200:
            return await self._failed(emit, f"HTTP {response.status_code}: {truncate(response.text)}", "http_error")
        self._backoff = 1.0
        if self._recorder:
            self._recorder.write(received, SOURCE, response.text, odds_format=self.config.odds_format)
        try:
            body = response.json()  # the standard library's reader: NaN / Infinity reach the range checks
        except (ValueError, RecursionError):
            self.stats.bad("malformed_json", "response body is not JSON", response.text)
            return self._next_delay(received)
        try:
            events = self._differ.snapshot(body, received)
        except Exception as exc:  # noqa: BLE001 - a differ bug must not end the feed
            self.stats["decoder_error"] += 1
            logger.opt(exception=exc).error("oddsapi: response could not be decoded ({}); body: {}",
                                            truncate(exc), truncate(response.text))
            return self._next_delay(received)
        for event in events:
            await emit(event)
        return self._next_delay(received)

    async def _failed(self, emit: EmitFn, detail: str, kind: str) -> float:
        self.stats[kind] += 1
        logger.warning("oddsapi: poll failed: {}", detail)
        # Not stale: the prices age out on the book's clock if polls keep failing.
        await emit(FeedStatus(SOURCE, self.clock.now(), connected=False, stale=False, detail=detail[:120]))
        return self.config.poll_seconds

    def _read_quota(self, response: httpx.Response) -> None:
        self.requests_remaining = self._header_count(response, "x-requests-remaining", QUOTA_MAX)
        cost = self._header_count(response, "x-requests-last", COST_MAX)
        if cost is None:
            regions = 1 if self.config.bookmakers else len(self.config.regions)
            cost = len(self.config.markets) * regions
        self._cost = max(1, cost)

    def _header_count(self, response: httpx.Response, name: str, limit: int) -> int | None:
        """The whole number in header `name` when it lies in [0, limit]; None when the header
        is absent, or (counted as "bad_header" and logged) not such a number."""
        text = response.headers.get(name)
        if text is None:
            return None
        value = _whole_number(text)
        if value is None or not 0 <= value <= limit:
            self.stats.bad("bad_header", f"{name} must be a whole number in [0, {limit}]", text)
            return None
        return value

    def _next_delay(self, now: datetime) -> float:
        """Seconds until the next poll: `poll_seconds`, or longer to make the remaining quota
        last until it resets (see the module docstring)."""
        remaining = self.requests_remaining
        if remaining is None:
            return self.config.poll_seconds
        until_reset = (next_quota_reset(now) - now).total_seconds()
        polls_left = (remaining - self.config.requests_reserve) // self._cost
        if polls_left <= 0:
            logger.error("oddsapi: {} requests left (reserve {}); pausing until the quota resets",
                         remaining, self.config.requests_reserve)
            return until_reset
        return max(self.config.poll_seconds, until_reset / polls_left)


def _whole_number(text: str) -> int | None:
    """`text` as an int when it spells a finite whole number ("497", "497.0", "4.97e2"), else
    None ("inf", "nan", "1.5", "abc", "")."""
    text = text.strip()
    if len(text) > 32:  # no real count is this long; bounds the parsing work
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return None
    return int(number) if math.isfinite(number) and number.is_integer() else None
