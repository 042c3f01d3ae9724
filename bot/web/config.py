"""Config of the web dashboard, HTTP API and metrics endpoint (`web:` in config.yaml).

Disabled unless `enabled: true`; then `token` is required (env `BOT_WEB__TOKEN`): every `/api/`
route needs `Authorization: Bearer <token>`, and so does `/metrics` unless `metrics_public: true`.
`/health/live`, `/health/ready` and the page itself need no token. Bind to loopback by default:
the API can halt trading, so expose it beyond the host only behind TLS (a reverse proxy).
"""

from __future__ import annotations

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from bot.config.base import Section


class WebConfig(Section):
    enabled: bool = False
    host: str = Field("127.0.0.1", min_length=1, description="interface to listen on")
    port: int = Field(8080, ge=0, le=65535, description="TCP port; 0 = any free port")
    metrics_public: bool = Field(False, description="serve /metrics without the token (for scrapers)")
    events_interval_s: float = Field(1.0, gt=0, le=60, description="period of the status pushed on /api/events")
    auth_failures_per_minute: int = Field(
        30, ge=1, description="failed authentications per client address in a minute before it gets 429s "
        "for the rest of that minute (behind a reverse proxy every client shares the proxy's address)",
    )
    max_event_streams: int = Field(16, ge=1, description="concurrent /api/events streams; more get 503")
    token: SecretStr | None = Field(
        None, validate_default=True,
        description="bearer token of the API and the dashboard (required when enabled)",
    )

    @field_validator("token")
    @classmethod
    def _enabled_needs_token(cls, token: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if token is not None and not token.get_secret_value().strip():
            token = None
        if token is None and info.data.get("enabled"):
            raise PydanticCustomError(
                "missing", "web.token is required while web.enabled is true: set BOT_WEB__TOKEN"
            )
        return token
