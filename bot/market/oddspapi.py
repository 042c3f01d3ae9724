"""OddsPapi v5 fixture lookup by teams and start time (docs/reference/oddspapi.md §5).

Used by the instrument mapper when an OddsPapi key is configured: `GET /fixtures` with
`startTimeFrom` / `startTimeTo` (epoch seconds) around the feed's kickoff, matched on both
participant names by role: participant 1 is not always the home team (docs/reference/oddspapi.md
§1), so the answer says whether they are rotated (participant 1 = our away team), which the
mapper uses to pick the outcome and the handicap's side. Only an exact, unique match is accepted:
never guess a fixture.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from pydantic import SecretStr

from bot.types import FixtureKey

WINDOW = timedelta(hours=36)


def _norm(name: str) -> str:
    return " ".join(name.lower().replace(".", " ").split())


class OddsPapiFixtures:
    """`lookup(fixture) -> (fixtureId, rotated) | None`. Raises httpx errors on transport failure
    (the mapper logs them and retries on the next signal)."""

    def __init__(self, base_url: str, api_key: SecretStr, *, timeout: float = 10.0) -> None:
        self._base = base_url.rstrip("/")
        self._key = api_key
        self._timeout = timeout

    async def lookup(self, fixture: FixtureKey) -> tuple[str, bool] | None:
        params: dict[str, str | int] = {
            "apiKey": self._key.get_secret_value(),
            "startTimeFrom": int((fixture.start_time - WINDOW).timestamp()),
            "startTimeTo": int((fixture.start_time + WINDOW).timestamp()),
        }
        async with httpx.AsyncClient(timeout=self._timeout) as client:
            response = await client.get(f"{self._base}/fixtures", params=params)
            response.raise_for_status()
            rows: list[dict[str, Any]] = response.json()
        home, away = _norm(fixture.home), _norm(fixture.away)
        matches = {(str(row["fixtureId"]), _names(row) == (away, home)) for row in rows
                   if "fixtureId" in row and _names(row) in ((home, away), (away, home))}
        return matches.pop() if len(matches) == 1 else None  # none, or ambiguous: never guess


def _names(row: dict[str, Any]) -> tuple[str, str]:
    """(participant 1, participant 2), normalised. Flat (OddsPapi v4 traffic) or nested under
    `participants` (ABP fixtureInfo, docs/reference/oddspapi.md §7)."""
    nested = row.get("participants")
    holder: dict[str, Any] = nested if isinstance(nested, dict) else row
    return _norm(str(holder.get("participant1Name", ""))), _norm(str(holder.get("participant2Name", "")))
