"""Recordings of raw feed traffic: compressed JSONL, one record per line.

Record shape: `{"ts": <receive time, ISO 8601 UTC>, "source": "boltodds" | "oddsapi", "raw":
<the frame or response body as text>}`; a lost connection is recorded as `{"ts", "source",
"raw": null, "status": "disconnected"}` so a replay marks the book stale where the live run did.
`.gz` paths are gzip-compressed. The Odds API historical snapshot files (`{"timestamp": ...,
"data": [events]}` per line) are read by `read_records` too.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Literal

import orjson
from loguru import logger

RecordFormat = Literal["auto", "recording", "oddsapi_snapshots"]
FLUSH_EVERY = 100  # records; a crash loses at most this many recorded frames


@dataclass(frozen=True, slots=True)
class Record:
    """One recorded frame: receive time (UTC), source, raw text (None for a status record)."""

    ts: datetime
    source: str
    raw: str | None
    status: str | None = None
    parsed: object = None  # the already-parsed body (snapshot files), else None


def _open(path: Path, mode: Literal["rb", "ab"]) -> gzip.GzipFile | BinaryIO:
    if path.suffix == ".gz":
        return gzip.open(path, mode)
    return open(path, mode)


class Recorder:
    """Appends records to `path` (parent directories created); call `close` when done."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = _open(path, "ab")
        self._pending = 0

    def write(self, ts: datetime, source: str, raw: str | bytes | None, status: str | None = None) -> None:
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8", "replace")
        record: dict[str, object] = {"ts": ts.isoformat(), "source": source, "raw": raw}
        if status is not None:
            record["status"] = status
        self._file.write(orjson.dumps(record) + b"\n")
        self._pending += 1
        if self._pending >= FLUSH_EVERY or status is not None:
            self.flush()

    def flush(self) -> None:
        self._file.flush()
        self._pending = 0

    def close(self) -> None:
        self._file.close()


def detect_format(path: Path) -> Literal["recording", "oddsapi_snapshots"]:
    """Which kind of file `path` is, from its first line.

    Raises:
        ValueError: the first line is neither a recording record nor a snapshot.
    """
    with _open(path, "rb") as f:
        first = orjson.loads(f.readline() or b"{}")
    if isinstance(first, dict) and "ts" in first and "source" in first:
        return "recording"
    if isinstance(first, dict) and "timestamp" in first and "data" in first:
        return "oddsapi_snapshots"
    raise ValueError(f"{path}: neither a feed recording nor an Odds API snapshot file")


def count_records(path: Path) -> int:
    with _open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


def read_records(path: Path, fmt: RecordFormat = "auto") -> Iterator[Record]:
    """The records of a recording or snapshot file in file order. Unreadable lines are logged
    and skipped (the count of skipped lines is logged at the end).

    Raises:
        ValueError: `fmt="auto"` and the format cannot be told.
    """
    kind = detect_format(path) if fmt == "auto" else fmt
    skipped = 0
    with _open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
                if kind == "recording":
                    yield Record(datetime.fromisoformat(obj["ts"]), str(obj["source"]), obj.get("raw"),
                                 obj.get("status"))
                else:
                    yield Record(datetime.fromisoformat(obj["timestamp"]), "oddsapi", None,
                                 parsed=obj["data"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                skipped += 1
                logger.warning("{}:{}: unreadable record skipped ({})", path, number, exc)
    if skipped:
        logger.warning("{}: {} unreadable records skipped", path, skipped)
