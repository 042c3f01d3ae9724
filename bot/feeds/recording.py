"""Recordings of raw feed traffic: compressed JSONL, one record per line, and the reader that
replays them and The Odds API snapshot files.

Record shape: `{"ts": <receive time, ISO 8601 UTC>, "source": "boltodds" | "oddsapi" | "board",
"raw": <the frame or response body as text>}`; a The Odds API record also carries `"odds_format":
"american" | "decimal"`, the `oddsFormat` its body was requested in, so a replay reads its prices
as they were meant (records written before that field are read in `feeds.replay.odds_format`).
A lost connection is recorded as `{"ts", "source", "raw": null, "status": "disconnected"}` so a
replay marks the book stale where the live run did. `.gz` paths are written gzip-compressed.

Board record (`bot data convert` writes them from historical odds files; bot/feeds/board.py):
`{"ts": <board time, ISO 8601 UTC>, "source": "board", "raw": <JSON text>}`, one `OddsBatch`
already normalised, replayed as one batch applied whole. `raw` is `{"v": 1, "source": <the
batch's source, e.g. the reader's format name>, "complete": true | false, "quotes": [row, ...]}`,
each row `[sport, start ISO UTC, home, away, market type, period, line | null, outcome,
bookmaker, decimal price | null, american | null, feed_ids | null]`: `line` is Decimal text
("2.25", "-0.25": exact), `price` null means withdrawn (suspended); a 13th cell, the quote's
feed time (null: the board time), and a 14th, its source, appear only when they differ from the
board's. Optional `"cleared": [[source, at, bookmaker | null, sport | null, [sport, start, home,
away] | null], ...]` and `"unconfirmed": [[[sport, start, home, away], bookmaker | null], ...]`
carry the batch's fields of those names (bot/types.py, `OddsBatch`). A board that cannot be
decoded is counted as a decoder error by the replay (bot/feeds/replay.py).

The Odds API historical snapshot files (`{"timestamp": ..., "data": [events]}` per line, as
`bot/data/nfl_raw_snapshots_2025-11-16.jsonl.gz` and `tests/data/oddsapi/*.jsonl.gz`) carry no
odds format: their prices are read in `feeds.replay.odds_format` (bot/feeds/config.py, default
"american", which The Odds API historical files and every bundled file use).

Damage (docs/architecture.md, "Invariants > Nothing lost, nothing silent"): `RecordReader` reads
what can be read. A line that is not a record (not JSON, binary junk, a record without a zoned
`ts`, a truncated last line) is skipped, counted and logged with its line number and byte offset
(the first ten, then the 100th, 1000th ... of a long run of damage), and reading goes on. Damage
that cannot be read past (a truncated gzip stream, corrupt deflate data, a bad CRC or length,
trailing junk after the gzip member, an unreadable file) ends the reading with `DamagedFile`,
after every record before it was yielded. Corrupt deflate data may first decompress to junk
lines (skipped) before gzip's CRC, checked at the end of the stream, names the damage. Whether a
file is gzip is told by its first two bytes, not its name. Offsets are of the decompressed data
for gzip files.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Literal

import orjson

from bot.feeds.base import FeedError, FeedStats, loads_lenient

RecordFormat = Literal["auto", "recording", "oddsapi_snapshots"]
FLUSH_EVERY = 100  # records; a crash loses at most this many recorded frames
ODDS_FORMATS = frozenset({"american", "decimal"})
_GZIP_MAGIC = b"\x1f\x8b"
# What reading a damaged file raises: truncation (EOFError), corrupt deflate data (zlib.error),
# a bad CRC, length or header (gzip.BadGzipFile, an OSError), and I/O errors.
_UNREADABLE = (OSError, EOFError, zlib.error)


@dataclass(frozen=True, slots=True)
class Record:
    """One recorded frame: receive time (UTC), source, raw text (None for a status record).
    `odds_format` is the recorded The Odds API body's odds format, when the record states it."""

    ts: datetime
    source: str
    raw: str | None
    status: str | None = None
    parsed: object = None  # the already-parsed body (snapshot files), else None
    odds_format: str | None = None


class DamagedFile(FeedError, ValueError):
    """A damaged recording or snapshot file, at `line` (1-based) and byte `offset` (of the
    decompressed data for gzip). `str()` is one line naming the file and that place."""

    def __init__(self, path: Path, line: int, offset: int, message: str) -> None:
        super().__init__(message)
        self.path, self.line, self.offset = path, line, offset

    @classmethod
    def unreadable(cls, path: Path, line: int, offset: int, why: str, *, compressed: bool = False) -> DamagedFile:
        """Damage that cannot be read past: nothing from `line` on can be read."""
        where = f"line {line}, byte {offset}" + (" of the decompressed data" if compressed else "")
        return cls(path, line, offset, f"{path}: unreadable from {where}: {why}")


def _open(path: Path, mode: Literal["rb", "ab"]) -> gzip.GzipFile | BinaryIO:
    if path.suffix == ".gz":
        return gzip.open(path, mode)
    return open(path, mode)


def _open_read(path: Path) -> tuple[gzip.GzipFile | BinaryIO, bool]:
    """`path` opened for reading, decompressed when its first bytes are gzip's magic number;
    and whether it is gzip."""
    raw = open(path, "rb")  # noqa: SIM115 - returned to the caller, who closes it
    try:
        compressed = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
    except OSError:
        raw.close()
        raise
    return (gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw), compressed


class Recorder:
    """Appends records to `path` (parent directories created); call `close` when done."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = _open(path, "ab")
        self._pending = 0

    def write(
        self, ts: datetime, source: str, raw: str | bytes | None, status: str | None = None,
        odds_format: str | None = None,
    ) -> None:
        """Append one record; `odds_format` ("american" / "decimal") for a The Odds API body."""
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8", "replace")
        record: dict[str, object] = {"ts": ts.isoformat(), "source": source, "raw": raw}
        if status is not None:
            record["status"] = status
        if odds_format is not None:
            record["odds_format"] = odds_format
        self._file.write(orjson.dumps(record) + b"\n")
        self._pending += 1
        if self._pending >= FLUSH_EVERY or status is not None:
            self.flush()

    def flush(self) -> None:
        self._file.flush()
        self._pending = 0

    def close(self) -> None:
        self._file.close()


def count_records(path: Path) -> int:
    """Non-blank lines of `path` up to any damage that cannot be read past (for progress)."""
    count = 0
    try:
        f, _ = _open_read(path)
        with f:
            for line in f:
                count += bool(line.strip())
    except _UNREADABLE:
        pass
    return count


def _aware(value: object, field: str) -> datetime:
    if not isinstance(value, str):
        raise TypeError(f"{field} must be an ISO 8601 string, got {type(value).__name__}")
    ts = datetime.fromisoformat(value)
    if ts.tzinfo is None:
        raise ValueError(f"{field} has no UTC offset: {value!r}")
    return ts


def _optional_str(obj: dict, field: str) -> str | None:
    value = obj.get(field)
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{field} must be a string or null, got {type(value).__name__}")
    return value


class RecordReader:
    """The records of a recording or snapshot file in file order (see the module docstring for
    what is skipped and what ends the reading). `fmt="auto"` tells the kind of file from its
    first readable record. Skipped lines are counted in `stats` as "unreadable_line" (logged
    with their line number and byte offset, see the module docstring) and in `skipped`;
    `skipped_error()` words them as one line.

    Raises (while iterating):
        DamagedFile: damage that cannot be read past, or (`fmt="auto"`) no readable record at all.
    """

    def __init__(self, path: Path, fmt: RecordFormat = "auto", stats: FeedStats | None = None) -> None:
        self.path = path
        self.kind: Literal["recording", "oddsapi_snapshots"] | None = None if fmt == "auto" else fmt
        self.stats = stats if stats is not None else FeedStats(f"replay {path.name}")
        self.lines = 0  # lines read so far
        self.skipped = 0
        self.first_skipped: tuple[int, int, str] | None = None  # (line, byte offset, why) of the first

    def __iter__(self) -> Iterator[Record]:
        offset = 0  # bytes before the current line
        try:
            f, compressed = _open_read(self.path)
        except OSError as exc:
            raise DamagedFile.unreadable(self.path, 1, 0, f"{type(exc).__name__}: {exc}") from exc
        with f:
            while True:
                try:
                    line = f.readline()
                except _UNREADABLE as exc:
                    why = f"{type(exc).__name__}: {exc}"
                    if self.first_skipped is not None:
                        number, at, _ = self.first_skipped
                        why += f" ({self.skipped} unreadable line(s) skipped before, the first at line {number}, byte {at})"
                    raise DamagedFile.unreadable(self.path, self.lines + 1, offset, why,
                                                 compressed=compressed) from exc
                if not line:
                    break
                self.lines += 1
                if line.strip():
                    try:
                        record = self._record(loads_lenient(line))
                    except (KeyError, TypeError, ValueError) as exc:
                        self._skip(line, offset, f"{type(exc).__name__}: {exc}")
                    else:
                        yield record
                offset += len(line)
        if self.kind is None:
            why = "empty file" if offset == 0 else "no line is a feed recording record or an Odds API snapshot"
            raise DamagedFile(self.path, 1, 0, f"{self.path}: not a replay file: {why}")

    def skipped_error(self) -> DamagedFile | None:
        """The one-line error for the lines skipped so far (None when none was)."""
        if self.first_skipped is None:
            return None
        line, offset, why = self.first_skipped
        return DamagedFile(self.path, line, offset, f"{self.path}: {self.skipped} unreadable line(s) skipped, "
                                                    f"the first at line {line}, byte {offset}: {why}")

    def _skip(self, line: bytes, offset: int, why: str) -> None:
        self.skipped += 1
        self.first_skipped = self.first_skipped or (self.lines, offset, why)
        self.stats.bad("unreadable_line", f"{self.path}: line {self.lines}, byte {offset}: {why}", line, sparse=True)

    def _record(self, obj: object) -> Record:
        """One parsed line as a Record.

        Raises:
            KeyError, TypeError, ValueError: not a record of this file's kind.
        """
        if not isinstance(obj, dict):
            raise TypeError(f"a record must be a JSON object, got {type(obj).__name__}")
        kind = self.kind
        if kind is None:
            if "ts" in obj and "source" in obj:
                kind = "recording"
            elif "timestamp" in obj and "data" in obj:
                kind = "oddsapi_snapshots"
            else:
                raise ValueError("neither a feed recording record nor an Odds API snapshot")
        if kind == "recording":
            source = obj["source"]
            if not isinstance(source, str) or not source:
                raise TypeError("source must be a non-empty string")
            odds_format = _optional_str(obj, "odds_format")
            if odds_format is not None and odds_format not in ODDS_FORMATS:
                raise ValueError(f"odds_format must be american or decimal, got {odds_format!r}")
            record = Record(_aware(obj["ts"], "ts"), source, _optional_str(obj, "raw"),
                            _optional_str(obj, "status"), odds_format=odds_format)
        else:
            record = Record(_aware(obj["timestamp"], "timestamp"), "oddsapi", None, parsed=obj["data"])
        self.kind = kind
        return record


def read_records(path: Path, fmt: RecordFormat = "auto") -> Iterator[Record]:
    """The records of a recording or snapshot file in file order (`RecordReader`).

    Raises (while iterating):
        DamagedFile: damage that cannot be read past, after every record before it.
    """
    return iter(RecordReader(path, fmt))
