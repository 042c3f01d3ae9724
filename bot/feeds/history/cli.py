"""`bot data ...`: what an odds file holds (`info`), and historical odds files converted into the
bot's own recording format (`convert`: one board record per board, bot/feeds/recording.py), which
`feeds.replay` then plays like any recording.

A file's format is told by its header (`bot.feeds.history.base.detect`) unless `--format` names
it; `info` also reads the bot's recordings and The Odds API snapshot files (JSON lines, `.gz` or
not). Exit codes: 2 for a file no reader knows or a missing file (one line naming the file and
the known formats), 1 for a file that cannot be read on (`HistoryError`, `DamagedFile`: its one
line, after `info` has shown what was read before it). `convert` writes nothing unless every
source was read to its end: it writes a hidden `.partial-` file beside OUT and renames it.

Light at import (bot/cli.py mounts this app at start): typer and the standard library only; each
command imports the readers, the feeds and rich when it runs.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bot.config.options import fail

if TYPE_CHECKING:
    from bot.feeds.base import FeedStats
    from bot.feeds.history.base import HistoryReader
    from bot.types import FeedEvent, FixtureKey

app = typer.Typer(help="Historical odds files: what a file holds, and conversion to the bot's recording format.",
                  no_args_is_help=True)

RECORDING = "recording"  # `--format` of the bot's own recordings and The Odds API snapshot files (info only)

FormatOpt = Annotated[str | None, typer.Option("--format", help="the file format (default: told by its header)")]


@dataclass
class Summary:
    """What a run over a file's events saw: boards (OddsBatches) by time, quotes by bookmaker
    and market type, withdrawn quotes (price None), fixtures by sport. Times are UTC."""

    boards: int = 0
    quotes: int = 0
    withdrawn: int = 0
    other_events: int = 0  # status changes and clears outside a batch (recordings)
    first: datetime | None = None
    last: datetime | None = None
    bookmakers: Counter[str] = field(default_factory=Counter)
    markets: Counter[str] = field(default_factory=Counter)
    fixtures: dict[FixtureKey, str] = field(default_factory=dict)  # -> its sport

    async def add(self, event: FeedEvent) -> None:
        """An `EmitFn`: count one event."""
        from bot.types import OddsBatch

        if not isinstance(event, OddsBatch):
            self.other_events += 1
            return
        self.boards += 1
        at = event.received_at
        self.first = at if self.first is None else min(self.first, at)
        self.last = at if self.last is None else max(self.last, at)
        self.quotes += len(event.updates)
        books, markets, fixtures = self.bookmakers, self.markets, self.fixtures
        for u in event.updates:
            books[u.bookmaker] += 1
            sel = u.selection
            markets[sel.market.type] += 1
            fixtures[sel.fixture] = sel.fixture.sport
            if u.price is None or u.suspended:
                self.withdrawn += 1

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: counts, `first_board` / `last_board` ISO 8601 UTC (None without a board),
        bookmakers and markets {name: quotes} and sports {sport: fixtures}, most first."""
        return {
            "boards": self.boards, "quotes": self.quotes, "withdrawn": self.withdrawn,
            "fixtures": len(self.fixtures),
            "first_board": None if self.first is None else self.first.isoformat(),
            "last_board": None if self.last is None else self.last.isoformat(),
            "sports": dict(Counter(self.fixtures.values()).most_common()),
            "bookmakers": dict(self.bookmakers.most_common()),
            "markets": dict(self.markets.most_common()),
            "other_events": self.other_events,
        }

    def line(self) -> str:
        """One line: boards, quotes, fixtures and time span."""
        span = "no board" if self.first is None or self.last is None else \
            f"{self.first.isoformat()} to {self.last.isoformat()}"
        return (f"{self.boards} boards, {self.quotes} quotes ({self.withdrawn} withdrawn), "
                f"{len(self.fixtures)} fixtures, {span}")


def _known() -> str:
    from bot.feeds.history.base import READERS

    return ", ".join(READERS)


def _format_of(path: Path, fmt: str | None, *, recordings: bool) -> str:
    """The format name of `path`: `fmt` when given (checked), else told by its header, else
    `RECORDING` for JSON lines when `recordings`; exit 2 with one line when none."""
    from bot.feeds.history.base import READERS, detect

    known = _known() + (f", {RECORDING}" if recordings else "")
    if fmt is not None and not (fmt in READERS or (recordings and fmt == RECORDING)):
        fail(f"--format {fmt}: unknown format; known formats: {known}")
    if not path.is_file():
        fail(f"{path}: no such file")
    if fmt is not None:
        return fmt
    found = detect(path)
    if found is not None:
        return found
    if recordings and _json_lines(path):
        return RECORDING
    fail(f"{path}: not a known odds file format (its header matches no reader); known formats: {known} "
         "(or name one with --format)")


def _json_lines(path: Path) -> bool:
    """Whether the first non-blank byte of `path` (decompressed when gzip) opens a JSON object."""
    import gzip

    try:
        with path.open("rb") as raw:
            gz = raw.read(2) == b"\x1f\x8b"
        with gzip.open(path, "rb") if gz else path.open("rb") as f:
            return f.read(4096).lstrip()[:1] == b"{"
    except (OSError, EOFError):
        return False


def _readers(paths: Sequence[Path], names: Sequence[str]) -> list[HistoryReader]:
    from bot.feeds.history.base import reader_class

    return [reader_class(name)(path) for path, name in zip(paths, names, strict=True)]  # type: ignore[call-arg]


def _progress() -> Callable[[int, int], None] | None:
    """A progress bar on a terminal; nothing otherwise (a converted file's summary says enough)."""
    if not sys.stderr.isatty():
        return None
    from bot.engine.progress import ReplayProgress

    return ReplayProgress(tty=True)


def _quiet_logs() -> None:
    """Errors only on stderr: bad rows are counted in the command's own summary (by kind), and an
    unreadable file is its one error line."""
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="ERROR", format="{level}: {message}")


def _play_history(readers: list[HistoryReader], emit: Callable[[FeedEvent], Any]) -> None:
    """The readers' boards merged in time order (`HistoryFeed`), each given to `emit`.

    Raises:
        HistoryError: a file that cannot be read (on).
    """
    import asyncio

    from bot.clock import ReplayClock
    from bot.feeds.history.feed import HistoryFeed

    _quiet_logs()
    asyncio.run(HistoryFeed(readers, ReplayClock(), progress=_progress()).run(emit))


@app.command()
def convert(
    sources: Annotated[list[Path], typer.Argument(help="historical odds files (CSV, .csv.gz; Betfair stream files)", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="the recording to write (.jsonl.gz: gzip)")],
    fmt: FormatOpt = None,
) -> None:
    """Convert historical odds files into one recording of board records (one per board, the
    files merged in time order), which `feeds.replay` plays like any recording."""
    names = [_format_of(path, fmt, recordings=False) for path in sources]
    from bot.feeds.base import FeedError
    from bot.feeds.board import BOARD_SOURCE, encode_batch
    from bot.feeds.recording import Recorder
    from bot.types import OddsBatch

    summary = Summary()
    partial = out.with_name(f".partial-{out.name}")
    try:
        readers = _readers(sources, names)
    except (FeedError, OSError) as exc:
        fail(str(exc), code=1)
    try:
        partial.unlink(missing_ok=True)
        recorder = Recorder(partial)
    except OSError as exc:
        fail(f"{out}: cannot be written: {exc.strerror or exc}", code=1)

    async def write(event: FeedEvent) -> None:
        assert isinstance(event, OddsBatch)  # a history reader yields boards only
        recorder.write(event.received_at, BOARD_SOURCE, encode_batch(event))
        await summary.add(event)

    try:
        try:
            _play_history(readers, write)
        finally:
            recorder.close()
        partial.replace(out)
    except (FeedError, OSError) as exc:  # HistoryError: one line naming the file, line and column
        partial.unlink(missing_ok=True)
        fail(str(exc), code=1)
    bad = _bad({f"{r.name}:{r.path.name}": r.stats for r in readers})
    skipped = f"; bad rows skipped: {', '.join(f'{k} {v}' for k, v in bad.items())}" if bad else ""
    print(f"{out}: {summary.line()} from {len(sources)} file(s){skipped}")


def _bad(stats: dict[str, FeedStats]) -> dict[str, int]:
    """Bad input by kind, summed over `stats`."""
    from bot.feeds.base import GOOD_COUNTERS

    total: Counter[str] = Counter()
    for counter in stats.values():
        total.update({k: v for k, v in counter.items() if k not in GOOD_COUNTERS and v})
    return dict(total.most_common())


@app.command()
def info(
    file: Annotated[Path, typer.Argument(help="a historical odds file or a recording (.jsonl[.gz])",
                                         show_default=False)],
    fmt: FormatOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """What a file holds: format, boards, quotes (withdrawn), fixtures, sports, bookmakers and
    markets with their quote counts, the time span (UTC) and the bad input skipped, by kind."""
    name = _format_of(file, fmt, recordings=True)
    from bot.feeds.base import FeedError

    summary = Summary()
    stats: dict[str, FeedStats] = {}
    error: str | None = None
    try:
        if name == RECORDING:
            name = _recording_kind(file)
            _play_recording(file, summary, stats)
        else:
            reader = _readers([file], [name])[0]
            stats[name] = reader.stats
            _play_history([reader], summary.add)
    except (FeedError, OSError) as exc:  # what was read before it is still shown
        error = str(exc)
    if error is not None and not summary.boards and not summary.other_events:
        fail(error, code=1)
    report = {"file": str(file), "format": name, **summary.as_dict(), "bad": _bad(stats), "error": error}
    if as_json:
        import json

        print(json.dumps(report, indent=2))
    else:
        _render(report)
    if error is not None:
        fail(error, code=1)


def _recording_kind(path: Path) -> str:
    """"recording" or "oddsapi_snapshots", told by the first readable record (`RecordReader`)."""
    from bot.feeds.recording import DamagedFile, RecordReader

    reader = RecordReader(path)
    records = iter(reader)
    try:
        next(records, None)
    except DamagedFile:
        pass  # the replay names it
    return reader.kind or RECORDING


def _play_recording(path: Path, summary: Summary, stats: dict[str, FeedStats]) -> None:
    """Replays a recording (`ReplayFeed`) into `summary`; `stats` gets the replay's counters
    before it starts, so they are there when it fails at its end.

    Raises:
        DamagedFile: bot/feeds/replay.py, module docstring.
    """
    import asyncio

    from bot.clock import ReplayClock
    from bot.feeds.replay import ReplayFeed

    _quiet_logs()
    feed = ReplayFeed(path, ReplayClock(), progress=_progress())
    stats.update(feed.stats)
    asyncio.run(feed.run(summary.add))


def _render(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=report["file"], show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    for key in ("format", "boards", "quotes", "withdrawn", "fixtures", "first_board", "last_board"):
        table.add_row(key.replace("_", " "), str(report[key]))
    for key in ("sports", "bookmakers", "markets", "bad"):
        counts = report[key]
        table.add_row(key, ", ".join(f"{k} {v}" for k, v in counts.items()) if counts else "-")
    console.print(table)
