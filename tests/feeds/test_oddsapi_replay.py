"""The Odds API snapshot diffing and the replay of recordings and snapshot files, on the real
NFL 2025-11-16 responses."""

from __future__ import annotations

import gzip
import itertools
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.clock import ReplayClock
from bot.feeds.boltodds_decode import BoltOddsStream
from bot.feeds.oddsapi_decode import OddsApiDiffer, parse_price
from bot.feeds.recording import Recorder, read_records
from bot.feeds.replay import ReplayFeed
from bot.market.book import OddsBook
from bot.market.odds import OddsError
from bot.types import BookCleared, FeedEvent, FeedStatus, FixtureKey, MarketKey, OddsBatch, OddsUpdate, Selection

from .conftest import DATA, unbatched
from .fuzz import mutate, mutations

FIRST3 = DATA / "oddsapi" / "nfl_snapshots_2025-11-16_first3.jsonl.gz"
BUNDLED = Path(__file__).resolve().parents[2] / "bot" / "data" / "nfl_raw_snapshots_2025-11-16.jsonl.gz"
DOLPHINS = FixtureKey("NFL", "Miami Dolphins", "Washington Commanders", datetime(2025, 11, 16, 14, 30, tzinfo=UTC))


def snapshots(path: Path) -> list[dict]:
    with gzip.open(path, "rb") as f:
        return [orjson.loads(line) for line in f]


def flat(snapshot: dict) -> dict[tuple, int]:
    """(event, book, market, outcome, point) -> American price, straight from the raw JSON."""
    return {
        (e["id"], b["key"], m["key"], o["name"], o.get("point")): o["price"]
        for e in snapshot["data"] for b in e["bookmakers"] for m in b["markets"] for o in m["outcomes"]
    }


def test_first_snapshot_decodes_the_board() -> None:
    first = snapshots(FIRST3)[0]
    at = datetime.fromisoformat(first["timestamp"])
    [batch] = OddsApiDiffer().snapshot(first["data"], at)
    # One complete batch: the whole board at the snapshot time, applied as one step.
    assert isinstance(batch, OddsBatch) and batch.complete and batch.received_at == at
    assert batch.cleared == () and batch.unconfirmed == ()
    updates = list(batch.updates)
    assert len(updates) == len(flat(first))
    book = OddsBook(ReplayClock(at))
    book.apply_batch(batch)
    home = book.quote(Selection(DOLPHINS, MarketKey("moneyline"), "home"), "draftkings")
    away = book.quote(Selection(DOLPHINS, MarketKey("moneyline"), "away"), "draftkings")
    assert home is not None and home.american == -148 and home.price == pytest.approx(1 + 100 / 148)
    assert away is not None and away.american == 124 and away.price == pytest.approx(2.24)
    # Miami -2.5 / Washington +2.5 are one market keyed by the home handicap.
    spread = book.market(DOLPHINS, MarketKey("spread", "game", Decimal("-2.5")), "draftkings")
    assert {o: q.american for o, q in spread.items()} == {"home": -120, "away": 100}
    total = book.market(DOLPHINS, MarketKey("total", "game", Decimal("47.5")), "draftkings")
    assert {o: q.american for o, q in total.items()} == {"over": -110, "under": -110}
    assert len(book.fixtures()) == 28 and all(f.sport == "NFL" for f in book.fixtures())
    assert updates[0].feed_ids == {"oddsapi_event_id": "265f0188945bb81ec64751571eb724cb"}


def test_second_snapshot_emits_only_changes() -> None:
    first, second, _ = snapshots(FIRST3)
    differ = OddsApiDiffer()
    differ.snapshot(first["data"], datetime.fromisoformat(first["timestamp"]))
    events = unbatched(differ.snapshot(second["data"], datetime.fromisoformat(second["timestamp"])))
    a, b = flat(first), flat(second)
    changed = sum(1 for k in b if k in a and a[k] != b[k])
    appeared, vanished = len(b.keys() - a.keys()), len(a.keys() - b.keys())
    updates = [e for e in events if isinstance(e, OddsUpdate)]
    assert sum(not u.suspended for u in updates) == changed + appeared
    assert sum(u.suspended for u in updates) == vanished
    assert not any(isinstance(e, BookCleared) for e in events)


def test_event_leaving_the_board_is_cleared_and_prices_parse() -> None:
    first = snapshots(FIRST3)[0]
    differ = OddsApiDiffer()
    t0 = datetime.fromisoformat(first["timestamp"])
    differ.snapshot(first["data"], t0)
    events = differ.snapshot(first["data"][1:], t0)
    assert events == [OddsBatch("oddsapi", t0, cleared=(BookCleared("oddsapi", t0, fixture=DOLPHINS),),
                                complete=True)]
    assert parse_price(-148, "american") == (pytest.approx(1.6757, abs=1e-4), -148)
    assert parse_price(2.24, "decimal") == (2.24, 124)
    assert parse_price(150, "decimal") == (150.0, 14900)
    # The format is stated, never guessed from the magnitude: 100 is even money in American,
    # a 100.0 decimal price is 99 to 1.
    assert parse_price(100, "american") == (2.0, 100)
    assert parse_price(100.0, "decimal") == (100.0, 9900)
    with pytest.raises(OddsError):
        parse_price("abc", "american")
    with pytest.raises(OddsError):
        parse_price(2.24, "american")  # |American| < 100 is not a price


async def test_replay_bundled_snapshot_file_drives_clock_and_book() -> None:
    clock = ReplayClock()
    book = OddsBook(clock)
    seen: list[tuple[datetime, FeedEvent]] = []
    progress: list[tuple[int, int]] = []

    async def emit(event: FeedEvent) -> None:
        seen.extend((clock.now(), e) for e in unbatched([event]))
        book.apply(event)

    feed = ReplayFeed(BUNDLED, clock, progress=lambda d, t: progress.append((d, t)))
    await feed.run(emit)
    raw = snapshots(BUNDLED)
    assert progress[-1] == (42, 42) and len(progress) == 42
    assert clock.now() == datetime.fromisoformat(raw[-1]["timestamp"])
    # Every event is emitted at its snapshot's time, and in time order.
    times = [t for t, _ in seen]
    assert times == sorted(times) and times[0] == datetime.fromisoformat(raw[0]["timestamp"])
    gone = moved = 0
    for a, b in itertools.pairwise(raw):
        before = {e["id"]: e["commence_time"] for e in a["data"]}
        after = {e["id"]: e["commence_time"] for e in b["data"]}
        gone += len(before.keys() - after.keys())
        # The Odds API moves commence_time to the actual kickoff ...
        moved += sum(1 for i in before.keys() & after.keys() if before[i] != after[i])
    assert moved > 0
    # ... but a game keeps the identity it was first seen with: only games leaving the board
    # are cleared, and the book keys every game by its first-seen kickoff.
    assert sum(isinstance(e, BookCleared) for _, e in seen) == gone
    first_seen: dict[str, str] = {}
    for snap in raw:
        for e in snap["data"]:
            first_seen.setdefault(e["id"], e["commence_time"])
    assert {f.start_time for f in book.fixtures()} == {
        datetime.fromisoformat(first_seen[e["id"]]) for e in raw[-1]["data"]
    }
    assert {f.home for f in book.fixtures()} == {e["home_team"] for e in raw[-1]["data"]}
    assert feed.stats["oddsapi"].bad_total == 0


async def test_recording_round_trip_replays_like_the_live_decoder(tmp_path: Path, bolt_frames: list[bytes]) -> None:
    path = tmp_path / "rec" / "feed.jsonl.gz"
    rec = Recorder(path)
    t0 = datetime(2025, 9, 8, 10, 52, 34, tzinfo=UTC)
    for i, frame in enumerate(bolt_frames):
        rec.write(t0.replace(second=34 + i), "boltodds", frame)
    rec.write(t0.replace(second=50), "boltodds", None, status="disconnected")
    first = snapshots(FIRST3)[0]
    rec.write(t0.replace(second=55), "oddsapi", orjson.dumps(first["data"]).decode())
    rec.close()
    assert [r.source for r in read_records(path)][-2:] == ["boltodds", "oddsapi"]

    expected: list[FeedEvent] = []
    stream = BoltOddsStream()
    for i, frame in enumerate(bolt_frames):
        expected += stream.decode(frame, t0.replace(second=34 + i))
    clock = ReplayClock()
    got: list[FeedEvent] = []

    async def emit(event: FeedEvent) -> None:
        got.append(event)

    await ReplayFeed(path, clock, speed=1000.0).run(emit)
    expected, got = unbatched(expected), unbatched(got)
    assert got[: len(expected)] == expected
    assert got[len(expected)] == FeedStatus("boltodds", t0.replace(second=50), False, True, "disconnected")
    assert sum(isinstance(e, OddsUpdate) for e in got[len(expected) + 1 :]) == len(flat(first))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_real_snapshots_never_raise(data: st.DataObject) -> None:
    """Mutated real responses (junk in any field, truncated bodies) through the differ."""
    board = snapshots(FIRST3)[0]["data"][:3]
    differ = OddsApiDiffer()
    at = datetime(2025, 11, 16, 12, 40, tzinfo=UTC)
    differ.snapshot(board, at)
    mutated: object = board
    for a, b, junk in data.draw(mutations()):
        mutated = mutate(mutated, (a, b), junk)
    raw = orjson.dumps(mutated, option=orjson.OPT_NON_STR_KEYS)
    cut = data.draw(st.integers(0, len(raw)))
    for body in (mutated, raw[:cut].decode("utf-8", "replace"), board):
        for ev in unbatched(differ.snapshot(body, at)):
            assert isinstance(ev, OddsUpdate | BookCleared | FeedStatus)
            if isinstance(ev, OddsUpdate):
                assert ev.suspended == (ev.price is None) and (ev.price is None or ev.price > 1.0)
