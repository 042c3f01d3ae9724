"""A user's own risk check, written as a user would (bot/risk/checks.py shows the interface):
no longshots at night. Listed in `risk.checks` as `<path>/night_check.py:MaxOddsAtNight`."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from bot.risk.checks import Candidate, Check

NEW_YORK = ZoneInfo("America/New_York")
MAX_NIGHT_PRICE = 4.0


class MaxOddsAtNight(Check):
    """Reject decimal odds above 4.0 from 22:00 to 09:00 New York time (engine clock)."""

    reason = "MAX_ODDS_AT_NIGHT"

    def check(self, candidate: Candidate) -> None:
        hour = self.ctx.clock.now().astimezone(NEW_YORK).hour
        if (hour >= 22 or hour < 9) and candidate.signal.price > MAX_NIGHT_PRICE:
            self.reject(price=candidate.signal.price, hour=hour, max_price=MAX_NIGHT_PRICE)
