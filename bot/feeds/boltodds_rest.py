"""BoltOdds REST discovery: `get_info`, `get_games`, `get_markets` (BoltOdds docs, Quick Start >
Step 3; docs/reference/boltodds.md §1, §8), and the filter check that warns about names the
feed would silently ignore.

The key travels in the query string (the API's only auth) and is never logged. Requests are
rate-limited to 12 per minute, the reported per-IP limit (docs/reference/boltodds.md §1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Self

import httpx
from aiolimiter import AsyncLimiter
from loguru import logger

from bot.feeds.base import truncate
from bot.feeds.config import BoltOddsConfig


class BoltOddsRestError(RuntimeError):
    """A discovery request failed (network, HTTP status or a non-JSON body)."""


class BoltOddsRest:
    """Async client of the three discovery endpoints. Use as an async context manager or call
    `aclose`."""

    def __init__(self, config: BoltOddsConfig, client: httpx.AsyncClient | None = None) -> None:
        self._base = config.rest_url.rstrip("/")
        self._key = config.api_key
        self._client = client or httpx.AsyncClient(timeout=20.0)
        self._limiter = AsyncLimiter(12, 60)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _get(self, endpoint: str, **params: str) -> Any:
        query = {"key": self._key.get_secret_value(), **params}
        async with self._limiter:
            try:
                response = await self._client.get(f"{self._base}/{endpoint}", params=query)
                response.raise_for_status()
                return response.json()
            except httpx.HTTPStatusError as exc:
                raise BoltOddsRestError(f"{endpoint}: HTTP {exc.response.status_code}") from None
            except (httpx.HTTPError, ValueError) as exc:
                raise BoltOddsRestError(f"{endpoint}: {type(exc).__name__}: {exc}") from None

    async def get_info(self) -> dict[str, list[str]]:
        """`{"sports": [...], "sportsbooks": [...]}`: the exact names the filters accept.

        Raises:
            BoltOddsRestError: the request failed.
        """
        return await self._get("get_info")

    async def get_games(self, sports: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
        """Game string -> `{"universal_id", "game", "when", "orig_teams", ...}`.

        Raises:
            BoltOddsRestError: the request failed.
        """
        return await self._get("get_games", **({"sports": ",".join(sports)} if sports else {}))

    async def get_markets(
        self, sports: Sequence[str] | None = None, sportsbooks: Sequence[str] | None = None
    ) -> dict[str, dict[str, list[str]]]:
        """`{sportsbook: {sport: [market name, ...]}}`, optionally narrowed.

        Raises:
            BoltOddsRestError: the request failed.
        """
        params = {}
        if sports:
            params["sports"] = ",".join(sports)
        if sportsbooks:
            params["sportsbooks"] = ",".join(sportsbooks)
        return await self._get("get_markets", **params)


async def unknown_filters(config: BoltOddsConfig, rest: BoltOddsRest) -> list[str]:
    """One line per configured filter name that the API does not list (the feed would ignore
    it silently; BoltOdds docs, Quick Start > Step 3: "Any deviation will be ignored"). Games are checked
    against `get_games` only when a games filter is set.

    Raises:
        BoltOddsRestError: a discovery request failed, or answered in a shape these checks do
            not know (the feed logs it and streams on).
    """
    problems: list[str] = []
    info = _shaped(await rest.get_info(), "get_info", "{field: [name, ...]}",
                   lambda d: all(isinstance(v, list) for v in d.values()))
    for field in ("sports", "sportsbooks"):
        known = set(info.get(field, []))
        problems += [f"{field}: {name!r} is not offered (get_info)" for name in getattr(config, field) if name not in known]
    if config.markets:
        listing = _shaped(await rest.get_markets(config.sports or None, config.sportsbooks or None), "get_markets",
                          "{sportsbook: {sport: [market, ...]}}", lambda d: all(
                              isinstance(s, dict) and all(isinstance(n, list) for n in s.values()) for s in d.values()))
        known = {m for sports in listing.values() for names in sports.values() for m in names}
        problems += [f"markets: {name!r} is not offered (get_markets)" for name in config.markets if name not in known]
    if config.games:
        games = _shaped(await rest.get_games(config.sports or None), "get_games", "{game: {...}}", lambda d: True)
        problems += [f"games: {name!r} is not listed (get_games)" for name in config.games if name not in games]
    for line in problems:
        logger.warning("boltodds filter ignored by the feed: {}", line)
    return problems


def _shaped(answer: Any, endpoint: str, shape: str, fits: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """`answer` if it is a dict that `fits`; else BoltOddsRestError naming the endpoint and the
    shape expected (docs/reference/boltodds.md), with the start of what came."""
    if isinstance(answer, dict) and fits(answer):
        return answer
    raise BoltOddsRestError(f"{endpoint}: unexpected answer shape (expected {shape}): {truncate(answer)}")
