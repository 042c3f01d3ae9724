"""The normalised odds payload any external scraper can publish (docs/mqtt.md, "Odds in").

One message is one JSON object or a JSON array of them. Field names follow bot.types: `sport`
is the league label ("NFL"), `market` is moneyline / spread / total / ... with `line` the
HOME handicap for spreads and the points for totals (bot.types.MarketKey), `outcome` is home /
away / draw / over / under (or a prop target), `price` is decimal odds and `american` American
odds (either one; both may be given), times are ISO 8601 with a UTC offset.

Numbers are range-checked against the bounds every feed uses (docs/architecture.md, "Invariants >
Nothing lost, nothing silent"): `price` finite with PRICE_MIN <= price <= PRICE_MAX and `american`
with 100 <= |american| <= AMERICAN_MAX (`bot.market.odds`); `line` finite within +-LINE_MAX
(`bot.feeds.normalise`). An item outside them is refused alone (`OddsPayloadError`
naming the field), as any other invalid item.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.feeds.normalise import check_line
from bot.market.odds import OddsError, american_to_decimal, feed_american, feed_decimal
from bot.types import FixtureKey, MarketKey, OddsUpdate, Selection

_OUTCOMES = {
    "moneyline": {"home", "away", "draw"},
    "spread": {"home", "away"},
    "total": {"over", "under"},
}
_NEEDS_LINE = {"spread", "total"}


class OddsPayloadError(ValueError):
    """A payload item cannot become an OddsUpdate; the message says which field and why."""


class OddsIn(BaseModel):
    """Schema version 1 of one odds message item."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    v: Literal[1] = 1
    source: str | None = Field(None, description="the scraper's own name (kept in feed_ids.origin)")
    bookmaker: str = Field(min_length=1)
    sport: str = Field(min_length=1)
    home: str = Field(min_length=1)
    away: str = Field(min_length=1)
    start_time: AwareDatetime
    market: str = Field(min_length=1)
    period: str = Field("game", min_length=1)
    line: Decimal | None = None
    outcome: str = Field(min_length=1)
    price: float | None = Field(None, gt=1.0, allow_inf_nan=False)
    american: int | None = None
    suspended: bool = False
    feed_time: AwareDatetime | None = None
    feed_ids: dict[str, str] = {}

    @field_validator("price")
    @classmethod
    def _plausible_price(cls, price: float | None) -> float | None:
        if price is not None:
            try:
                feed_decimal(price)
            except OddsError as exc:
                raise ValueError(str(exc)) from None
        return price

    @field_validator("american")
    @classmethod
    def _plausible_american(cls, american: int | None) -> int | None:
        if american is not None:
            try:
                feed_american(american)
            except OddsError as exc:
                raise ValueError(str(exc)) from None
        return american

    @field_validator("line")
    @classmethod
    def _plausible_line(cls, line: Decimal | None) -> Decimal | None:
        return None if line is None else check_line(line)

    @model_validator(mode="after")
    def _consistent(self) -> OddsIn:
        allowed = _OUTCOMES.get(self.market)
        if allowed is not None and self.outcome.lower() not in allowed:
            raise ValueError(f"outcome {self.outcome!r} is not one of {sorted(allowed)} for {self.market}")
        if self.market in _NEEDS_LINE and self.line is None:
            raise ValueError(f"a {self.market} market needs a line")
        if self.american is not None and -100 < self.american < 100:
            raise ValueError("american odds must be <= -100 or >= +100")
        if not self.suspended and self.price is None and self.american is None:
            raise ValueError("price or american is required unless suspended")
        return self

    def to_update(self, source: str, received_at: datetime) -> OddsUpdate:
        outcome = self.outcome.lower() if self.market in _OUTCOMES else self.outcome
        fixture = FixtureKey(self.sport, self.home, self.away, self.start_time.astimezone(UTC))
        price = self.price
        if price is None and self.american is not None:
            price = american_to_decimal(self.american)
        feed_ids = dict(self.feed_ids)
        if self.source:
            feed_ids["origin"] = self.source
        return OddsUpdate(
            source=source,
            bookmaker=self.bookmaker,
            selection=Selection(fixture, MarketKey(self.market, self.period, self.line), outcome),
            price=None if self.suspended else price,
            american=self.american,
            suspended=self.suspended,
            feed_time=(self.feed_time or received_at).astimezone(UTC),
            received_at=received_at,
            feed_ids=feed_ids,
        )


def decode_item(item: Any, *, source: str, received_at: datetime) -> OddsUpdate:
    """One payload item (a decoded JSON value) as an OddsUpdate. Raises OddsPayloadError."""
    try:
        parsed = OddsIn.model_validate(item)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '<item>'}: {e['msg']}" for e in exc.errors()
        )
        raise OddsPayloadError(problems) from None
    return parsed.to_update(source, received_at)
