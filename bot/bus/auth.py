"""Message authentication on the bus: HMAC-SHA256 over the exact payload bytes, for operator
commands (with a timestamp and a nonce against replays) and for odds published on the odds
topic (docs/mqtt.md, "Commands" and "Odds in").

A command's payload is JSON `{"cmd", "instance", "ts", "nonce", "args"}`; the hex HMAC of the
payload under `mqtt.command_token` travels in the MQTT v5 user property `hmac` (signed odds use
the same property under `mqtt.feed.signing_key`). Signing the raw bytes avoids any JSON
canonicalisation between languages. `ts` is Unix seconds on the WALL clock (never the engine's
replay clock): freshness is about real time.

Replays are refused across restarts: every accepted nonce (with its signed `ts`) and the
`floor` below which every command is refused are kept in the ledger's state table under
`mqtt_nonces` (`Ledger.get_state/set_state`), written before the command runs. Shape:

    {"v": 1, "floor": 1767268800.0, "last_ts": 1767268829.5,
     "nonces": {"<nonce>": 1767268829.5, ...}}

A nonce is forgotten once its `ts` is more than `command_max_age_s` in the past (it could only
fail the freshness check then); the floor rises to that cutoff, so a wall clock set back after a
restart cannot revive a forgotten nonce. At most MAX_NONCES are kept: evicting the oldest raises
the floor past it.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import string
import time
from collections.abc import Callable
from typing import Any, Protocol

import orjson
from loguru import logger
from pydantic import SecretStr

HMAC_PROPERTY = "hmac"
COMMANDS = ("halt", "resume", "cancel-all", "reload", "status")
NONCE_STATE_KEY = "mqtt_nonces"
MAX_NONCES = 1000
_HEX = frozenset(string.hexdigits)
_HMAC_HEX_LEN = 2 * hashlib.sha256().digest_size  # 64


class CommandRefused(Exception):
    """A command (or a signed odds message) failed authentication or validation; `reason` is
    sent back to the caller and logged."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StateStore(Protocol):
    """Where the nonce memory lives (bot.ledger.store.Ledger)."""

    def get_state(self, key: str) -> dict | None: ...
    def set_state(self, key: str, value: dict) -> object: ...


def user_property(props: object, name: str) -> object:
    """The first value of MQTT v5 user property `name` of `props` (paho Properties, as the client
    library decoded it), or None."""
    for key, value in getattr(props, "UserProperty", None) or []:
        if key == name:
            return value
    return None


def sign(key: str, payload: bytes) -> str:
    """Hex HMAC-SHA256 of `payload` under `key`."""
    return hmac.new(key.encode(), payload, hashlib.sha256).hexdigest()


def verify_signature(key: str, payload: bytes, signature: object) -> None:
    """Check the hex HMAC `signature` (the `hmac` user property) of `payload` under `key`.

    Raises CommandRefused naming the problem: missing, malformed (not text, not ASCII, not 64
    characters, not hexadecimal) or bad. Never raises anything else, whatever the input.
    """
    if signature is None or signature == "":
        raise CommandRefused(f"missing hmac (MQTT v5 user property '{HMAC_PROPERTY}')")
    if not isinstance(signature, str):
        raise CommandRefused(f"malformed hmac: a {type(signature).__name__}, not text")
    sig = signature.strip()
    if not sig.isascii():
        raise CommandRefused("malformed hmac: not ASCII (expected 64 hex digits)")
    if len(sig) != _HMAC_HEX_LEN:
        raise CommandRefused(f"malformed hmac: {len(sig)} characters (expected {_HMAC_HEX_LEN} hex digits)")
    if not _HEX.issuperset(sig):
        raise CommandRefused(f"malformed hmac: not hexadecimal (expected {_HMAC_HEX_LEN} hex digits)")
    if not hmac.compare_digest(sign(key, payload), sig.lower()):
        raise CommandRefused("bad hmac")


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
    timestamp within `max_age_s` of `now()` and not below the floor, nonce not seen before (in
    this process or, with a `store`, in an earlier one on the same ledger)."""

    def __init__(
        self, key: SecretStr | None, *, instance: str, max_age_s: float,
        now: Callable[[], float] = time.time, store: StateStore | None = None,
        max_nonces: int = MAX_NONCES,
    ) -> None:
        self._key = key
        self._instance = instance
        self._max_age = max_age_s
        self._now = now
        self._store = store
        self._max_nonces = max_nonces
        self._seen: dict[str, float] = {}  # nonce -> signed ts
        self._floor = -math.inf  # every command with ts < floor is refused
        self._last_ts = -math.inf
        if store is not None:
            self._load(store)

    @property
    def remembered(self) -> int:
        """Nonces held against replays (those of the last `max_age_s`, at most MAX_NONCES)."""
        return len(self._seen)

    def verify(self, command: str, payload: bytes, signature: object) -> dict[str, Any]:
        """The command's `args`, once its nonce is remembered (and stored). Raises
        CommandRefused with the reason."""
        if self._key is None:
            raise CommandRefused("commands disabled: mqtt.command_token is not configured")
        verify_signature(self._key.get_secret_value(), payload, signature)
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
        if not isinstance(ts, int | float) or isinstance(ts, bool) or not math.isfinite(ts):
            raise CommandRefused("ts must be Unix seconds")
        now = self._now()
        if abs(now - ts) > self._max_age:
            raise CommandRefused(f"stale timestamp: {now - ts:.1f}s off (max {self._max_age:g}s)")
        if not isinstance(nonce, str) or not 8 <= len(nonce) <= 128:
            raise CommandRefused("nonce must be a string of 8-128 characters")
        if not isinstance(args, dict):
            raise CommandRefused("args must be a JSON object")
        self._forget_before(now - self._max_age)
        if nonce in self._seen:
            raise CommandRefused("replayed nonce")
        if ts < self._floor:
            raise CommandRefused("stale timestamp: older than the commands this bot already forgot (replay window)")
        self._remember(nonce, float(ts))
        return args

    # -- memory ------------------------------------------------------------------------------

    def _forget_before(self, cutoff: float) -> None:
        if cutoff <= self._floor:
            return
        self._floor = cutoff
        self._seen = {n: ts for n, ts in self._seen.items() if ts >= cutoff}

    def _remember(self, nonce: str, ts: float) -> None:
        self._seen[nonce] = ts
        self._last_ts = max(self._last_ts, ts)
        while len(self._seen) > self._max_nonces:
            oldest = min(self._seen, key=self._seen.__getitem__)
            self._floor = max(self._floor, math.nextafter(self._seen.pop(oldest), math.inf))
        if self._store is None:
            return
        state = {"v": 1, "floor": _finite(self._floor), "last_ts": _finite(self._last_ts), "nonces": self._seen}
        try:
            self._store.set_state(NONCE_STATE_KEY, state)
        except Exception as exc:  # noqa: BLE001 - fail closed: a command whose nonce is not stored does not run
            del self._seen[nonce]
            logger.opt(exception=True).error("mqtt command nonce could not be stored")
            raise CommandRefused(f"nonce memory unavailable ({type(exc).__name__}); command not run") from None

    def _load(self, store: StateStore) -> None:
        try:
            data = store.get_state(NONCE_STATE_KEY)
            if data is None:
                return
            nonces = {str(n): float(ts) for n, ts in dict(data.get("nonces", {})).items()}
            floor = data.get("floor")
            last_ts = data.get("last_ts")
            self._floor = -math.inf if floor is None else float(floor)
            self._last_ts = -math.inf if last_ts is None else float(last_ts)
            self._seen = nonces
        except Exception:  # noqa: BLE001 - unreadable memory: refuse every command signed before now
            self._seen = {}
            self._floor = self._now()
            logger.opt(exception=True).error(
                "mqtt command nonce memory unreadable: commands signed before now are refused")
            return
        self._forget_before(self._now() - self._max_age)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
