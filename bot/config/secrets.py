"""The one masking function for secrets (docs/architecture.md, "Invariants > Secrets never leave").

Every configured secret (each non-empty `SecretStr` in `Settings`) is replaced by `MASK` in any
text the bot writes out: log records (bot/engine/logs.py: message, `extra`, exception text),
MQTT payloads (bot/bus/bus.py, just before they leave) and the ledger's event log
(`Ledger.append_event`). A secret is found in every form it travels in: as is, URL-encoded
(`urllib.parse.quote` / `quote_plus`, percent escapes in either case), JSON- or repr-escaped, or
any mix of these character by character. The value of a credential query parameter in a URL
(`?key=`, `&apiKey=`, `api_key=`, `access_token=`, `token=`, ...) is masked whether or not it is a
configured secret, so a key that never went through `Settings` does not leak either.

The secrets are registered once per process (`register_settings(settings)`, done by
`setup_logging`; `register(...)` for other values) and held here, so the ledger and the bus need
no handle on the settings. Shapes:

    mask_text("GET https://x/odds?apiKey=abc&s=1")  -> "GET https://x/odds?apiKey=**********&s=1"
    mask({"url": ..., "n": 1, "items": [...]})      -> the same shape, every string masked
    mask_bytes(b'{"k": "..."}')                      -> bytes (the input itself when nothing matched)
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from typing import Any

from pydantic import SecretStr

MASK = "**********"

_QUERY_SECRET = re.compile(
    r"(?i)([?&;](?:api[_-]?key|key|access[_-]?token|auth[_-]?token|token|password|secret)=)"
    r"[^&;\s\"'#<>\\]+"
)
"""A credential query parameter: the name (kept) and its value (masked) up to the next separator."""


def collect(model: Any) -> list[str]:
    """Every non-empty SecretStr value inside a pydantic model tree (lists, tuples, dicts included)."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, SecretStr):
            if value.get_secret_value():
                found.append(value.get_secret_value())
        elif hasattr(value, "__pydantic_fields__"):
            for name in type(value).model_fields:
                walk(getattr(value, name))
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)

    walk(model)
    return found


def _char_forms(char: str) -> str:
    """A regex alternation of the ways one character of a secret may be written."""
    forms = {re.escape(char)}
    encoded = char.encode()
    forms.add("".join(f"%{_hex_ci(b)}" for b in encoded))  # quote(): %2F, also %2f
    if char == " ":
        forms.add(r"\+")  # quote_plus()
    if char in "\"'\\/":
        forms.add(re.escape("\\" + char))  # JSON / repr escapes
    if not char.isascii() or not char.isprintable():
        forms.add(rf"\\u{_hex_ci(ord(char), 4)}")  # json.dumps(ensure_ascii=True)
    return "(?:" + "|".join(sorted(forms, key=lambda f: (-len(f), f))) + ")"  # longest first: "%25" before "%"


def _hex_ci(value: int, width: int = 2) -> str:
    digits = f"{value:0{width}X}"
    return "".join(f"[{d}{d.lower()}]" if d.isalpha() else d for d in digits)


class Masker:
    """Masks a fixed set of secrets (and credential query parameters) in text and in nested data."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = frozenset(s for s in secrets if s)
        longest_first = sorted(self.secrets, key=len, reverse=True)  # a secret containing another is masked whole
        self._pattern = (
            re.compile("|".join("".join(_char_forms(c) for c in s) for s in longest_first))
            if longest_first else None
        )

    def mask_text(self, text: str) -> str:
        if self._pattern is not None:
            text = self._pattern.sub(MASK, text)
        return _QUERY_SECRET.sub(lambda m: m.group(1) + MASK, text)

    def mask_bytes(self, data: bytes) -> bytes:
        """`data` masked as UTF-8 text; the same object when nothing needed masking."""
        text = data.decode("utf-8", errors="surrogateescape")
        masked = self.mask_text(text)
        return data if masked == text else masked.encode("utf-8", errors="surrogateescape")

    def mask(self, value: Any) -> Any:
        """`value` with every string inside masked: dicts (keys too), lists and tuples are
        rebuilt; numbers, booleans and None are kept; any other object is kept unless its text
        holds a secret, in which case it becomes that text, masked."""
        if isinstance(value, str):
            return self.mask_text(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, dict):
            return {self.mask(k): self.mask(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.mask(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.mask(v) for v in value)
        if isinstance(value, bytes | bytearray):
            data = self.mask_bytes(bytes(value))
            return value if data == value else data
        try:
            text = str(value)
        except Exception:  # noqa: BLE001 - a broken __str__ cannot leak what it cannot print
            return value
        masked = self.mask_text(text)
        return value if masked == text else masked


_lock = threading.Lock()
_active = Masker()


def register(secrets: Iterable[str]) -> None:
    """Add `secrets` to the process-wide set masked by `mask`, `mask_text` and `mask_bytes`."""
    global _active
    with _lock:
        _active = Masker(_active.secrets | {s for s in secrets if s})


def forget_all() -> None:
    """Drop every registered secret (tests that register their own)."""
    global _active
    with _lock:
        _active = Masker()


def register_settings(settings: Any) -> None:
    """Register every SecretStr of `settings` (bot.config.settings.Settings or any section)."""
    register(collect(settings))


def masker() -> Masker:
    """The process-wide masker (every registered secret)."""
    return _active


def mask_text(text: str) -> str:
    return _active.mask_text(text)


def mask_bytes(data: bytes) -> bytes:
    return _active.mask_bytes(data)


def mask(value: Any) -> Any:
    return _active.mask(value)
