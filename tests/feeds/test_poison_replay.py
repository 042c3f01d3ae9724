"""Damaged replay files (bot/feeds/recording.py, `RecordReader`; bot/feeds/replay.py): the
readable part is replayed, a line that is not a record is skipped and counted, damage that
cannot be read past ends the replay with one line naming the file and the offset, and `bot run`
exits non-zero with that line (bot/engine/core.py, `Engine.run`; docs/architecture.md,
"Invariants > Nothing lost, nothing silent"). Every file is made from the real bundled NFL
snapshots or a real BoltOdds recording, damaged the way disks and crashed writers damage files.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from bot.clock import ReplayClock
from bot.feeds.recording import DamagedFile, Recorder
from bot.feeds.replay import ReplayFeed
from bot.market.odds import american_to_decimal
from bot.types import FeedEvent, OddsBatch, OddsUpdate
from tests.engine.conftest import run_bot, write_config

from .conftest import unbatched
from .test_oddsapi_replay import BUNDLED, FIRST3

RAW = gzip.decompress(BUNDLED.read_bytes())
LINES = RAW.splitlines(keepends=True)  # 42 snapshot records
TIMES = [datetime.fromisoformat(orjson.loads(line)["timestamp"]) for line in LINES]
GZ = BUNDLED.read_bytes()
JUNK = bytes(b for b in range(256) if b != 0x0A) * 3  # binary junk without a line end


@dataclass
class Case:
    """A damaged file: `make(tmp)` writes it; the replay must emit the records at `replayed`
    (indices into LINES), skip `skipped` lines and end with an error matching `error`."""

    make: Callable[[Path], Path]
    replayed: list[int]
    skipped: int
    error: str


def _gz(tmp: Path, name: str, data: bytes) -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path


def _complete_lines(compressed: bytes) -> int:
    """How many whole lines a gzip prefix holds (read with zlib, independently of the bot)."""
    return zlib.decompressobj(wbits=31).decompress(compressed).count(b"\n")


def _with(lines: list[bytes], at: int, *extra: bytes) -> bytes:
    return b"".join(lines[:at]) + b"".join(extra) + b"".join(lines[at:])


CUT = int(len(GZ) * 0.6)
BAD_CRC = GZ[:-8] + bytes(b ^ 0xFF for b in GZ[-8:-4]) + GZ[-4:]
BAD_SIZE = GZ[:-4] + bytes(b ^ 0xFF for b in GZ[-4:])
OFFSET_11 = sum(map(len, LINES[:10]))  # byte offset of line 11

CASES: dict[str, Case] = {
    "truncated_gzip": Case(lambda t: _gz(t, "cut.jsonl.gz", GZ[:CUT]), list(range(_complete_lines(GZ[:CUT]))), 0,
                           rf"cut\.jsonl\.gz: unreadable from line {_complete_lines(GZ[:CUT]) + 1}, "
                           rf"byte {sum(map(len, LINES[:_complete_lines(GZ[:CUT])]))} of the decompressed data: "
                           r"EOFError: Compressed file ended"),
    "bad_crc": Case(lambda t: _gz(t, "crc.jsonl.gz", BAD_CRC), list(range(42)), 0,
                    rf"crc\.jsonl\.gz: unreadable from line 43, byte {len(RAW)} of the decompressed data: "
                    r"BadGzipFile: CRC check failed"),
    "bad_length": Case(lambda t: _gz(t, "size.jsonl.gz", BAD_SIZE), list(range(42)), 0,
                       r"size\.jsonl\.gz: unreadable from line 43, .*Incorrect length"),
    "trailing_junk": Case(lambda t: _gz(t, "tail.jsonl.gz", GZ + JUNK), list(range(42)), 0,
                          r"tail\.jsonl\.gz: unreadable from line 43, .*Not a gzipped file"),
    "garbage_line": Case(lambda t: _gz(t, "garbage.jsonl.gz", gzip.compress(_with(LINES, 10, b"not json at all\n"))),
                         list(range(42)), 1,
                         rf"garbage\.jsonl\.gz: 1 unreadable line\(s\) skipped, the first at line 11, byte {OFFSET_11}: "
                         r"JSONDecodeError"),
    "non_record_json": Case(lambda t: _gz(t, "shape.jsonl", _with(LINES, 10, b'{"hello": 1}\n', b"[1, 2]\n",
                                                                  b'{"timestamp": "2025-11-16T13:00:00", "data": []}\n',
                                                                  b'{"timestamp": 7, "data": []}\n')),
                            list(range(42)), 4, r"shape\.jsonl: 4 unreadable line\(s\) skipped, the first at line 11"),
    "binary_junk_line": Case(lambda t: _gz(t, "junk.jsonl.gz", gzip.compress(_with(LINES, 5, JUNK + b"\n"))),
                             list(range(42)), 1, r"junk\.jsonl\.gz: 1 unreadable line\(s\) skipped, the first at line 6"),
    "nul_block": Case(lambda t: _gz(t, "nul.jsonl", _with(LINES, 20, b"\x00" * 4096 + b"\n")), list(range(42)), 1,
                      r"nul\.jsonl: 1 unreadable line\(s\) skipped, the first at line 21"),
    "truncated_last_line": Case(lambda t: _gz(t, "short.jsonl", RAW[: len(RAW) - 1000]), list(range(41)), 1,
                                r"short\.jsonl: 1 unreadable line\(s\) skipped, the first at line 42"),
    "corrupt_deflate": Case(lambda t: _gz(t, "flip.jsonl.gz", GZ[: len(GZ) // 2] + b"\xaa" * 64 + GZ[len(GZ) // 2 + 64:]),
                            list(range(12)), 30, r"flip\.jsonl\.gz: unreadable from line 43, .*CRC check failed.*"
                            r"30 unreadable line\(s\) skipped before, the first at line 13"),
    "first_line_garbage": Case(lambda t: _gz(t, "head.jsonl.gz", gzip.compress(b"\x89PNG junk\n" + RAW)),
                               list(range(42)), 1, r"head\.jsonl\.gz: 1 unreadable line\(s\) skipped, the first at line 1, "
                               r"byte 0"),
    "empty_file": Case(lambda t: _gz(t, "empty.jsonl.gz", b""), [], 0, r"empty\.jsonl\.gz: not a replay file: empty file"),
    "bad_gzip_header": Case(lambda t: _gz(t, "head2.jsonl.gz", GZ[:2] + b"\x07" + GZ[3:]), [], 0,
                            r"head2\.jsonl\.gz: unreadable from line 1, byte 0 of the decompressed data: "
                            r"BadGzipFile: Unknown compression method"),
    "no_record_at_all": Case(lambda t: _gz(t, "text.jsonl", b"hello\nworld\n"), [], 2,
                             r"text\.jsonl: not a replay file: no line is a feed recording record"),
}


async def _replay(path: Path) -> tuple[list[FeedEvent], ReplayFeed, DamagedFile | None]:
    events: list[FeedEvent] = []

    async def emit(event: FeedEvent) -> None:
        events.append(event)

    feed = ReplayFeed(path, ReplayClock(), progress=lambda done, total: None)
    try:
        await feed.run(emit)
    except DamagedFile as exc:
        return events, feed, exc
    return events, feed, None


@pytest.mark.parametrize("name", list(CASES))
async def test_a_damaged_replay_replays_what_it_can_then_fails_in_one_line(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    path = case.make(tmp_path)
    events, feed, error = await _replay(path)
    # Exactly the readable records, in order, each as the one batch the live decoder makes.
    assert [e.received_at for e in events] == [TIMES[i] for i in case.replayed]
    assert all(isinstance(e, OddsBatch) and e.complete for e in events)
    assert feed.stats["replay"]["unreadable_line"] == case.skipped
    assert error is not None, "a damaged replay must fail"
    message = str(error)
    assert "\n" not in message and str(path) in message, message
    assert re.search(case.error, message), message


async def test_the_undamaged_file_replays_whole_without_error(tmp_path: Path) -> None:
    events, feed, error = await _replay(BUNDLED)
    assert error is None and len(events) == 42 and feed.stats["replay"].bad_total == 0
    # A plain file with a gzip name, and a gzip file with a plain name, are read by content.
    swapped = tmp_path / "plain.jsonl.gz"
    swapped.write_bytes(RAW)
    events2, _, error2 = await _replay(swapped)
    assert error2 is None and [e.received_at for e in events2] == TIMES


async def test_a_recording_with_a_poison_record_replays_the_rest(tmp_path: Path, bolt_frames: list[bytes]) -> None:
    """Our recording format: a record with a naive `ts` or a non-string `raw` is skipped; a
    record whose body holds a poison price is not damage (the decoder drops that outcome)."""
    path = tmp_path / "rec.jsonl.gz"
    rec = Recorder(path)
    t0 = datetime(2025, 9, 8, 10, 52, 34, tzinfo=UTC)
    poison = orjson.loads(bolt_frames[-1])
    key = next(iter(poison["data"]["outcomes"]))
    poison["data"]["outcomes"][key]["odds"] = "1e307"
    for i, frame in enumerate([*bolt_frames, orjson.dumps(poison)]):
        rec.write(t0.replace(second=i), "boltodds", frame)
    rec.close()
    with gzip.open(path, "ab") as f:
        f.write(b'{"ts": "2025-09-08T10:53:00", "source": "boltodds", "raw": "{}"}\n')
        f.write(b'{"ts": "2025-09-08T10:53:00+00:00", "source": "boltodds", "raw": 12}\n')
    events, feed, error = await _replay(path)
    assert feed.stats["boltodds"]["bad_outcome"] == 1 and feed.stats["boltodds"]["updates"] == 1910 + len(
        poison["data"]["outcomes"]) - 1
    # The poison frame is a replace set: the outcome it could not price is withdrawn (one more,
    # suspended, update), never left at its old price.
    updates = [u for u in unbatched(events) if isinstance(u, OddsUpdate)]
    n = len(poison["data"]["outcomes"])
    assert len(updates) == 1910 + (n - 1) + 1
    assert [u.suspended for u in updates[-n:]] == [False] * (n - 1) + [True]
    assert error is not None and re.search(r"2 unreadable line\(s\) skipped, the first at line 11", str(error))


async def test_recorded_oddsapi_bodies_are_read_in_their_recorded_format(tmp_path: Path) -> None:
    """Our recordings state the odds format of each The Odds API body; a snapshot file states
    none and is read in the configured one (never guessed)."""
    decimal = orjson.loads(gzip.decompress(FIRST3.read_bytes()).splitlines()[0])["data"][:1]
    for book in decimal[0]["bookmakers"]:
        for market in book["markets"]:
            for o in market["outcomes"]:
                o["price"] = round(american_to_decimal(o["price"]), 4)
    decimal[0]["bookmakers"][0]["markets"][0]["outcomes"][0]["price"] = 100.0
    path = tmp_path / "oddsapi.jsonl"
    rec = Recorder(path)
    rec.write(datetime(2025, 11, 16, 12, 40, tzinfo=UTC), "oddsapi", orjson.dumps(decimal), odds_format="decimal")
    rec.close()
    events, _, error = await _replay(path)
    assert error is None
    [batch] = events
    assert isinstance(batch, OddsBatch) and batch.updates[0].price == 100.0  # not +100 = 2.0
    snapshot = tmp_path / "decimal_snapshots.jsonl"
    snapshot.write_bytes(orjson.dumps({"timestamp": "2025-11-16T12:40:00Z", "data": decimal}) + b"\n")
    got: list[FeedEvent] = []

    async def emit(event: FeedEvent) -> None:
        got.append(event)

    await ReplayFeed(snapshot, ReplayClock(), odds_format="decimal").run(emit)
    assert isinstance(got[0], OddsBatch) and got[0].updates[0].price == 100.0
    # Read as American (the default) the decimal file is unreadable, section by section: its
    # prices are not guessed into decimal, and its 100.0 never becomes American +100 (2.0).
    got.clear()
    american = ReplayFeed(snapshot, ReplayClock())
    await american.run(emit)
    assert isinstance(got[0], OddsBatch) and got[0].updates == ()
    assert american.stats["oddsapi"]["bad_bookmaker"] == len(decimal[0]["bookmakers"])


# -- `bot run` on damaged files: the exit code and the one line ---------------------------------

ENGINE_STOPPED = re.compile(r"engine stopped: events=(\d+) ")


@pytest.mark.parametrize("name", ["truncated_gzip", "garbage_line", "bad_crc"])
def test_bot_run_on_a_damaged_replay_exits_non_zero_naming_file_and_offset(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    path = case.make(tmp_path)
    cfg = write_config(tmp_path, feeds={"replay": {"path": str(path), "format": "auto", "speed": 0}},
                       logging={"level": "INFO", "json_file": False, "progress": False})
    result = run_bot("run", "-c", str(cfg), cwd=tmp_path, timeout=300)
    assert result.returncode == 1, result.stderr[-3000:]
    failed = [line for line in result.stderr.splitlines() if "feed replay failed: " in line]
    assert failed and str(path) in failed[-1] and re.search(case.error, failed[-1]), result.stderr[-3000:]
    # The readable part was replayed: one engine event per readable snapshot.
    [stopped] = ENGINE_STOPPED.findall(result.stderr)
    assert int(stopped) == len(case.replayed)
    assert "Traceback" not in result.stderr
