"""`bot data convert` and `bot data info` (bot/feeds/history/cli.py), run through their typer app.

`convert` then `ReplayFeed` replays the same batches, in the same order on the same clock, as the
readers give directly (several files merged in time order); a file it cannot read leaves no output.
`info`'s figures equal counts computed here from the CSV with the csv module alone, and are the
same for the CSV and for its conversion. A file no reader knows exits 2 with one line.

Data: the generic odds CSV extract of tests/data/history_cli/ (README.md there), whose last three
rows are bad on purpose (bad_price, unknown_market, bad_time).
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import heapq
import json
import subprocess
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.clock import ReplayClock
from bot.feeds.history.cli import app
from bot.feeds.history.odds_csv import OddsCsvReader
from bot.feeds.replay import ReplayFeed
from bot.types import FeedEvent

ROOT = Path(__file__).resolve().parents[2]
ODDS_CSV = ROOT / "tests" / "data" / "history_cli" / "odds.csv"
ENV = {"COLUMNS": "200", "TERM": "dumb"}
runner = CliRunner()


def _invoke(*args: str | Path) -> tuple[int, str, str]:
    result = runner.invoke(app, [str(a) for a in args], env=ENV)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def _split(tmp_path: Path) -> tuple[Path, Path]:
    """The extract as two files: its soccer rows and its NFL rows (same header)."""
    lines = ODDS_CSV.read_text().splitlines(keepends=True)
    soccer, nfl = tmp_path / "soccer.csv", tmp_path / "nfl.csv"
    soccer.write_text(lines[0] + "".join(x for x in lines[1:] if ",NFL," not in x))
    nfl.write_text(lines[0] + "".join(x for x in lines[1:] if ",NFL," in x))
    return soccer, nfl


def _replay(path: Path) -> tuple[list[FeedEvent], list[datetime]]:
    """The events a replay of `path` emits, and the replay clock at each (the tests are not
    async: the commands run their own event loop)."""
    clock = ReplayClock()
    events: list[FeedEvent] = []
    seen: list[datetime] = []

    async def emit(event: FeedEvent) -> None:
        events.append(event)
        seen.append(clock.now())

    asyncio.run(ReplayFeed(path, clock).run(emit))
    return events, seen


# --- convert ------------------------------------------------------------------------------------

def test_convert_then_replay_gives_the_readers_batches(tmp_path: Path) -> None:
    out = tmp_path / "out" / "odds.jsonl.gz"
    code, stdout, _ = _invoke("convert", ODDS_CSV, "-o", out)
    assert code == 0
    direct = list(OddsCsvReader(ODDS_CSV).batches())
    quotes = sum(len(b.updates) for b in direct)
    assert stdout.strip() == (f"{out}: {len(direct)} boards, {quotes} quotes (6 withdrawn), 7 fixtures, "
                              f"{direct[0].received_at.isoformat()} to {direct[-1].received_at.isoformat()} from "
                              "1 file(s); bad rows skipped: bad_price 1, unknown_market 1, bad_time 1")
    with gzip.open(out) as f:  # .gz: written compressed
        assert f.read(1) == b"{"
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # the partial file was renamed

    events, seen = _replay(out)
    assert events == direct
    assert seen == [b.received_at for b in direct]


def test_convert_merges_several_files_in_time_order(tmp_path: Path) -> None:
    soccer, nfl = _split(tmp_path)
    out = tmp_path / "merged.jsonl"
    code, stdout, _ = _invoke("convert", nfl, soccer, "-o", out, "--format", "odds_csv")
    assert code == 0 and "from 2 file(s)" in stdout
    expected = list(heapq.merge(OddsCsvReader(nfl).batches(), OddsCsvReader(soccer).batches(),
                                key=lambda b: b.received_at))
    assert {b.updates[0].selection.fixture.sport for b in expected} == {"soccer", "NFL"}
    events, seen = _replay(out)
    assert events == expected
    assert seen == sorted(seen)


def test_convert_writes_nothing_when_a_file_cannot_be_read(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("time,sport,home\n2025-11-16T12:00:00Z,NFL,Bears\n")  # the format's columns are missing
    out = tmp_path / "out.jsonl.gz"
    code, stdout, stderr = _invoke("convert", ODDS_CSV, bad, "-o", out, "--format", "odds_csv")
    assert code == 1 and stdout == ""
    assert stderr.count("\n") == 1 and str(bad) in stderr and "line 1" in stderr
    assert list(tmp_path.iterdir()) == [bad]  # neither OUT nor the partial file


def test_info_of_a_file_its_reader_refuses_exits_1_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("time,sport,home\n2025-11-16T12:00:00Z,NFL,Bears\n")
    code, stdout, stderr = _invoke("info", bad, "--format", "odds_csv", "--json")
    assert code == 1 and stdout == ""
    assert stderr.count("\n") == 1 and str(bad) in stderr and "missing column" in stderr


def test_convert_replaces_an_existing_output(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    for _ in range(2):
        assert _invoke("convert", ODDS_CSV, "-o", out)[0] == 0
    assert len(out.read_text().splitlines()) == len(list(OddsCsvReader(ODDS_CSV).batches()))


# --- unknown files ------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["info", "convert"])
def test_an_unknown_file_exits_2_with_one_line(tmp_path: Path, command: str) -> None:
    unknown = tmp_path / "scores.csv"
    unknown.write_text("team,score\nBears,17\n")
    args = ["-o", tmp_path / "out.jsonl"] if command == "convert" else []
    code, stdout, stderr = _invoke(command, unknown, *args)
    assert code == 2 and stdout == ""
    assert stderr.count("\n") == 1
    assert str(unknown) in stderr and "odds_csv" in stderr and "football_data" in stderr
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize("args", [["--format", "nope"], []])
def test_an_unknown_format_or_a_missing_file_exits_2(tmp_path: Path, args: list[str]) -> None:
    path = ODDS_CSV if args else tmp_path / "missing.csv"
    code, _, stderr = _invoke("info", path, *args)
    assert code == 2 and stderr.count("\n") == 1
    assert ("nope" in stderr and "odds_csv" in stderr) if args else str(path) in stderr


# --- info ---------------------------------------------------------------------------------------

def _expected_info() -> dict[str, object]:
    """The extract's figures from its rows alone: a row is good when its time is ISO 8601, its
    market one of the format's four and its price a number or empty (withdrawn)."""
    good = []
    with ODDS_CSV.open(newline="") as f:
        for row in csv.DictReader(f):
            try:
                datetime.fromisoformat(row["time"])
                float(row["price"] or row["price_american"] or "0")
            except ValueError:
                continue
            if row["market"] in ("moneyline", "1x2", "spread", "total"):
                good.append(row)
    times = sorted({datetime.fromisoformat(r["time"]) for r in good})
    fixtures = {(r["sport"], r["home"], r["away"], r["start_time"]) for r in good}
    return {
        "format": "odds_csv", "boards": len(times), "quotes": len(good),
        "withdrawn": sum(not r["price"] and not r["price_american"] for r in good),
        "fixtures": len(fixtures), "first_board": times[0].isoformat(), "last_board": times[-1].isoformat(),
        "sports": dict(Counter(f[0] for f in fixtures)), "bookmakers": dict(Counter(r["bookmaker"] for r in good)),
        "markets": dict(Counter(r["market"] for r in good)),
        "bad": {"bad_price": 1, "unknown_market": 1, "bad_time": 1}, "error": None,
    }


def test_info_json_counts_what_the_file_holds() -> None:
    code, stdout, _ = _invoke("info", ODDS_CSV, "--json")
    assert code == 0
    got = json.loads(stdout)
    expected = _expected_info()
    assert {k: got[k] for k in expected} == expected
    assert got["file"] == str(ODDS_CSV)


def test_info_of_the_conversion_matches_info_of_the_csv(tmp_path: Path) -> None:
    out = tmp_path / "odds.jsonl.gz"
    assert _invoke("convert", ODDS_CSV, "-o", out)[0] == 0
    code, stdout, _ = _invoke("info", out, "--json")
    assert code == 0
    got = json.loads(stdout)
    expected = _expected_info() | {"format": "recording", "bad": {}}
    assert {k: got[k] for k in expected} == expected


def test_info_of_a_damaged_recording_shows_what_was_read_and_exits_1(tmp_path: Path) -> None:
    out = tmp_path / "odds.jsonl"
    assert _invoke("convert", ODDS_CSV, "-o", out)[0] == 0
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:3]) + "not a record\n" + "".join(lines[3:]))
    code, stdout, stderr = _invoke("info", out, "--json")
    assert code == 1
    got = json.loads(stdout)
    assert got["boards"] == len(lines) and got["bad"] == {"unreadable_line": 1}
    assert "line 4" in got["error"] and stderr.strip() == got["error"]


def test_info_table_names_the_figures() -> None:
    code, stdout, _ = _invoke("info", ODDS_CSV)
    assert code == 0
    expected = _expected_info()
    for label in ("format", "boards", "quotes", "withdrawn", "fixtures", "first board", "last board", "bookmakers",
                  "markets", "bad"):
        assert label in stdout
    assert f"pinnacle {expected['bookmakers']['pinnacle']}" in stdout  # type: ignore[index]
    assert "bad_price 1" in stdout


# --- light at import ----------------------------------------------------------------------------

def test_importing_the_app_loads_no_reader_feed_or_rich() -> None:
    code = "import bot.feeds.history.cli, sys; print(sorted(sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
                            timeout=60)
    loaded = set(json.loads(result.stdout.replace("'", '"')))
    heavy = {"orjson", "loguru", "asyncio", "rich", "bot.feeds.history.base", "bot.feeds.history.odds_csv",
             "bot.feeds.replay", "bot.feeds.recording", "bot.feeds.board", "bot.types"}
    assert loaded & heavy == set()


def test_the_bot_command_line_mounts_data() -> None:
    from bot.cli import app as bot_app

    result = runner.invoke(bot_app, ["data", "info", str(ODDS_CSV), "--json"], env=ENV)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["quotes"] == _expected_info()["quotes"]
