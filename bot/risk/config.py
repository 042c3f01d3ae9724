"""Config of the risk manager (`risk:` in config.yaml). Amounts in the order currency; exposure
is worst-case loss (back: stake; lay: (price - 1) x stake), open bets plus in-flight orders."""

from __future__ import annotations

from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from bot.config.base import Section


class BreakerConfig(Section):
    """A circuit breaker: opens after `max_consecutive_failures` failures in a row, or when at
    least `min_samples` outcomes in the last `window_seconds` have an error rate >= `error_rate`;
    after `cooldown_seconds` one probe order is allowed (half-open)."""

    max_consecutive_failures: int = Field(5, ge=1)
    error_rate: float = Field(0.5, gt=0, le=1)
    window_seconds: float = Field(300.0, gt=0)
    min_samples: int = Field(10, ge=1)
    cooldown_seconds: float = Field(60.0, gt=0)


class RiskConfig(Section):
    min_stake: Decimal = Field(Decimal(1), ge=0)
    max_stake: Decimal = Field(Decimal(100), gt=0)
    min_price: float = Field(1.01, gt=1.0)
    max_price: float = Field(20.0, gt=1.0)
    max_exposure_selection: Decimal = Field(Decimal(200), gt=0)
    max_exposure_fixture: Decimal = Field(Decimal(500), gt=0)
    max_exposure_bookmaker: Decimal = Field(Decimal(2000), gt=0)
    max_exposure_strategy: Decimal = Field(Decimal(5000), gt=0)
    max_exposure_total: Decimal = Field(Decimal(10000), gt=0)
    daily_loss_limit: Decimal = Field(Decimal(1000), gt=0)
    max_drawdown: Decimal = Field(Decimal(2000), gt=0)
    day_timezone: str = "UTC"
    resize_to_fit: bool = Field(
        True, description="shrink a stake above max_stake or an exposure cap to what fits"
    )
    max_orders_per_window: int = Field(30, ge=1, description="approvals per strategy per window")
    rate_window_seconds: float = Field(60.0, gt=0)
    block_while_in_flight: bool = Field(
        True,
        description="DUPLICATE_SIGNAL while the same strategy has an order in flight on the same "
        "selection, side and bookmakers",
    )
    reservation_ttl_seconds: float = Field(
        120.0, gt=0, description="release an approval that never became a ledger order after this"
    )
    bookmaker_breaker: BreakerConfig = BreakerConfig()
    global_breaker: BreakerConfig = BreakerConfig(max_consecutive_failures=20, min_samples=30)

    @field_validator("day_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name like 'Europe/London')") from None
        return value
