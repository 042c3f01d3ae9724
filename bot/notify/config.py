"""Config of the operator notifications (`notify:` in config.yaml; bot/notify/notifier.py).

    notify:
      urls: ["tgram://<bot token>/<chat id>", "json://hooks.example.com/bot"]  # apprise URLs
      kinds: {daily_pnl: false}          # every kind is on unless switched off here
      min_interval_seconds: 60           # per kind; more within it are folded into "N more"
      decline_burst: 20                  # that many rejected signals ...
      decline_window_seconds: 60         # ... within this window is one notification
      daily_summary_at: "23:55"          # local time of risk.day_timezone
      timeout_seconds: 10                # one delivery, and the drain at stop

The URLs hold tokens, so they are secrets: never logged, masked wherever they would appear.
"""

from __future__ import annotations

import re
from datetime import time

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_core import PydanticCustomError

from bot.config.base import Section
from bot.notify.events import KINDS

_HH_MM = re.compile(r"(\d{1,2}):(\d{2})")


def _all_kinds() -> dict[str, bool]:
    return dict.fromkeys(KINDS, True)


class NotifyConfig(Section):
    urls: list[SecretStr] = Field(
        default_factory=list,
        description="apprise URLs (tgram://, discord://, slack://, mailto://, json://host/path ...); none: off",
    )
    kinds: dict[str, bool] = Field(
        default_factory=_all_kinds, description="switch a kind off with `kind: false`; unnamed kinds stay on")
    min_interval_seconds: float = Field(
        60.0, ge=0, description="per kind: messages within this interval of the last sent are folded into 'N more'")
    decline_burst: int = Field(20, ge=1, description="rejected signals within decline_window_seconds that notify")
    decline_window_seconds: float = Field(60.0, gt=0)
    daily_summary_at: str = Field("23:55", description="HH:MM, local time of risk.day_timezone")
    timeout_seconds: float = Field(10.0, gt=0, description="one delivery, and the drain of the queue at stop")

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, kinds: dict[str, bool]) -> dict[str, bool]:
        unknown = [name for name in kinds if name not in KINDS]
        if unknown:
            raise PydanticCustomError(
                "unknown_kind", f"unknown kind {unknown[0]!r} (known: {', '.join(KINDS)})")
        return _all_kinds() | kinds

    @field_validator("daily_summary_at")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        match = _HH_MM.fullmatch(value.strip())
        if match is None or int(match[1]) > 23 or int(match[2]) > 59:
            raise PydanticCustomError(
                "clock_time", "expected a local time as HH:MM (24 h)")
        return f"{int(match[1]):02d}:{match[2]}"

    @model_validator(mode="after")
    def _apprise_urls(self) -> NotifyConfig:
        # after the model, not on the field: the error then quotes no URL (they hold tokens)
        if not self.urls:
            return self
        from bot.notify.notifier import url_problem  # apprise loads its plugins: only when URLs are set

        for i, url in enumerate(self.urls):
            problem = url_problem(url.get_secret_value())
            if problem is not None:
                raise PydanticCustomError("apprise_url", f"urls[{i}]: {problem}")
        return self

    def summary_time(self) -> time:
        """`daily_summary_at` as a time of day (local to risk.day_timezone)."""
        hours, minutes = self.daily_summary_at.split(":")
        return time(int(hours), int(minutes))

    def enabled(self, kind: str) -> bool:
        return self.kinds.get(kind, True)
