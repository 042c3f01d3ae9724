"""The exchange ladders the Betfair Exchange Stream reader puts on its quotes
(bot/feeds/history/betfair.py, `OddsUpdate.ladder`), through the OddsBook to a strategy's view.

- Every quote of every shared recording (tests/data/betfair_stream/) equals an independent replay
  of the raw file: its lines read here with the json module, every runner's `atb` / `atl` and
  depth-indexed ladders kept as plain dicts and sorted in full at each message, cut to the depth;
  price, suspended, ltp and tv as the module docstring says. At depth 3 and 1.
- Hand-written sequences: the depth cut, a level below the shown ones (no change reaches the
  book) and a shown level removed (the next one rises), a lay-only runner (layable, not
  suspended), a suspended market, the depth option's validation.
- The OddsBook keeps the ladder: `Quote.lay_price`, `layable`, `best_lay` across exchanges; a
  sportsbook feed's quotes stay as they were (no ladder).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from bot.clock import ReplayClock
from bot.config.settings import Settings
from bot.engine.wiring import build_feeds
from bot.feeds.history.betfair import BetfairStreamReader
from bot.feeds.history.feed import HistoryFeed
from bot.market.book import OddsBook
from bot.types import FixtureKey, Ladder, MarketKey, OddsBatch, OddsUpdate, Selection
from tests.feeds.test_betfair_stream import _open

DATA = Path(__file__).resolve().parents[1] / "data" / "betfair_stream"
FILES = ["1.197931750.gz", "1.197931751.gz", "1.200806927.gz", "BASIC-1.132153978", "SELF-1.181223995.gz",
         "nautilus/1-206064380.bz2"]
LADDERS = ("atb", "atl", "batb", "batl", "bdatb", "bdatl")

Expected = tuple[float | None, bool, tuple[tuple[float, float], ...], tuple[tuple[float, float], ...],
                 float | None, float | None]
"""A runner's quote: price, suspended, back levels, lay levels, ltp, tv."""


def _runner() -> dict[str, Any]:
    return {"status": "ACTIVE", "ltp": None, "tv": None, **{key: {} for key in LADDERS}}


def _top(prices: dict[float, float], positions: dict[int, tuple[float, float]], positions_else: dict[int, tuple[float, float]],
         depth: int, highest_first: bool) -> tuple[tuple[float, float], ...]:
    """The best `depth` levels: the full ladder sorted, else the first depth-indexed one non-empty."""
    if prices:
        return tuple(sorted(prices.items(), reverse=highest_first)[:depth])
    levels = positions or positions_else
    return tuple(levels[position] for position in sorted(levels)[:depth])


def _expected(market: dict[str, Any], runner: dict[str, Any], depth: int) -> Expected:
    back = _top(runner["atb"], runner["bdatb"], runner["batb"], depth, True)
    lay = _top(runner["atl"], runner["bdatl"], runner["batl"], depth, False)
    if market["status"] != "OPEN" or runner["status"] != "ACTIVE":
        price, suspended = None, True
    elif market["laddered"]:
        price, suspended = (back[0][0] if back else None), False
    else:  # only ltp so far (the BASIC tier): nothing on offer
        price, suspended = None, True
    return price, suspended, back, lay, runner["ltp"], runner["tv"]


def _replay(path: Path, depth: int) -> list[tuple[int, dict[tuple[str, int], Expected]]]:
    """Independently of the reader: per message that changes a runner, its `pt` and the quote of
    each runner it changes (every runner of the market when it carries a definition)."""
    markets: dict[str, dict[str, Any]] = {}
    out = []
    with _open(path) as f:
        for line in f:
            msg = json.loads(line)
            if msg.get("op") != "mcm" or not msg.get("mc") or msg.get("ct") == "HEARTBEAT":
                continue
            quotes: dict[tuple[str, int], Expected] = {}
            for change in msg["mc"]:
                market = markets.get(change["id"])
                definition = change.get("marketDefinition")
                if market is None:
                    market = markets[change["id"]] = {"status": "OPEN", "laddered": False, "runners": {}}
                elif change.get("img"):  # a full image: the ladders start again
                    for runner in market["runners"].values():
                        runner.update({"ltp": None, "tv": None, **{key: {} for key in LADDERS}})
                    market["laddered"] = False
                runners = market["runners"]
                if definition is not None:
                    market["status"] = definition["status"]
                    for rd in definition["runners"]:
                        assert not rd.get("hc"), "no handicap in these files"
                        runners.setdefault(rd["id"], _runner())["status"] = rd.get("status", "ACTIVE")
                named = []
                for rc in change.get("rc", []):
                    assert not rc.get("hc")
                    runner = runners.setdefault(rc["id"], _runner())
                    named.append(rc["id"])
                    for key in ("atb", "atl"):
                        for price, size in rc.get(key, []):
                            if size:
                                runner[key][price] = size
                            else:
                                runner[key].pop(price, None)
                    for key in ("batb", "batl", "bdatb", "bdatl"):
                        for position, price, size in rc.get(key, []):
                            if size:
                                runner[key][position] = (price, size)
                            else:
                                runner[key].pop(position, None)
                    for key in ("ltp", "tv"):
                        if key in rc:
                            runner[key] = rc[key]
                    if any(key in rc for key in LADDERS):
                        market["laddered"] = True
                for sid in (runners if definition is not None else named):
                    quotes[(change["id"], sid)] = _expected(market, runners[sid], depth)
            if quotes:
                out.append((msg["pt"], quotes))
    return out


def _quotes(batch: OddsBatch) -> tuple[int, dict[tuple[str, int], Expected]]:
    quotes = {}
    for u in batch.updates:
        assert u.ladder is not None
        key = (u.feed_ids["betfair_market_id"], int(u.feed_ids["betfair_selection_id"]))
        quotes[key] = (u.price, u.suspended, u.ladder.back, u.ladder.lay, u.ladder.last_traded,
                       u.ladder.traded_volume)
    return round(batch.received_at.timestamp() * 1000), quotes


@pytest.mark.parametrize("name", FILES)
def test_every_quote_equals_an_independent_replay_of_the_file(name: str) -> None:
    expected = _replay(DATA / name, 3)
    got = [_quotes(b) for b in BetfairStreamReader(DATA / name).batches()]
    assert len(got) == len(expected)
    for (pt, quotes), (want_pt, want) in zip(got, expected, strict=True):
        assert (pt, quotes) == (want_pt, want)
    layable = sum(q[1] is False and q[0] is None and bool(q[3]) for _, qs in expected for q in qs.values())
    if name == "1.200806927.gz":  # the cricket match, decided in play: lay-only quotes happen
        assert layable > 0


@pytest.mark.parametrize("name", ["1.197931750.gz", "nautilus/1-206064380.bz2"])
def test_depth_one_is_the_best_back_and_lay_only(name: str) -> None:
    expected = _replay(DATA / name, 1)
    got = [_quotes(b) for b in BetfairStreamReader(DATA / name, depth=1).batches()]
    assert got == expected
    assert any(q[2] for _, qs in got for q in qs.values())


# -- hand-written sequences ---------------------------------------------------------------------

T0 = 1_700_000_000_000
MID = "1.100"


def _definition(status: str = "OPEN") -> dict[str, Any]:
    return {"eventTypeId": "7", "eventName": "Ascot 1st Jan", "marketType": "WIN", "numberOfWinners": 1,
            "marketTime": "2023-11-14T23:00:00.000Z", "status": status,
            "runners": [{"id": 11, "status": "ACTIVE", "name": "Horse 11"},
                        {"id": 22, "status": "ACTIVE", "name": "Horse 22"}]}


def _write(tmp_path: Path, *changes: dict[str, Any]) -> Path:
    """One message per market change, a second apart."""
    path = tmp_path / "stream"
    path.write_bytes(b"\n".join(orjson.dumps({"op": "mcm", "clk": str(n), "pt": T0 + 1000 * n, "mc": [change]})
                                for n, change in enumerate(changes)) + b"\n")
    return path


def _by_outcome(batch: OddsBatch) -> dict[str, OddsUpdate]:
    return {u.selection.outcome: u for u in batch.updates}


FIVE_BACKS = [[2.0, 1], [2.1, 2], [2.2, 3], [2.3, 4], [2.4, 5]]
FIVE_LAYS = [[2.5, 6], [2.6, 7], [2.7, 8], [2.8, 9], [2.9, 10]]


@pytest.mark.parametrize("depth", [1, 2, 3, 5, 10])
def test_the_ladder_is_cut_to_the_depth(tmp_path: Path, depth: int) -> None:
    path = _write(tmp_path, {"id": MID, "marketDefinition": _definition(),
                             "rc": [{"id": 11, "atb": FIVE_BACKS, "atl": FIVE_LAYS, "ltp": 2.4, "tv": 55.5}]})
    (batch,) = BetfairStreamReader(path, depth=depth).batches()
    horse = _by_outcome(batch)["Horse 11"]
    backs = [(2.4, 5), (2.3, 4), (2.2, 3), (2.1, 2), (2.0, 1)]  # highest first, by hand
    lays = [(2.5, 6), (2.6, 7), (2.7, 8), (2.8, 9), (2.9, 10)]  # lowest first
    assert horse.ladder == Ladder(tuple(backs[:depth]), tuple(lays[:depth]), 2.4, 55.5)
    assert horse.price == 2.4 and not horse.suspended


def test_changes_below_the_shown_levels_and_removals_of_shown_ones(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        {"id": MID, "marketDefinition": _definition(), "rc": [{"id": 11, "atb": FIVE_BACKS, "atl": FIVE_LAYS}]},
        {"id": MID, "rc": [{"id": 11, "atb": [[2.0, 50], [1.5, 9]], "atl": [[2.9, 0], [3.5, 1]]}]},  # below depth 2
        {"id": MID, "rc": [{"id": 11, "atb": [[2.4, 0]], "atl": [[2.5, 0]]}]},  # the best ones go: the next rise
        {"id": MID, "rc": [{"id": 11, "atb": [[2.25, 7]], "atl": [[2.55, 1]]}]},  # a new level between shown ones
        {"id": MID, "rc": [{"id": 11, "atb": [[2.3, 0], [2.25, 0], [2.2, 0], [2.1, 0], [2.0, 0]]}]},  # all but 1.5
    )
    reader = BetfairStreamReader(path, depth=2)
    ladders = [_by_outcome(b)["Horse 11"].ladder for b in reader.batches()]
    assert [(ladder.back, ladder.lay) for ladder in ladders if ladder is not None] == [
        (((2.4, 5), (2.3, 4)), ((2.5, 6), (2.6, 7))),
        (((2.4, 5), (2.3, 4)), ((2.5, 6), (2.6, 7))),
        (((2.3, 4), (2.2, 3)), ((2.6, 7), (2.7, 8))),
        (((2.3, 4), (2.25, 7)), ((2.55, 1), (2.6, 7))),
        (((1.5, 9),), ((2.55, 1), (2.6, 7))),
    ]
    assert reader.book(MID, depth=10)[11].back == ((1.5, 9),)
    assert reader.book(MID, depth=10)[11].lay == ((2.55, 1), (2.6, 7), (2.7, 8), (2.8, 9), (3.5, 1))
    # the change below the shown levels reaches no strategy: the book sees the same quote
    clock = ReplayClock(datetime.fromtimestamp(T0 / 1000, UTC))
    book = OddsBook(clock)
    changed = [bool(book.apply_batch(b)) for b in BetfairStreamReader(path, depth=2).batches()]
    assert changed == [True, False, True, True, True]


def test_a_lay_alone_is_a_layable_quote_and_a_suspended_market_is_not(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        {"id": MID, "marketDefinition": _definition(),
         "rc": [{"id": 11, "atl": [[3.0, 20], [3.1, 5]]}, {"id": 22, "atb": [[1.5, 40]], "atl": [[1.6, 30]]}]},
        {"id": MID, "marketDefinition": _definition("SUSPENDED")},
    )
    reader = BetfairStreamReader(path)
    open_, suspended = (_by_outcome(b) for b in reader.batches())
    lay_only = open_["Horse 11"]
    assert (lay_only.price, lay_only.suspended) == (None, False)
    assert lay_only.ladder == Ladder((), ((3.0, 20), (3.1, 5)))
    assert (open_["Horse 22"].price, open_["Horse 22"].suspended) == (1.5, False)
    assert all(u.suspended and u.price is None for u in suspended.values())
    assert suspended["Horse 11"].ladder == lay_only.ladder  # the ladder as it stands, not tradeable

    start = datetime.fromtimestamp(T0 / 1000, UTC)
    clock = ReplayClock(start)
    book = OddsBook(clock)
    batches = iter(BetfairStreamReader(path).batches())
    book.apply_batch(next(batches))
    quote = book.quote(lay_only.selection, "betfair-ex")
    assert quote is not None and quote.layable and not quote.usable
    assert quote.lay_price == 3.0 and quote.ladder is not None and quote.ladder.best_lay == (3.0, 20)
    assert book.best(lay_only.selection) is None
    best_lay = book.best_lay(lay_only.selection)
    assert best_lay is not None and best_lay.bookmaker == "betfair-ex" and best_lay.lay_price == 3.0
    clock.advance(start + timedelta(seconds=1))
    book.apply_batch(next(batches))
    quote = book.quote(lay_only.selection, "betfair-ex")
    assert quote is not None and not quote.layable and book.best_lay(lay_only.selection) is None


@pytest.mark.parametrize("depth", [1, 2])
def test_the_config_sets_the_depth_of_a_replayed_file(tmp_path: Path, depth: int) -> None:
    """`feeds.history.ladder_depth` reaches the reader `bot run` / `bot backtest` build."""
    settings = Settings.model_validate({"state_dir": str(tmp_path / "state"), "feeds": {"history": {
        "paths": [str(DATA / "1.197931750.gz")], "ladder_depth": depth}}})
    [feed] = build_feeds(settings, ReplayClock(datetime(2022, 4, 19, tzinfo=UTC)), tmp_path)
    assert isinstance(feed, HistoryFeed)
    levels = {len(u.ladder.back) for b in feed.readers[0].batches() for u in b.updates if u.ladder is not None}
    assert max(levels) == depth


@pytest.mark.parametrize("depth", [0, -1, 2.5, "3"])
def test_the_depth_must_be_a_whole_number_of_levels(tmp_path: Path, depth: Any) -> None:
    with pytest.raises(ValueError, match="depth"):
        BetfairStreamReader(tmp_path / "stream", depth=depth)


# -- the book's lay side ---------------------------------------------------------------------------

WIN = Selection(FixtureKey("Horse Racing", "Ascot 1st Jan", "field", datetime(2023, 11, 14, 23, tzinfo=UTC)),
                MarketKey("win"), "Horse 11")


def _exchange(bookmaker: str, back: float | None, lay: float | None, at: datetime, suspended: bool = False,
              source: str = "exchange") -> OddsUpdate:
    ladder = Ladder(((back, 10.0),) if back else (), ((lay, 10.0),) if lay else ())
    return OddsUpdate(source, bookmaker, WIN, back, None, suspended, at, at, {}, None, ladder)


def test_best_lay_is_the_lowest_layable_lay_price_across_exchanges() -> None:
    start = datetime(2023, 11, 14, 20, tzinfo=UTC)
    clock = ReplayClock(start)
    book = OddsBook(clock, stale_after=timedelta(minutes=15))
    book.apply(_exchange("betfair-ex", 2.0, 2.1, start, source="old"))
    clock.advance(start + timedelta(minutes=10))
    book.apply(_exchange("matchbook", 2.02, 2.06, clock.now()))
    book.apply(_exchange("smarkets", 1.98, 2.04, clock.now(), suspended=True))
    book.apply(_exchange("betdaq", 2.04, None, clock.now()))  # nothing to lay there
    book.apply(OddsUpdate("sportsbook", "pinnacle", WIN, 1.95, None, False, clock.now(), clock.now()))
    lay = book.best_lay(WIN)
    assert lay is not None and (lay.bookmaker, lay.lay_price) == ("matchbook", 2.06)  # smarkets' 2.04 is suspended
    back = book.best(WIN)
    assert back is not None and (back.bookmaker, back.price) == ("betdaq", 2.04)
    book.apply(_exchange("smarkets", 1.98, 2.04, clock.now()))
    lay = book.best_lay(WIN)
    assert lay is not None and (lay.bookmaker, lay.lay_price) == ("smarkets", 2.04)
    clock.advance(start + timedelta(minutes=26))  # the quotes of minute 10 are stale now
    book.apply(_exchange("betfair-ex", 2.0, 2.1, clock.now(), source="old"))
    lay = book.best_lay(WIN)
    assert lay is not None and (lay.bookmaker, lay.lay_price) == ("betfair-ex", 2.1)


def test_a_sportsbook_quote_has_no_lay_side() -> None:
    start = datetime(2023, 11, 14, 20, tzinfo=UTC)
    book = OddsBook(ReplayClock(start))
    assert book.apply(OddsUpdate("sportsbook", "pinnacle", WIN, 1.95, None, False, start, start))
    quote = book.quote(WIN, "pinnacle")
    assert quote is not None and quote.usable and quote.ladder is None
    assert quote.lay_price is None and not quote.layable and book.best_lay(WIN) is None
    assert not book.apply(OddsUpdate("sportsbook", "pinnacle", WIN, 1.95, None, False, start, start))


def test_a_ladder_change_alone_is_a_change_of_the_quote() -> None:
    start = datetime(2023, 11, 14, 20, tzinfo=UTC)
    book = OddsBook(ReplayClock(start))
    assert book.apply(_exchange("betfair-ex", 2.0, 2.1, start))
    assert not book.apply(_exchange("betfair-ex", 2.0, 2.1, start))  # an equal ladder (another object)
    assert book.apply(_exchange("betfair-ex", 2.0, 2.08, start))  # same back price, a better lay
    quote = book.quote(WIN, "betfair-ex")
    assert quote is not None and quote.lay_price == 2.08 and quote.price == 2.0
