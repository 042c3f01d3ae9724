"""What every historical odds reader is, and the registry `detect` picks from.

A reader is built from one file (`reader_class(path, **options)`), and yields the file's boards
in time order as `OddsBatch`es (`batches()`): everything the source knew at one moment, applied
to the book as one step before any strategy runs (docs/architecture.md, Pipeline). Each update's
`received_at` and `feed_time` is the board's time (UTC), which the replay clock is advanced to.

Bad input (docs/reference/historical-data.md, "Bad input"): a file the reader cannot read at all
(a wrong header, an unknown odds format) raises `HistoryError` before the first batch, with one
line naming the file, the line and the column; a bad row (an unparseable or implausible price,
an unknown market or outcome, a bad time) is skipped, counted in `stats` under its kind
(`FeedStats.bad(..., sparse=True)`) and logged with its line number; a truncated or corrupt
gzip file ends the reading with `HistoryError` naming the line reached, after every board before
it was yielded.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import importlib
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, ClassVar, Protocol, cast

from bot.feeds.base import FeedError, FeedStats
from bot.types import OddsBatch


class HistoryError(FeedError, ValueError):
    """A historical file that cannot be read (on). `str()` is one line: file, line, column, why."""


class HistoryReader(Protocol):
    """One historical odds file. `progress` is (done, total) in the reader's own units (bytes
    or rows), for a progress bar; `stats` counts boards, updates and bad input by kind."""

    name: ClassVar[str]  # the format's name, as `--format` takes it
    path: Path
    stats: FeedStats

    @classmethod
    def sniff(cls, header: list[str]) -> bool:
        """True when a CSV header (the first line's cells, as written) is this format's."""
        ...

    def batches(self) -> Iterator[OddsBatch]:
        """The file's boards in time order. Raises HistoryError (see the module docstring)."""
        ...

    @property
    def progress(self) -> tuple[int, int]: ...


READERS: dict[str, str] = {
    "odds_csv": "bot.feeds.history.odds_csv:OddsCsvReader",
    "oddsapi_changes": "bot.feeds.history.oddsapi_changes:OddsApiChangesReader",
    "football_data": "bot.feeds.history.football_data:FootballDataReader",
    "pinnacle_mlb": "bot.feeds.history.pinnacle_mlb:PinnacleMlbReader",
    "betfair_stream": "bot.feeds.history.betfair:BetfairStreamReader",
}
"""Format name -> `module:Class`, imported only when used (the CLI stays light at import)."""

HEAD_BYTES = 65_536  # how much of a file's start `detect` gives a reader's `sniff_head`


def reader_class(name: str) -> type[HistoryReader]:
    """The reader of format `name`. Raises KeyError for an unknown name."""
    module, _, attr = READERS[name].partition(":")
    cls: type[HistoryReader] = getattr(importlib.import_module(module), attr)
    return cls


def header_of(path: Path) -> list[str]:
    """The first line of a (possibly gzip-compressed) CSV file, split into cells; [] when the
    file is empty or not text. Whether a file is gzip is told by its first two bytes."""
    with path.open("rb") as raw:
        gz = raw.read(2) == b"\x1f\x8b"
    try:
        with (gzip.open(path, "rt", newline="", encoding="utf-8-sig") if gz
              else path.open(newline="", encoding="utf-8-sig")) as f:
            return next(csv.reader(f), [])
    except (OSError, EOFError, UnicodeDecodeError, csv.Error):
        return []


def open_stream(path: Path) -> tuple[BinaryIO, BinaryIO]:
    """(the file on disk, its decompressed byte stream): gzip (`1f 8b`), bzip2 (`BZh`) or plain."""
    raw: BinaryIO = path.open("rb")
    magic = raw.read(3)
    raw.seek(0)
    if magic[:2] == b"\x1f\x8b":
        return raw, cast(BinaryIO, gzip.GzipFile(fileobj=raw, mode="rb"))
    if magic == b"BZh":
        return raw, cast(BinaryIO, bz2.BZ2File(raw, "rb"))
    return raw, raw


def head_of(path: Path, size: int = HEAD_BYTES) -> bytes:
    """The first `size` decompressed bytes of a file; b"" when it cannot be read."""
    try:
        raw, stream = open_stream(path)
        with raw, stream:
            return stream.read(size)
    except (OSError, EOFError, zlib.error, ValueError):
        return b""


def detect(path: Path) -> str | None:
    """The format name of an odds file, told by its header; None when no reader knows it. A
    reader of a format that is not CSV has a classmethod `sniff_head(first bytes) -> bool` (the
    first 64 KiB, decompressed from gzip or bzip2), asked first."""
    head = head_of(path)
    classes = {name: reader_class(name) for name in READERS}
    for name, cls in classes.items():
        sniff_head = getattr(cls, "sniff_head", None)
        if sniff_head is not None and sniff_head(head):
            return name
    header = header_of(path)
    if not header:
        return None
    for name, cls in classes.items():
        if cls.sniff(header):
            return name
    return None
