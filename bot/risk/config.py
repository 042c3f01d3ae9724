"""Config of the risk manager (`risk:` in config.yaml). Amounts in the order currency; exposure
is worst-case loss (back: stake; lay: (price - 1) x stake), open bets plus open orders
(docs/architecture.md, "Risk"); `max_exposure_market` caps the market's worst case over its
outcomes instead, where a lay offsets a back (bot/risk/market.py).

`checks` is the ordered list of checks a signal must pass (bot/risk/checks.py): the built-in
ones by name (DEFAULT_CHECKS, each named after its reason code) and a user's own as
`package.module:Class` or `file.py:Class`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from bot.config.base import Section

# The built-in checks in their default order (docs/architecture.md, "Risk").
DEFAULT_CHECKS: tuple[str, ...] = (
    "emergency", "kill_switch", "trading_halted", "loss_limit", "drawdown", "reducing_only", "unmapped",
    "bookmaker_unavailable", "invalid_signal", "signal_expired", "odds_out_of_range", "stake_below_min", "stake_above_max",
    "suspended", "price_stale", "price_moved", "duplicate_signal", "breaker_open", "rate_limit",
    "exposure_selection", "exposure_fixture", "exposure_market", "exposure_bookmaker", "exposure_strategy",
    "exposure_total",
)


def is_class_path(name: str) -> bool:
    """`package.module:Class` or `file.py:Class` (resolved at start-up, not at config load)."""
    module, _, attr = name.rpartition(":")
    return bool(module.strip()) and attr.isidentifier()


def checks_problem(names: list[str]) -> str | None:
    """The first problem of a `risk.checks` list as one line naming the entry, or None."""
    for i, name in enumerate(names):
        if name in names[:i]:
            return f"risk.checks[{i}]: check {name!r} is listed twice"
        if name not in DEFAULT_CHECKS and not is_class_path(name):
            known = ", ".join(DEFAULT_CHECKS)
            return (f"risk.checks[{i}]: unknown check {name!r} (known: {known}; "
                    "or a class as package.module:Class or file.py:Class)")
    return None


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
    max_exposure_market: Decimal | None = Field(
        None, gt=0,
        description="cap on a market's worst-case loss over its outcomes, backs and lays netted, pending "
        "counted where it hurts (bot/risk/market.py); None: off",
    )
    max_exposure_bookmaker: Decimal = Field(Decimal(2000), gt=0)
    max_exposure_strategy: Decimal = Field(Decimal(5000), gt=0)
    max_exposure_total: Decimal = Field(Decimal(10000), gt=0)
    daily_loss_limit: Decimal = Field(Decimal(1000), gt=0)
    emergency_action: Literal["halt", "reduce"] = Field(
        "halt", description="What a venue emergency does at once: halt (cancel pending orders) or reduce only")
    emergency_resume: Literal["operator", "auto"] = Field(
        "operator", description="After the emergency clears: wait for an operator resume, or resume by itself")
    max_drawdown: Decimal = Field(Decimal(2000), gt=0)
    day_timezone: str = "UTC"
    resize_to_fit: bool = Field(
        True, description="shrink a stake above max_stake or an exposure cap to what fits"
    )
    max_orders_per_window: int = Field(30, ge=1, description="approvals per strategy per window")
    rate_window_seconds: float = Field(60.0, gt=0)
    duplicate_window_seconds: float = Field(
        86400.0, ge=0,
        description="DUPLICATE_SIGNAL for a signal whose strategy, selection, side, bookmakers and price an "
        "earlier run acted on within this window (restored from the ledger at start)",
    )
    block_while_in_flight: bool = Field(
        True,
        description="DUPLICATE_SIGNAL while the same strategy has an order in flight on the same "
        "selection, side and bookmakers",
    )
    reservation_ttl_seconds: float = Field(
        120.0, gt=0, description="release an approval that never became a ledger order after this"
    )
    checks: list[str] = Field(
        default_factory=lambda: list(DEFAULT_CHECKS),
        description="ordered checks: built-in names and user classes (package.module:Class, file.py:Class)",
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

    @field_validator("checks")
    @classmethod
    def _known_checks(cls, names: list[str]) -> list[str]:
        problem = checks_problem(names)
        if problem is not None:
            # a custom error: the line reads as written, without pydantic's "Value error," prefix
            raise PydanticCustomError("unknown_check", problem)
        return names
