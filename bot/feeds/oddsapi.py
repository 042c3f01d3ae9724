"""The Odds API v4 polling feed: `GET /v4/sports/{sport}/odds` on a schedule that stays within
the account's request quota, each response diffed against the previous one
(`bot/feeds/oddsapi_decode.py`).

Quota: every response carries `x-requests-remaining` and `x-requests-last` (the cost of that
call: markets x regions). The next poll waits `poll_seconds`, or longer when the remaining
requests would not last until the quota resets (taken as the start of the next UTC month);
at or below `requests_reserve` it stops polling until then. HTTP 429 doubles the wait.

Each response is emitted as one complete `OddsBatch` (the differ's), so the book takes the whole
board before any strategy runs (docs/architecture.md, Pipeline).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
from loguru import logger

from bot.clock import Clock
from bot.feeds.base import EmitFn, FeedStats, truncate
from bot.feeds.config import OddsApiConfig
from bot.feeds.oddsapi_decode import SOURCE, OddsApiDiffer
from bot.feeds.recording import Recorder
from bot.types import FeedStatus


def next_quota_reset(now: datetime) -> datetime:
    """Start of the next calendar month (UTC), when a monthly quota renews."""
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


class OddsApiFeed:
    """Polls The Odds API until cancelled; see the module docstring. `stats` counts polls,
    updates and errors; `requests_remaining` is the last quota figure seen."""

    name = SOURCE

    def __init__(self, config: OddsApiConfig, clock: Clock, client: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self.clock = clock
        self.stats = FeedStats(SOURCE)
        self._differ = OddsApiDiffer(SOURCE, config.odds_format, self.stats)
        self._client = client or httpx.AsyncClient(timeout=config.timeout_seconds)
        self._recorder = Recorder(config.record_to) if config.record_to else None
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

    async def run(self, emit: EmitFn) -> None:
        """Poll until cancelled."""
        try:
            while True:
                await asyncio.sleep(await self.poll_once(emit))
        finally:
            if self._recorder:
                self._recorder.close()
            await self._client.aclose()

    async def poll_once(self, emit: EmitFn) -> float:
        """One request; emits its events. Returns the seconds to wait before the next one."""
        url = f"{self.config.base_url.rstrip('/')}/v4/sports/{self.config.sport}/odds"
        self.stats["polls"] += 1
        try:
            response = await self._client.get(url, params=self._params)
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
            self._recorder.write(received, SOURCE, response.text)
        try:
            body = response.json()
        except ValueError:
            self.stats.bad("malformed_json", "response body is not JSON", response.text)
            return self._next_delay(received)
        for event in self._differ.snapshot(body, received):
            await emit(event)
        return self._next_delay(received)

    async def _failed(self, emit: EmitFn, detail: str, kind: str) -> float:
        self.stats[kind] += 1
        logger.warning("oddsapi: poll failed: {}", detail)
        # Not stale: the prices age out on the book's clock if polls keep failing.
        await emit(FeedStatus(SOURCE, self.clock.now(), connected=False, stale=False, detail=detail[:120]))
        return self.config.poll_seconds

    def _read_quota(self, response: httpx.Response) -> None:
        remaining = response.headers.get("x-requests-remaining")
        try:
            self.requests_remaining = int(float(remaining)) if remaining is not None else None
        except ValueError:
            self.requests_remaining = None
        self._cost = self._cost_of(response)

    def _cost_of(self, response: httpx.Response) -> int:
        try:
            return max(1, int(float(response.headers.get("x-requests-last", ""))))
        except ValueError:
            regions = 1 if self.config.bookmakers else len(self.config.regions)
            return max(1, len(self.config.markets) * regions)

    def _next_delay(self, now: datetime) -> float:
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
