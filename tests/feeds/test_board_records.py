"""Board records (bot/feeds/board.py; the record: bot/feeds/recording.py, module docstring): an
`OddsBatch` written as a board and read back is the same batch, field for field, lines exact to
the digit; a recording of board records replays through `ReplayFeed` into the batches written,
one per record, on the replay clock; a board that cannot be decoded is counted and fails the
replay at its end, like any record the decoders cannot read (bot/feeds/replay.py).

Real batches: the generic odds CSV extract of tests/data/history_cli/ (README.md there: 1X2 with
draws, quarter Asian handicap lines, withdrawals, The Odds API event ids as feed ids) and the
Betfair Exchange Stream recordings of tests/data/betfair_stream/ (ladders: back and lay depth,
lays alone, suspended runners, last traded prices).
"""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.clock import ReplayClock
from bot.feeds.board import BOARD_SOURCE, BoardDecoder, decode_board, encode_batch
from bot.feeds.history.betfair import BetfairStreamReader
from bot.feeds.history.odds_csv import OddsCsvReader
from bot.feeds.recording import DamagedFile, Recorder
from bot.feeds.replay import ReplayFeed
from bot.types import BookCleared, FeedEvent, FixtureKey, Ladder, MarketKey, OddsBatch, OddsUpdate, Selection

ODDS_CSV = Path(__file__).resolve().parents[1] / "data" / "history_cli" / "odds.csv"
BETFAIR = Path(__file__).resolve().parents[1] / "data" / "betfair_stream"
T0 = datetime(2025, 11, 16, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def real_batches() -> list[OddsBatch]:
    return list(OddsCsvReader(ODDS_CSV).batches())


def _selection(line: Decimal | None = Decimal("2.5"), market: str = "total") -> Selection:
    outcome = "home" if market == "spread" else "over"
    return Selection(FixtureKey("EPL", "Arsenal", "Chelsea", datetime(2025, 11, 16, 15, tzinfo=UTC)),
                     MarketKey(market, "game", line), outcome)


def _update(line: Decimal | None) -> OddsUpdate:
    return OddsUpdate("odds_csv", "pinnacle", _selection(line), 1.9, -111, False, T0, T0)


def _roundtrip(batch: OddsBatch) -> OddsBatch:
    return decode_board(encode_batch(batch), batch.received_at)


def _lines(batches: list[OddsBatch]) -> list[str]:
    return [str(u.selection.market.line) for b in batches for u in b.updates]


# --- round trip ---------------------------------------------------------------------------------

def test_real_boards_round_trip_exactly(real_batches: list[OddsBatch]) -> None:
    updates = [u for b in real_batches for u in b.updates]
    assert {"1x2", "spread", "total", "moneyline"} <= {u.selection.market.type for u in updates}
    assert any(u.selection.outcome == "draw" for u in updates)
    assert {Decimal("-0.25"), Decimal("0.25"), Decimal("1.75"), Decimal("-1.25")} <= \
        {u.selection.market.line for u in updates}
    assert any(u.price is None for u in updates) and any(u.feed_ids for u in updates)

    decoded = [_roundtrip(b) for b in real_batches]
    assert decoded == real_batches
    assert _lines(decoded) == _lines(real_batches)  # Decimal text too: "1.75" stays "1.75"


@pytest.mark.parametrize("name", ["1.200806927.gz", "BASIC-1.132153978", "nautilus/1-206064380.bz2"])
def test_real_exchange_boards_round_trip_with_their_ladders(name: str) -> None:
    batches = list(BetfairStreamReader(BETFAIR / name).batches())
    updates = [u for b in batches for u in b.updates]
    assert all(u.ladder is not None for u in updates)
    assert any(u.suspended for u in updates)
    if name != "BASIC-1.132153978":  # the BASIC tier has last traded prices alone
        assert any(u.price is None and not u.suspended for u in updates)  # a lay alone: not suspended
        assert any(len(u.ladder.lay) > 1 for u in updates if u.ladder is not None)
    assert [_roundtrip(b) for b in batches] == batches


@pytest.mark.parametrize("line", ["2.25", "-0.25", "0.75", "-1.75", "44", "0", "2.50", "-3.5", "1E+1"])
def test_lines_survive_as_the_same_decimal_text(line: str) -> None:
    batch = OddsBatch("odds_csv", T0, (_update(line=Decimal(line)),))
    got = _roundtrip(batch).updates[0].selection.market.line
    assert got == Decimal(line) and str(got) == line


def test_withdrawn_quote_is_written_without_its_price() -> None:
    suspended = OddsUpdate("odds_csv", "pinnacle", _selection(), 1.9, None, True, T0, T0)
    quote = orjson.loads(encode_batch(OddsBatch("odds_csv", T0, (suspended,))))["quotes"][0]
    assert quote[9] is None
    update = decode_board(encode_batch(OddsBatch("odds_csv", T0, (suspended,))), T0).updates[0]
    assert update.price is None and update.suspended


def test_the_row_has_the_documented_cells() -> None:
    update = OddsUpdate("odds_csv", "bet365", _selection(line=Decimal("-0.25"), market="spread"), 1.95, -105,
                        False, T0, T0, {"fixture_id": "abc"})
    body = orjson.loads(encode_batch(OddsBatch("odds_csv", T0, (update,), complete=True)))
    assert body == {"v": 1, "source": "odds_csv", "complete": True, "quotes": [
        ["EPL", "2025-11-16T15:00:00+00:00", "Arsenal", "Chelsea", "spread", "game", "-0.25", "home", "bet365",
         1.95, -105, {"fixture_id": "abc"}]]}


texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=8)
times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1),
                     timezones=st.just(UTC))
lines = st.none() | st.decimals(min_value=-200, max_value=200, places=2, allow_nan=False) | \
    st.integers(-40, 40).map(lambda q: Decimal(q) / 4)
prices = st.none() | st.floats(min_value=1.0001, max_value=10_001.0)
fixtures = st.builds(FixtureKey, texts, texts, texts, times)


sizes = st.floats(min_value=0, max_value=1e9)
levels = st.lists(st.tuples(st.floats(min_value=1.01, max_value=1000.0), sizes), max_size=3).map(tuple)
ladders = st.builds(Ladder, levels, levels, st.none() | st.floats(min_value=1.01, max_value=1000.0), st.none() | sizes)


@st.composite
def updates(draw: st.DrawFn, source: str, at: datetime) -> OddsUpdate:
    price = draw(prices)
    ladder = draw(st.none() | ladders)
    # a laddered quote without a back price may be suspended or not (a lay alone)
    suspended = price is None and (ladder is None or draw(st.booleans()))
    selection = Selection(draw(fixtures), MarketKey(draw(st.sampled_from(["moneyline", "1x2", "spread", "total"])),
                                                    draw(st.sampled_from(["game", "1h", "reg"])), draw(lines)),
                          draw(st.sampled_from(["home", "away", "draw", "over", "under"])))
    return OddsUpdate(draw(st.sampled_from([source, "other"])), draw(texts), selection, price,
                      draw(st.none() | st.integers(100, 1_000_000) | st.integers(-1_000_000, -100)),
                      suspended, draw(st.sampled_from([at, at - timedelta(seconds=7)])), at,
                      draw(st.dictionaries(texts, texts, max_size=2)), None, ladder)


@st.composite
def batches(draw: st.DrawFn) -> OddsBatch:
    at = draw(times)
    source = draw(st.sampled_from(["odds_csv", "oddsapi"]))
    cleared = draw(st.lists(st.builds(BookCleared, texts, times, st.none() | texts, st.none() | texts,
                                      st.none() | fixtures), max_size=2))
    unconfirmed = draw(st.lists(st.tuples(fixtures, st.none() | texts), max_size=2))
    return OddsBatch(source, at, tuple(draw(st.lists(updates(source, at), max_size=6))), tuple(cleared),
                     draw(st.booleans()), tuple(unconfirmed))


@settings(max_examples=150, deadline=None)
@given(batches())
def test_any_batch_round_trips_exactly(batch: OddsBatch) -> None:
    decoded = _roundtrip(batch)
    assert decoded == batch
    assert _lines([decoded]) == _lines([batch])


@settings(max_examples=50, deadline=None)
@given(st.lists(batches(), max_size=4))
def test_one_decoder_decodes_many_boards_exactly(boards: list[OddsBatch]) -> None:
    decoder = BoardDecoder()  # as a replay does: objects shared across boards
    assert [decoder.decode(encode_batch(b), b.received_at) for b in boards * 2] == boards * 2


# --- bad boards ---------------------------------------------------------------------------------

GOOD_ROW = ["EPL", "2025-11-16T15:00:00+00:00", "Arsenal", "Chelsea", "total", "game", "2.5", "over", "bet365",
            1.9, None, None]


def _board(**changes: object) -> str:
    body: dict[str, object] = {"v": 1, "source": "odds_csv", "complete": False, "quotes": [GOOD_ROW]}
    body.update(changes)
    return orjson.dumps(body).decode()


def _row(index: int, value: object) -> list[object]:
    row = list(GOOD_ROW)
    row[index] = value
    return row


@pytest.mark.parametrize(("raw", "why"), [
    ("{not json", "not JSON"),
    ("[1, 2]", "JSON object"),
    (_board(v=2), "version"),
    (_board(complete="yes"), "complete"),
    (_board(quotes={"a": 1}), "quotes must be a list"),
    (_board(quotes=[GOOD_ROW[:5]]), "quote 0"),
    (_board(quotes=[_row(9, 0.5)]), "price"),
    (_board(quotes=[_row(9, "1.9")]), "price"),
    (_board(quotes=[_row(10, 50)]), "american"),
    (_board(quotes=[_row(6, 2.5)]), "line"),
    (_board(quotes=[_row(6, "NaN")]), "line"),
    (_board(quotes=[_row(6, "two")]), "line"),
    (_board(quotes=[_row(1, "2025-11-16T15:00:00")]), "UTC offset"),
    (_board(quotes=[_row(1, "soon")]), "isoformat"),
    (_board(quotes=[_row(2, ["Arsenal"])]), "home"),
    (_board(quotes=[_row(11, ["id"])]), "feed_ids"),
    (_board(quotes=[GOOD_ROW, _row(8, "")]), "quote 1: bookmaker"),
    (_board(cleared=[["odds_csv"]]), "cleared 0"),
    (_board(unconfirmed=[[["EPL"], None]]), "unconfirmed 0"),
    (_board(ladders={"0": []}), "ladders must be a list"),
    (_board(ladders=[[0, False, [], []]]), "ladder 0: must be"),
    (_board(ladders=[[1, False, [], [], None, None]]), "ladder 0: quote index"),
    (_board(ladders=[[0, False, [], [], None, None], [0, False, [], [], None, None]]), "ladder 1: quote index"),
    (_board(ladders=[[0, "no", [], [], None, None]]), "ladder 0: suspended"),
    (_board(ladders=[[0, True, [], [], None, None]]), "ladder 0: a suspended quote has no price"),
    (_board(ladders=[[0, False, [[0.5, 10.0]], [], None, None]]), "ladder 0: price"),
    (_board(ladders=[[0, False, [], [[2.0, -1.0]], None, None]]), "ladder 0: lay size"),
    (_board(ladders=[[0, False, [], [[2.0]], None, None]]), "ladder 0: a lay level"),
    (_board(ladders=[[0, False, [], [[2.0, None]], None, None]]), "ladder 0: a lay level must have"),
    (_board(ladders=[[0, False, [], [], None, "lots"]]), "ladder 0: volume"),
])
def test_a_bad_board_is_a_one_line_value_error(raw: str, why: str) -> None:
    with pytest.raises(ValueError, match=why) as caught:
        decode_board(raw, T0)
    assert "\n" not in str(caught.value)


# --- replay -------------------------------------------------------------------------------------

async def _replay(path: Path) -> tuple[list[FeedEvent], list[datetime], ReplayFeed]:
    """The events a replay of `path` emits, and the replay clock at each."""
    clock = ReplayClock()
    feed = ReplayFeed(path, clock)
    events: list[FeedEvent] = []
    seen: list[datetime] = []

    async def emit(event: FeedEvent) -> None:
        events.append(event)
        seen.append(clock.now())

    await feed.run(emit)
    return events, seen, feed


def _record(path: Path, batches: list[OddsBatch]) -> None:
    recorder = Recorder(path)
    for batch in batches:
        recorder.write(batch.received_at, BOARD_SOURCE, encode_batch(batch))
    recorder.close()


async def test_a_recording_of_boards_replays_into_the_same_batches(tmp_path: Path,
                                                                   real_batches: list[OddsBatch]) -> None:
    path = tmp_path / "boards.jsonl.gz"
    _record(path, real_batches)
    with gzip.open(path, "rb") as f:
        records = [orjson.loads(line) for line in f]
    assert [r["source"] for r in records] == ["board"] * len(real_batches)
    assert [datetime.fromisoformat(r["ts"]) for r in records] == [b.received_at for b in real_batches]

    events, seen, feed = await _replay(path)
    assert events == real_batches  # one OddsBatch per record, whole
    assert seen == [b.received_at for b in real_batches]  # the clock is at the board's time
    assert feed.stats["board"]["frames"] == len(real_batches)
    assert feed.stats["board"]["updates"] == sum(len(b.updates) for b in real_batches)


@pytest.mark.parametrize("bad", ['{"v": 1, "source": "odds_csv", "complete": false, "quotes": [[1]]}', None])
async def test_a_malformed_board_is_counted_and_fails_the_replay_at_its_end(
        tmp_path: Path, real_batches: list[OddsBatch], bad: str | None) -> None:
    first, second = real_batches[:2]
    path = tmp_path / "damaged.jsonl"
    recorder = Recorder(path)
    recorder.write(first.received_at, BOARD_SOURCE, encode_batch(first))
    recorder.write(first.received_at, BOARD_SOURCE, bad)
    recorder.write(second.received_at, BOARD_SOURCE, encode_batch(second))
    recorder.close()

    clock = ReplayClock()
    feed = ReplayFeed(path, clock)
    events: list[FeedEvent] = []

    async def emit(event: FeedEvent) -> None:
        events.append(event)

    with pytest.raises(DamagedFile, match=r"1 record\(s\) could not be decoded, the first at line 2") as caught:
        await feed.run(emit)
    assert "\n" not in str(caught.value)
    assert events == [first, second]  # the boards around it still replay, in order
    assert feed.stats["replay"]["decoder_error"] == 1
