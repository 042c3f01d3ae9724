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
_LEVEL_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
MAX_REPLY_LEVELS = 4


def valid_level(text: str) -> bool:
    """True when `text` is one topic level without wildcards or separators."""
    return bool(_LEVEL.fullmatch(text))


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
        """Where a reply goes when the request named no MQTT v5 response topic (or one the bot
        refuses)."""
        return f"{self.base}/cmd/{name}/reply"

    @property
    def replies(self) -> str:
        """The prefix every requested reply topic must be under: `{prefix}/{instance}/reply`."""
        return f"{self.base}/reply"

    def reply_topic_ok(self, topic: str) -> bool:
        """True when `topic` is `{prefix}/{instance}/reply/{client}[/...]`: one to MAX_REPLY_LEVELS
        plain levels (no wildcards, no empty level) under the reply prefix (docs/mqtt.md,
        "Commands")."""
        head = f"{self.replies}/"
        if not topic.startswith(head):
            return False
        levels = topic[len(head):].split("/")
        return 1 <= len(levels) <= MAX_REPLY_LEVELS and all(valid_level(level) for level in levels)

    def reply_for(self, client: str) -> str:
        """A caller's reply prefix, `{prefix}/{instance}/reply/{client}` (`client` made one
        plain level: other characters become `_`)."""
        return f"{self.replies}/{_LEVEL_UNSAFE.sub('_', client) or '_'}"


def odds_topic(template: str, prefix: str) -> str:
    return template.replace("{prefix}", prefix)
