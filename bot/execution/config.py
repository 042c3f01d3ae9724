"""Config of execution: the ABP venue, the paper venue and the executor."""

from __future__ import annotations

from pydantic import Field, SecretStr

from bot.config.base import Section


class AbpConfig(Section):
    """55-Tech ABP connection (docs/reference/abp.md §1-§2)."""

    base_url: str = "https://v2.55-tech.com"
    ws_url: str = "wss://v2.55-tech.com/ws"
    api_key: SecretStr | None = None
    timeout_seconds: float = Field(10.0, gt=0)
    requests_per_second: float = Field(1.0, gt=0, description="Client-side pacing (R1: 60/min)")
    max_attempts: int = Field(5, ge=1, description="Tries per request on 429 and, where safe, 5xx/timeouts")
    backoff_initial_seconds: float = Field(1.0, gt=0, description="Backoff 1, 2, 4 s... (docs/reference/abp.md §2)")
    backoff_max_seconds: float = Field(30.0, gt=0)
    page_limit: int = Field(500, ge=1, le=1000, description="Keyset page size for /orders and /bets")
    ws_channels: tuple[str, ...] = ("orders", "bets", "settlements", "balance", "betslip", "emergency", "status")
    ws_reliable_delivery: bool = True
    ws_ping_seconds: float = Field(30.0, gt=0, description="Own ping interval (docs/reference/abp.md §13.4)")
    ws_login_timeout_seconds: float = Field(30.0, gt=0)
    ws_reconnect_initial_seconds: float = Field(1.0, gt=0)
    ws_reconnect_max_seconds: float = Field(30.0, gt=0)


class PaperConfig(Section):
    """The in-process paper venue (follows ABP semantics, docs/reference/abp.md §8)."""

    default_max_stake: float = Field(1000.0, gt=0)
    default_min_stake: float = Field(1.0, ge=0)
    dedup_window_seconds: float = Field(1800.0, gt=0, description="requestUuid window (docs/reference/abp.md §8.4)")


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
    resend_window_seconds: float = Field(
        300.0,
        gt=0,
        description="Resend a lost placement (same requestUuid) only this long after the first try "
        "(docs/reference/abp.md §8.4: assume 5 min)",
    )
