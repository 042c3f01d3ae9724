"""Config of the 55-Tech MM API link (`mm:` in config.yaml): read-only REST and the WebSocket
(55-Tech docs, "MM API Overview", "MM Authentication", "MM WebSocket"; our notes in
docs/reference/mm.md).

Off by default. With `enabled` the bot subscribes to the MM `emergency` channel (an MM emergency
halts or reduces like ABP's, `risk.emergency_action`); `combined_exposure` adds the MM's positions
and open orders to the fixture and bookmaker exposure caps (stale data rejects MM_STALE);
`cancel_all_on_kill` sends `POST /api/v1/orders/cancel-all` when the kill switch fires.
"""

from __future__ import annotations

from pydantic import Field, SecretStr

from bot.config.base import Section

MAX_REQUESTS_PER_MINUTE = 100  # MM docs, Authentication > Rate limiting ("REST API: 100 requests per minute")
MAX_WS_CONNECTIONS = 5  # MM docs, WebSocket > Connection limits ("Max connections per API key: 5")


class MmConfig(Section):
    """55-Tech MM API (docs/reference/mm.md)."""

    enabled: bool = Field(False, description="Connect to the MM API (read-only; the MM engine places its own orders)")
    api_key: SecretStr | None = Field(None, description="MM client API key (a UUID), sent as X-API-Key")
    base_url: str = "https://mmapi.55-tech.com"
    ws_url: str = "wss://mmapi.55-tech.com/ws/subscribe"
    combined_exposure: bool = Field(
        False, description="Add MM positions and open orders (per fixture, per bookmaker) to the exposure caps")
    cancel_all_on_kill: bool = Field(
        False, description="The kill switch also calls POST /api/v1/orders/cancel-all on MM")
    emergency: bool = Field(True, description="Subscribe to the MM `emergency` channel; an MM emergency drives risk")
    poll_interval_seconds: float = Field(
        15.0, ge=1, description="How often positions and open orders are polled (2 requests per poll)")
    stale_after_seconds: float = Field(
        60.0, gt=0, description="Older MM exposure data rejects signals MM_STALE (combined_exposure only)")
    currency: str = Field("USD", min_length=3, max_length=3,
                          description="Currency of MM amounts (not documented; converted to execution.currency)")
    timeout_seconds: float = Field(10.0, gt=0)
    requests_per_minute: int = Field(
        MAX_REQUESTS_PER_MINUTE, ge=1, le=MAX_REQUESTS_PER_MINUTE,
        description="Client-side budget; the documented limit is 100/min per key")
    max_attempts: int = Field(3, ge=1, description="Tries per request on 5xx and timeouts (never on 4xx)")
    backoff_initial_seconds: float = Field(1.0, gt=0, description="Backoff 1, 2, 4 s... (MM docs, Errors > Rate limiting)")
    backoff_max_seconds: float = Field(60.0, gt=0)
    cancel_attempts: int = Field(4, ge=1, description="Tries of cancel-all on the kill switch, 429 included")
    ws_subscribe_timeout_seconds: float = Field(
        10.0, gt=0, le=30, description="Wait for `subscribed` (the server closes after 30 s without a subscribe)")
    ws_ping_seconds: float = Field(30.0, gt=0, description="Client ping interval (30 s recommended)")
    ws_dead_after_seconds: float = Field(
        150.0, gt=0, description="No frame for this long (the server heartbeats every 60 s): reconnect")
    ws_reconnect_initial_seconds: float = Field(1.0, gt=0)
    ws_reconnect_max_seconds: float = Field(60.0, gt=0)
