"""JSON encoding of everything the bus publishes (docs/mqtt.md, "Envelope").

Every event is `{"v": SCHEMA_VERSION, "kind", "instance", "seq", "at", "data"}`: `seq` counts
up per process (with `instance` and `at`, a de-duplication key for at-least-once delivery),
`at` is the engine clock (UTC ISO 8601), `data` the engine's payload. Decimals are written as
strings (exact money), datetimes as ISO 8601, dataclasses (bot.types) as objects, with a
Selection's `key` added beside its parts.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

import orjson

from bot.types import Selection

SCHEMA_VERSION = 1
_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z | orjson.OPT_PASSTHROUGH_DATACLASS


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, Selection):
        return {"key": obj.key, "fixture": obj.fixture, "market": obj.market, "outcome": obj.outcome}
    if is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in fields(obj) if f.init}  # not caches (FixtureKey._text)
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, Path):
        return str(obj)
    return repr(obj)  # never fail a publish over one odd value


def dumps(obj: Any) -> bytes:
    """JSON bytes of `obj` (never raises on unknown types: they become their repr)."""
    return orjson.dumps(obj, default=_default, option=_OPTIONS)


def envelope(kind: str, instance: str, seq: int, at: datetime, data: Any) -> bytes:
    return dumps({"v": SCHEMA_VERSION, "kind": kind, "instance": instance, "seq": seq, "at": at, "data": data})
