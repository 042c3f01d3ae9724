"""Config of execution: the ABP venue, the paper venue and the executor."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field, SecretStr, field_validator

from bot.config.base import Section


class AbpConfig(Section):
    """55-Tech ABP connection (docs/reference/abp.md §1-§2)."""

    base_url: str = "https://v2.55-tech.com"
    ws_url: str = "wss://v2.55-tech.com/ws"
    api_key: SecretStr | None = None
    timeout_seconds: float = Field(10.0, gt=0)
    place_timeout_seconds: float = Field(
        3.0, gt=0, description="Client timeout of POST /place-orders; must be shorter than execution.expiry_seconds "
        "so a lost answer is looked up while the order can still be resent")
    requests_per_second: float = Field(1.0, gt=0, description="Client-side pacing (R1: 60/min)")
    order_lane: bool = Field(
        True, description="POST /place-orders on the bot's own keep-alive connections (h11; ~0.6 ms less per "
        "placement than httpx, bot/execution/order_lane.py); false: through httpx like every other request. "
        "Off by itself when the environment names a proxy for base_url")
    max_attempts: int = Field(5, ge=1, description="Tries per request on 429 and, where safe, 5xx/timeouts")
    backoff_initial_seconds: float = Field(1.0, gt=0, description="Backoff 1, 2, 4 s... (docs/reference/abp.md §2)")
    backoff_max_seconds: float = Field(30.0, gt=0)
    page_limit: int = Field(500, ge=1, le=1000, description="Keyset page size for /orders and /bets")
    ws_channels: tuple[str, ...] = (
        "orders", "bets", "settlements", "balance", "betslip", "emergency", "status", "currencies")
    ws_reliable_delivery: bool = True
    ws_ping_seconds: float = Field(30.0, gt=0, description="Own ping interval (docs/reference/abp.md §13.4)")
    ws_login_timeout_seconds: float = Field(30.0, gt=0)
    ws_reconnect_initial_seconds: float = Field(1.0, gt=0)
    ws_reconnect_max_seconds: float = Field(30.0, gt=0)
    ws_dead_after_seconds: float = Field(
        90.0, gt=0, description="Stream counted dead (reconnect) after this long without any frame; the server "
        "pings every 30 s (ABP docs, WebSocket > Keep alive)")
    ws_gap_wait_seconds: float = Field(
        5.0, gt=0, description="How long a seq gap waits for `replay` to fill it before REST recovery")
    emergency_wait_seconds: float = Field(
        10.0, ge=0, description="After a (re)connect orders wait this long for an emergency/status frame; ABP "
        "sends emergency only on a change, so afterwards the state is taken as clear (docs/architecture.md)")
    status_endpoint: bool = Field(
        False, description="Also ask GET /status for the emergency state (not in the ABP documents; off by default)")
    bookmakers: dict[str, str] = Field(
        default_factory=dict, description="Feed bookmaker slug -> ABP slug, on top of the built-in map "
        "(bot/execution/bookmakers.py); a feed book with no ABP slug is not reachable")
    check_bookmakers: bool = Field(
        True, description="Load GET /bookmakers and GET /accounts at start; signals naming no reachable book "
        "are rejected BOOKMAKER_UNAVAILABLE")
    recovery_interval_seconds: float = Field(
        300.0, gt=0, description="REST recovery (GET /orders, GET /bets) this often, and after every reconnect or gap")
    recovery_days: int = Field(7, ge=1, le=90, description="Bets of orders created this many days back are recovered")


class PaperConfig(Section):
    """The in-process paper venue (follows ABP semantics, docs/reference/abp.md §8)."""

    default_max_stake: float = Field(1000.0, gt=0)
    default_min_stake: float = Field(1.0, ge=0)
    dedup_window_seconds: float = Field(1800.0, gt=0, description="requestUuid window (docs/reference/abp.md §8.4)")
    commission: dict[str, Decimal] = Field(
        default_factory=dict,
        description="bookmaker -> commission rate on net market winnings (0.05 = 5 %), charged once per market "
        "and bookmaker when it settles (bot/execution/commission.py); e.g. {betfair-ex: 0.05}",
    )

    @field_validator("commission")
    @classmethod
    def _rates_are_fractions(cls, rates: dict[str, Decimal]) -> dict[str, Decimal]:
        for book, rate in rates.items():
            if not 0 <= rate < 1:
                raise ValueError(f"commission rate of {book!r} must be a fraction in [0, 1), got {rate}")
        return rates


class ExecutionConfig(Section):
    currency: str = "USD"
    expiry_seconds: float = Field(5.0, gt=0, le=86400, description="ABP default is 5 s")
    accept_better_odds: bool = True
    accept_partial_stake: bool = True
    test_orders: bool = False
    cancel_on_shutdown: bool = True
    max_batch: int = Field(100, ge=1, le=100)
    reconcile_interval_seconds: float = Field(
        5.0, gt=0, description="How often orders not final (UNKNOWN, SENT, PENDING...) are re-queried"
    )
    unknown_grace_seconds: float = Field(
        60.0, gt=0, description="An order the venue does not know is closed EXPIRED only when a lookup made this "
        "long after its expiresAt still does not find it (no order is closed without the venue's word)")
    resend_window_seconds: float = Field(
        300.0,
        gt=0,
        description="Resend a lost placement (same requestUuid) only this long after the first try "
        "(docs/reference/abp.md §8.4: assume 5 min)",
    )
