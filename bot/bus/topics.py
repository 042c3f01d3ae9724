"""Topic names (docs/mqtt.md, "Topics"). Everything an instance publishes or obeys lives under
`{prefix}/{instance}/`; the odds input topic is shared by all instances."""

from __future__ import annotations

import re
from dataclasses import dataclass

EVENT_KINDS = frozenset(
    {"signal", "decision", "order", "bet", "fill", "settlement", "state", "alert", "heartbeat"}
)
CRITICAL_KINDS = frozenset({"fill", "settlement", "alert", "order", "bet", "state"})
"""Never dropped when the queue is full (state: an operator must see a halt)."""
RETAINED_KINDS = frozenset({"state", "heartbeat"})
"""Retained, so a dashboard that subscribes late sees the latest at once."""

_LEVEL = re.compile(r"^[A-Za-z0-9_.-]+$")


def valid_level(text: str) -> bool:
    """True when `text` is one topic level without wildcards or separators."""
    return bool(_LEVEL.match(text))


@dataclass(frozen=True, slots=True)
class Topics:
    prefix: str
    instance: str

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.instance}"

    def event(self, kind: str) -> str:
        return f"{self.base}/{kind}"

    @property
    def status(self) -> str:
        """Retained `online` / `offline` (the last will)."""
        return f"{self.base}/status"

    @property
    def commands(self) -> str:
        """Subscription filter for every command."""
        return f"{self.base}/cmd/+"

    def command(self, name: str) -> str:
        return f"{self.base}/cmd/{name}"

    def reply(self, name: str) -> str:
        """Where a reply goes when the request named no MQTT v5 response topic."""
        return f"{self.base}/cmd/{name}/reply"


def odds_topic(template: str, prefix: str) -> str:
    return template.replace("{prefix}", prefix)
