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

import csv
import gzip
import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar, Protocol

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
}
"""Format name -> `module:Class`, imported only when used (the CLI stays light at import)."""


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


def detect(path: Path) -> str | None:
    """The format name of an odds file, told by its header; None when no reader knows it."""
    header = header_of(path)
    if not header:
        return None
    for name in READERS:
        if reader_class(name).sniff(header):
            return name
    return None
