"""The Betfair Exchange Stream reader (bot/feeds/history/betfair.py).

- Every shared recording (tests/data/betfair_stream/, README.md there: greyhound WIN and PLACE
  with catalogues, cricket match odds, horse racing PLACE, a BASIC-tier file, a bz2 horse racing
  WIN market with BSP) is told by its content and replays with no bad line, in time order.
- The settlements equal an independent count: the last `marketDefinition` of each market read
  here with the json module, its runners' WINNER / LOSER / REMOVED and BSPs counted.
- The ladder maths on a hand-written sequence: deltas, removal by size 0, `img` replacing the
  state, depth-indexed ladders, suspension by market and runner status.
- A malformed line (and other bad pieces) is skipped and counted; the lines around it are read.
- The results reach settlement: `load_results` on the files, the WIN and PLACE of one race as one
  fixture, `grade` WON / LOST / VOID, and `bot backtest`'s classification as odds and results.
- `bot data info` / `bot data convert` read the files; `bot backtest` on the WIN and PLACE files
  settles every bet as the final definitions say.
"""

from __future__ import annotations

import asyncio
import bz2
import gzip
import heapq
import json
import sqlite3
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import orjson
import pytest
from typer.testing import CliRunner

from bot.clock import ReplayClock
from bot.feeds.base import GOOD_COUNTERS
from bot.feeds.history.base import HistoryError, detect
from bot.feeds.history.betfair import AWAY, BOOKMAKER, BetfairStreamReader, is_betfair_stream
from bot.feeds.history.cli import app
from bot.feeds.replay import ReplayFeed
from bot.research.backtest import classify
from bot.sim.results import Results, grade, lay_status, load_results
from bot.types import FeedEvent, Ladder, MarketKey, OddsBatch, Selection, SettlementStatus
from tests.engine.conftest import run_bot

DATA = Path(__file__).resolve().parents[1] / "data" / "betfair_stream"
FILES = {  # file -> its lines (every one an mcm message)
    "1.197931750.gz": 166,
    "1.197931751.gz": 166,
    "1.200806927.gz": 18529,
    "BASIC-1.132153978": 480,
    "SELF-1.181223995.gz": 21922,
    "nautilus/1-206064380.bz2": 18793,
}
S = SettlementStatus


def _open(path: Path) -> IO[bytes]:
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    if path.suffix == ".bz2":
        return bz2.open(path, "rb")
    return path.open("rb")


def _read(path: Path, **options: Any) -> tuple[BetfairStreamReader, list[OddsBatch]]:
    reader = BetfairStreamReader(path, **options)
    return reader, list(reader.batches())


@pytest.mark.parametrize("name", list(FILES))
def test_every_recording_replays_without_a_bad_line(name: str) -> None:
    path = DATA / name
    assert detect(path) == "betfair_stream"
    reader, batches = _read(path)
    bad = {k: v for k, v in reader.stats.items() if k not in GOOD_COUNTERS}
    assert bad == {}, bad
    assert reader.stats["messages"] == FILES[name]
    assert reader.stats["settled"] == 1
    assert batches, "no batch"
    times = [b.received_at for b in batches]
    assert times == sorted(times)
    assert reader.progress[0] == reader.progress[1] == path.stat().st_size
    for batch in batches:
        assert batch.source == "betfair_stream" and not batch.complete
        for u in batch.updates:
            assert u.bookmaker == BOOKMAKER and u.selection.fixture.away == AWAY
            assert set(u.feed_ids) == {"betfair_market_id", "betfair_selection_id"}
            assert u.ladder is not None and len(u.ladder.back) <= 3 and len(u.ladder.lay) <= 3
            assert u.price is None or 1.01 <= u.price <= 1000
            if not u.suspended and not name.startswith("BASIC"):  # the best back, None when only a lay is offered
                assert u.price == (u.ladder.back[0][0] if u.ladder.back else None)
    priced = sum(u.price is not None for b in batches for u in b.updates)
    if name.startswith("BASIC"):  # no ladder: nothing to back, unless asked to quote the ltp
        assert priced == 0
        _, by_ltp = _read(path, ltp_when_no_ladder=True)
        assert sum(u.price is not None for b in by_ltp for u in b.updates) > 0
    else:
        assert priced > 0


def _last_definitions(path: Path) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    """Independently of the reader: each market's last marketDefinition, and the lines read."""
    last: dict[str, dict[str, Any]] = {}
    lines = 0
    with _open(path) as f:
        for line in f:
            lines += 1
            for change in json.loads(line).get("mc", []):
                if "marketDefinition" in change:
                    last[change["id"]] = change["marketDefinition"]
    return last, {"lines": lines}


@pytest.mark.parametrize("name", list(FILES))
def test_settlements_match_an_independent_count_of_the_final_definitions(name: str) -> None:
    path = DATA / name
    last, _ = _last_definitions(path)
    reader, _ = _read(path)
    light = BetfairStreamReader(path).read_settlements()  # the definitions-only pass load_results uses
    assert len(reader.settlements()) == len(last) == len(light) == 1
    for settled in (reader.settlements()[0], light[0]):
        md = last[settled.market_id]
        assert md["status"] == "CLOSED"
        expected = Counter(r["status"] for r in md["runners"])
        assert Counter(r.status for r in settled.runners) == expected
        assert {r.selection_id: r.status for r in settled.runners} == {r["id"]: r["status"] for r in md["runners"]}
        assert {r.selection_id: r.bsp for r in settled.runners if r.bsp is not None} == \
            {r["id"]: r["bsp"] for r in md["runners"] if "bsp" in r}
        assert settled.number_of_winners == md["numberOfWinners"]
        assert settled.market == MarketKey(md["marketType"].lower())
        assert expected["WINNER"] == md["numberOfWinners"]  # no dead heat in these races
    assert reader.settlements()[0] == light[0]
    counts = Counter(r.status for r in light[0].runners)
    results = load_results(path)
    assert len(results) == 1
    graded = Counter(status for _, _, status in results[0].outcomes)
    assert graded == +Counter({S.WON: counts["WINNER"], S.LOST: counts["LOSER"], S.VOID: counts["REMOVED"]})


def test_bsps_and_removals_of_the_shared_files() -> None:
    """The figures the task names, counted once by hand from the files' last lines."""
    naut = BetfairStreamReader(DATA / "nautilus/1-206064380.bz2").read_settlements()[0]
    assert Counter(r.status for r in naut.runners) == {"LOSER": 11, "WINNER": 1, "REMOVED": 1}
    assert [r.outcome for r in naut.runners if r.status == "WINNER"] == ["9. Isolating"]
    assert [r.bsp for r in naut.runners if r.status == "WINNER"] == [13.0]
    place = BetfairStreamReader(DATA / "1.197931751.gz").read_settlements()[0]
    assert place.number_of_winners == 2
    assert sorted(r.outcome for r in place.runners if r.status == "WINNER") == ["2. Sandwood Jet", "6. Coolavanny Galiv"]


# -- the ladder maths on a hand-written sequence ------------------------------------------------

T0 = 1_700_000_000_000
MID = "1.100"


def _definition(status: str = "OPEN", runners: tuple[tuple[int, str], ...] = ((11, "ACTIVE"), (22, "ACTIVE"))) -> dict:
    return {"eventTypeId": "7", "eventName": "Ascot 1st Jan", "marketType": "WIN", "numberOfWinners": 1,
            "marketTime": "2023-11-14T23:00:00.000Z", "status": status,
            "runners": [{"id": sid, "status": s, "name": f"Horse {sid}"} for sid, s in runners]}


def _mcm(n: int, *changes: dict) -> bytes:
    return orjson.dumps({"op": "mcm", "clk": str(n), "pt": T0 + 1000 * n, "mc": list(changes)})


def _write(tmp_path: Path, lines: list[bytes], name: str = "stream") -> Path:
    path = tmp_path / name
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _prices(batch: OddsBatch) -> dict[str, float | None]:
    return {u.selection.outcome: u.price for u in batch.updates}


def test_ladder_deltas_removals_and_images(tmp_path: Path) -> None:
    lines = [
        _mcm(0, {"id": MID, "img": True, "marketDefinition": _definition(),
                 "rc": [{"id": 11, "atb": [[2.0, 10], [2.2, 5]], "atl": [[2.4, 3], [2.5, 7]], "trd": [[2.2, 1]],
                         "ltp": 2.2, "tv": 1}]}),
        _mcm(1, {"id": MID, "rc": [{"id": 11, "atb": [[2.3, 4]]}]}),  # a better back
        _mcm(2, {"id": MID, "rc": [{"id": 11, "atb": [[2.3, 0]], "atl": [[2.4, 0]]}]}),  # the best removed
        _mcm(3, {"id": MID, "rc": [{"id": 11, "atb": [[2.0, 6]]}]}),  # a size changed below the best
        _mcm(4, {"id": MID, "rc": [{"id": 11, "atb": [[2.2, 0], [2.0, 0]]}]}),  # nothing left to back
        _mcm(5, {"id": MID, "rc": [{"id": 22, "bdatb": [[0, 3.0, 5], [1, 2.9, 1]], "bdatl": [[0, 3.2, 2]]}]}),
        _mcm(6, {"id": MID, "rc": [{"id": 22, "bdatb": [[0, 0, 0]]}]}),  # the top position emptied
        _mcm(7, {"id": MID, "img": True, "rc": [{"id": 11, "atb": [[1.5, 2]]}]}),  # an image: the rest is gone
    ]
    reader = BetfairStreamReader(_write(tmp_path, lines))
    batches = iter(reader.batches())

    first = next(batches)
    assert first.received_at == datetime.fromtimestamp(T0 / 1000, UTC)
    assert first == OddsBatch("betfair_stream", first.received_at, first.updates)  # the reader's fast constructor
    assert _prices(first) == {"Horse 11": 2.2, "Horse 22": None}  # a definition: every runner
    assert first.updates[0].ladder == Ladder(((2.2, 5), (2.0, 10)), ((2.4, 3), (2.5, 7)), 2.2, 1)
    assert first.updates[1].ladder == Ladder() and not first.updates[1].suspended  # ACTIVE, nothing offered
    u = first.updates[0]
    assert u.selection == Selection(u.selection.fixture, MarketKey("win"), "Horse 11")
    assert (u.selection.fixture.sport, u.selection.fixture.home, u.selection.fixture.away) == \
        ("Horse Racing", "Ascot 1st Jan", "field")
    assert u.feed_ids == {"betfair_market_id": MID, "betfair_selection_id": "11"}
    book = reader.book(MID)[11]
    assert book.back == ((2.2, 5), (2.0, 10)) and book.lay == ((2.4, 3), (2.5, 7))
    assert book.traded == ((2.2, 1),) and book.ltp == 2.2 and book.tv == 1

    assert _prices(next(batches)) == {"Horse 11": 2.3}
    assert reader.book(MID)[11].back == ((2.3, 4), (2.2, 5), (2.0, 10))
    assert _prices(next(batches)) == {"Horse 11": 2.2}
    assert reader.book(MID)[11].best_lay == (2.5, 7)
    assert _prices(next(batches)) == {"Horse 11": 2.2}
    assert reader.book(MID, depth=1)[11].back == ((2.2, 5),)
    assert reader.book(MID)[11].back == ((2.2, 5), (2.0, 6))
    last = next(batches)  # a lay alone: nothing to back, but not suspended
    assert _prices(last) == {"Horse 11": None} and not last.updates[0].suspended
    assert last.updates[0].ladder == Ladder((), ((2.5, 7),), 2.2, 1)
    assert reader.book(MID)[11].back == ()

    assert _prices(next(batches)) == {"Horse 22": 3.0}  # no atb: the depth-indexed ladder
    assert reader.book(MID)[22].back == ((3.0, 5), (2.9, 1)) and reader.book(MID)[22].best_lay == (3.2, 2)
    assert _prices(next(batches)) == {"Horse 22": 2.9}

    assert _prices(next(batches)) == {"Horse 11": 1.5}
    after = reader.book(MID)
    assert after[11].back == ((1.5, 2),) and after[11].lay == () and after[11].traded == () and after[11].ltp is None
    assert after[22].back == () and after[22].lay == ()
    assert next(batches, None) is None
    assert reader.stats["images"] == 1  # the first one is the market's first sight, not a replacement


def test_market_and_runner_status_suspend(tmp_path: Path) -> None:
    lines = [
        _mcm(0, {"id": MID, "marketDefinition": _definition(),
                 "rc": [{"id": 11, "atb": [[2.0, 10]]}, {"id": 22, "atb": [[4.0, 3]]}]}),
        _mcm(1, {"id": MID, "marketDefinition": _definition("SUSPENDED")}),
        _mcm(2, {"id": MID, "marketDefinition": _definition("OPEN", ((11, "ACTIVE"), (22, "REMOVED")))}),
        _mcm(3, {"id": MID, "marketDefinition": _definition("CLOSED", ((11, "WINNER"), (22, "REMOVED")))}),
    ]
    reader, batches = _read(_write(tmp_path, lines))
    assert [_prices(b) for b in batches] == [
        {"Horse 11": 2.0, "Horse 22": 4.0},
        {"Horse 11": None, "Horse 22": None},
        {"Horse 11": 2.0, "Horse 22": None},
        {"Horse 11": None, "Horse 22": None},
    ]
    assert reader.market_status(MID) == "CLOSED"
    settled = reader.settlements()[0]
    assert [(r.outcome, r.status) for r in settled.runners] == [("Horse 11", "WINNER"), ("Horse 22", "REMOVED")]
    assert settled.closed_at == datetime.fromtimestamp((T0 + 3000) / 1000, UTC)


def test_bad_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    lines = [
        _mcm(0, {"id": MID, "marketDefinition": _definition(), "rc": [{"id": 11, "atb": [[2.0, 10]]}]}),
        b"this is not json",
        b'{"op":"mcm","clk":"x","pt":' + str(T0 + 1500).encode() + b',"mc":[{"id":"1.100","rc":[{"id":11',  # cut off
        b"[1, 2, 3]",
        orjson.dumps({"op": "mcm", "clk": "h", "pt": T0 + 1600, "ct": "HEARTBEAT"}),
        orjson.dumps({"op": "mcm", "clk": "h", "pt": T0 + 1700}),
        orjson.dumps({"op": "ccm", "pt": T0 + 1800, "cc": []}),
        _mcm(2, {"id": MID, "rc": [{"id": 11, "atb": [["x", 1]]}, {"id": 22, "atb": [[3.0, 2]]}]}),
        _mcm(3, {"id": MID, "rc": [{"id": 11, "atb": [[5000, 1]]}]}),
        _mcm(4, {"id": "1.999", "rc": [{"id": 5, "atb": [[2.0, 1]]}]}),  # never defined
        _mcm(5, {"rc": []}),
        orjson.dumps({"op": "mcm", "pt": "soon", "mc": [{"id": MID}]}),
        _mcm(1, {"id": MID, "rc": [{"id": 11, "atb": [[2.1, 1]]}]}),  # back in time: applied at the last time
        b"",
        _mcm(6, {"id": MID, "rc": [{"id": 11, "atb": [[2.5, 1]]}]}),
    ]
    reader, batches = _read(_write(tmp_path, lines))
    bad = {k: v for k, v in reader.stats.items() if k not in GOOD_COUNTERS}
    assert bad == {"malformed_line": 3, "bad_runner": 2, "no_definition": 1, "bad_market": 1, "bad_time": 1,
                   "time_order": 1}
    assert reader.stats["heartbeats"] == 2 and reader.stats["skipped"] == 1
    assert [_prices(b) for b in batches] == [
        {"Horse 11": 2.0, "Horse 22": None},
        {"Horse 11": 2.0, "Horse 22": 3.0},  # the bad runner change dropped, the good one kept
        {"Horse 11": 2.0},  # a bad level: the runner is quoted as it stands
        {"Horse 11": 2.1},
        {"Horse 11": 2.5},
    ]
    # line 13's pt is 1 s; the last time read (line 11's, whose change was bad) is 5 s: clamped to it
    assert batches[3].received_at == datetime.fromtimestamp((T0 + 5000) / 1000, UTC) < batches[4].received_at
    assert reader.book(MID)[11].back == ((2.5, 1), (2.1, 1), (2.0, 10))


def test_a_damaged_compressed_file_ends_with_one_line(tmp_path: Path) -> None:
    whole = gzip.compress(b"\n".join(_mcm(n, {"id": MID, "marketDefinition": _definition()}) for n in range(400)))
    path = tmp_path / "cut.gz"
    path.write_bytes(whole[: len(whole) // 2])
    reader = BetfairStreamReader(path)
    seen = 0
    with pytest.raises(HistoryError, match=r"cut.gz: line \d+: the file is damaged"):
        for _ in reader.batches():
            seen += 1
    assert seen > 0


def test_detection_by_content(tmp_path: Path) -> None:
    plain = _write(tmp_path, [_mcm(0, {"id": MID, "marketDefinition": _definition()})], "plain")
    spaced = tmp_path / "spaced.gz"  # json.dumps's spacing, as the SELF- file has
    spaced.write_bytes(gzip.compress(json.dumps({"op": "mcm", "pt": T0, "mc": []}).encode() + b"\n"))
    other = tmp_path / "scores.gz"
    other.write_bytes(gzip.compress(b'{"op":"ccm","pt":1,"cc":[]}\n'))
    csv = tmp_path / "odds.csv"
    csv.write_text('time,sport,start_time,home,away,market,outcome,bookmaker,price\n')
    assert [is_betfair_stream(p) for p in (plain, spaced, other, csv)] == [True, True, False, False]
    assert detect(plain) == detect(spaced) == "betfair_stream"
    assert detect(other) is None and detect(csv) == "odds_csv"


# -- settlement -----------------------------------------------------------------------------------

def test_results_settle_bets_win_and_place_as_one_fixture(tmp_path: Path) -> None:
    win, place = DATA / "1.197931750.gz", DATA / "1.197931751.gz"
    results = Results(load_results(win) + load_results(place))
    assert len(results) == 1  # one race: its WIN and PLACE markets are one fixture
    _, batches = _read(win)
    fixture = batches[0].updates[0].selection.fixture
    found = results.find(fixture)
    assert found is not None
    statuses = {(m, o): s for m, o, s in found.outcomes}
    assert statuses[("win", "2. Sandwood Jet")] == S.WON
    assert statuses[("place", "6. Coolavanny Galiv")] == S.WON
    assert statuses[("win", "6. Coolavanny Galiv")] == S.LOST
    assert grade(Selection(fixture, MarketKey("win"), "2. Sandwood Jet"), found) == S.WON
    assert grade(Selection(fixture, MarketKey("place"), "2. Sandwood Jet"), found) == S.WON
    assert grade(Selection(fixture, MarketKey("win"), "1. Paradise Mission"), found) == S.LOST
    assert lay_status(S.LOST) == S.WON
    assert grade(Selection(fixture, MarketKey("win"), "no such dog"), found) is None
    assert grade(Selection(fixture, MarketKey("moneyline"), "home"), found) is None

    naut = DATA / "nautilus/1-206064380.bz2"
    (result,) = load_results(naut)
    fixture = next(iter(BetfairStreamReader(naut).batches())).updates[0].selection.fixture
    assert grade(Selection(fixture, MarketKey("win"), "3. Mutinous"), result) == S.VOID  # removed

    inputs = classify([win, place])  # `bot backtest`: the files are odds and results at once
    assert [f for _, f in inputs.history] == ["betfair_stream", "betfair_stream"]
    assert inputs.results == (win, place)


# -- bot data ---------------------------------------------------------------------------------------

def test_data_info_and_convert(tmp_path: Path) -> None:
    cli = CliRunner()
    path = DATA / "1.197931750.gz"
    _, batches = _read(path)
    result = cli.invoke(app, ["info", str(path), "--json"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["format"] == "betfair_stream" and info["bad"] == {}
    assert info["boards"] == len(batches) == 166
    assert info["quotes"] == sum(len(b.updates) for b in batches)
    assert info["bookmakers"] == {"betfair-ex": info["quotes"]} and info["sports"] == {"Greyhound Racing": 1}
    out = tmp_path / "race.jsonl.gz"
    result = cli.invoke(app, ["convert", str(path), str(DATA / "1.197931751.gz"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    converted = json.loads(cli.invoke(app, ["info", str(out), "--json"]).stdout)
    _, place = _read(DATA / "1.197931751.gz")
    assert converted["quotes"] == info["quotes"] + sum(len(b.updates) for b in place)
    assert converted["markets"] == {"win": info["quotes"], "place": sum(len(b.updates) for b in place)}
    # the recording replays into the readers' batches, ladders and all: a converted exchange
    # recording can still be laid against
    clock, replayed = ReplayClock(), []

    async def emit(event: FeedEvent) -> None:
        replayed.append(event)

    asyncio.run(ReplayFeed(out, clock).run(emit))
    merged = list(heapq.merge(batches, place, key=lambda b: b.received_at))
    assert replayed == merged
    assert sum(1 for b in replayed for u in b.updates if u.ladder is not None and u.ladder.lay) > 100  # type: ignore[union-attr]


# -- bot backtest settles from the files themselves --------------------------------------------------

def test_backtest_settles_every_bet_from_the_final_definitions(tmp_path: Path) -> None:
    """`bot backtest WIN PLACE` (the template strategy backs every price >= 3): every bet settles,
    each as the race's final definitions say (read here with json), and the PnL is the bets'."""
    (tmp_path / "config.yaml").write_text(
        "strategies:\n  - {name: longshots, path: template, params: {min_price: 3.0, stake: 5}}\n"
        "logging: {progress: false}\n")
    win, place = DATA / "1.197931750.gz", DATA / "1.197931751.gz"
    done = run_bot("backtest", str(win), str(place), "--config", str(tmp_path / "config.yaml"), "--json",
                   "--out", str(tmp_path / "out"), "--resamples", "200", cwd=tmp_path, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)["summary"]
    names = {}
    for path in (win, place):
        catalogue = json.loads((DATA / "catalogues" / f"{path.name.removesuffix('.gz')}.json").read_text())
        names.update({r["selectionId"]: r["runnerName"] for r in catalogue["runners"]})
    final = {}
    for path, market in ((win, "win"), (place, "place")):
        (md,) = _last_definitions(path)[0].values()
        final.update({(market, names[r["id"]]): r["status"] for r in md["runners"]})
    con = sqlite3.connect(tmp_path / "out" / "ledger" / "bot.db")
    rows = con.execute("SELECT o.selection, b.settlement_status, b.placed_price, b.placed_stake, b.settlement_amount "
                       "FROM bets b "
                       "JOIN orders o ON o.request_uuid = b.request_uuid").fetchall()
    con.close()
    assert len(rows) == summary["bets"] == summary["settled"] > 10 and summary["unsettled"] == 0
    pnl = Decimal(0)
    markets = set()
    for selection, status, price, stake, amount in rows:
        fixture, market, outcome = selection.rsplit("|", 2)
        market = market.split("/")[0]
        markets.add(market)
        assert fixture == "Greyhound Racing|Sheffield 19th Apr vs field|2022-04-19T18:26Z"
        assert status == {"WINNER": "WON", "LOSER": "LOST"}[final[(market, outcome)]], selection
        # in cents, as the venue reports it: an exchange back fills from the ladder's sizes, so a
        # bet's stake need not be whole
        returned = (Decimal(stake) * Decimal(str(price))).quantize(Decimal("0.01")) if status == "WON" else Decimal(0)
        assert Decimal(amount) == returned, selection
        pnl += returned - Decimal(stake)
    assert markets == {"win", "place"}
    assert Decimal(summary["pnl"]) == pnl.quantize(Decimal("0.01"))
