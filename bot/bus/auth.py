"""Command authentication: HMAC-SHA256 over the exact payload bytes, with a timestamp and a
nonce against replays (docs/mqtt.md, "Commands").

The payload is JSON `{"cmd", "instance", "ts", "nonce", "args"}`; the hex HMAC of the payload
under `mqtt.command_token` travels in the MQTT v5 user property `hmac`. Signing the raw bytes
avoids any JSON canonicalisation between languages. `ts` is Unix seconds on the WALL clock
(never the engine's replay clock): freshness is about real time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import orjson
from pydantic import SecretStr

HMAC_PROPERTY = "hmac"
COMMANDS = ("halt", "resume", "cancel-all", "reload", "status")


class CommandRefused(Exception):
    """A command failed authentication or validation; `reason` is sent back to the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def sign(key: str, payload: bytes) -> str:
    """Hex HMAC-SHA256 of `payload` under `key`."""
    return hmac.new(key.encode(), payload, hashlib.sha256).hexdigest()


def build_command(
    key: str, *, command: str, instance: str, args: dict[str, Any] | None = None,
    ts: float | None = None, nonce: str | None = None,
) -> tuple[bytes, str]:
    """The payload bytes and their HMAC for `command` sent to `instance`."""
    body = {
        "cmd": command,
        "instance": instance,
        "ts": time.time() if ts is None else ts,
        "nonce": nonce or secrets.token_hex(16),
        "args": args or {},
    }
    payload = orjson.dumps(body)
    return payload, sign(key, payload)


class CommandAuth:
    """Checks one command: key configured, HMAC, command and instance bound in the signed body,
    timestamp within `max_age_s` of `now()`, nonce not seen within the window."""

    def __init__(
        self, key: SecretStr | None, *, instance: str, max_age_s: float,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._key = key
        self._instance = instance
        self._max_age = max_age_s
        self._now = now
        self._seen: OrderedDict[str, float] = OrderedDict()  # nonce -> wall time first seen

    @property
    def remembered(self) -> int:
        """Nonces held against replays (bounded by the rate of commands over 2 * max_age_s)."""
        return len(self._seen)

    def verify(self, command: str, payload: bytes, signature: str | None) -> dict[str, Any]:
        """The command's `args`. Raises CommandRefused with the reason."""
        if self._key is None:
            raise CommandRefused("commands disabled: mqtt.command_token is not configured")
        if not signature:
            raise CommandRefused(f"missing hmac (MQTT v5 user property '{HMAC_PROPERTY}')")
        expected = sign(self._key.get_secret_value(), payload)
        if not hmac.compare_digest(expected, signature.strip().lower()):
            raise CommandRefused("bad hmac")
        try:
            body = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise CommandRefused("payload is not JSON") from None
        if not isinstance(body, dict):
            raise CommandRefused("payload is not a JSON object")
        if body.get("cmd") != command:
            raise CommandRefused(f"signed cmd {body.get('cmd')!r} does not match topic {command!r}")
        if body.get("instance") != self._instance:
            raise CommandRefused(f"signed instance {body.get('instance')!r} is not {self._instance!r}")
        ts, nonce, args = body.get("ts"), body.get("nonce"), body.get("args", {})
        if not isinstance(ts, int | float) or isinstance(ts, bool):
            raise CommandRefused("ts must be Unix seconds")
        now = self._now()
        if abs(now - ts) > self._max_age:
            raise CommandRefused(f"stale timestamp: {now - ts:.1f}s off (max {self._max_age:g}s)")
        if not isinstance(nonce, str) or not 8 <= len(nonce) <= 128:
            raise CommandRefused("nonce must be a string of 8-128 characters")
        if not isinstance(args, dict):
            raise CommandRefused("args must be a JSON object")
        self._forget_before(now - 2 * self._max_age)
        if nonce in self._seen:
            raise CommandRefused("replayed nonce")
        self._seen[nonce] = now
        return args

    def _forget_before(self, cutoff: float) -> None:
        while self._seen:
            nonce, seen = next(iter(self._seen.items()))
            if seen >= cutoff:
                return
            del self._seen[nonce]
