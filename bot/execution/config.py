"""Config of execution: the ABP venue, the paper venue and the executor."""

from __future__ import annotations

from pydantic import Field, SecretStr

from bot.configbase import Section


class AbpConfig(Section):
    """55-Tech ABP connection (reference/abp.md sections 1-2)."""

    base_url: str = "https://v2.55-tech.com"
    ws_url: str = "wss://v2.55-tech.com/ws"
    api_key: SecretStr | None = None
    timeout_seconds: float = Field(10.0, gt=0)
    requests_per_second: float = Field(1.0, gt=0, description="Client-side pacing (R1: 60/min)")


class PaperConfig(Section):
    """The in-process paper venue (follows ABP semantics, reference/abp.md section 8)."""

    default_max_stake: float = Field(1000.0, gt=0)
    default_min_stake: float = Field(1.0, ge=0)


class ExecutionConfig(Section):
    currency: str = "USD"
    expiry_seconds: float = Field(5.0, gt=0, le=86400, description="ABP default is 5 s")
    accept_better_odds: bool = True
    accept_partial_stake: bool = True
    test_orders: bool = False
    cancel_on_shutdown: bool = True
    max_batch: int = Field(100, ge=1, le=100)
