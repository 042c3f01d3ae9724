"""`bot report`'s checks that can fail, on real SQLite ledgers written through `Ledger`: orders
repeated inside the dedupe window, fills that disagree with their orders (stake above the order's,
a back order filled below its `orderPrice` floor, docs/reference/abp.md §8.1), and open bets past
kickoff named by fixture and reason. Each check is shown firing on one ledger and silent on another."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from rich.console import Console

from bot.ledger.models import BetRow, OrderRow, SettlementRow
from bot.ledger.report import build_report, render_report
from bot.ledger.store import Ledger
from bot.sim.results import Results, load_results
from bot.types import FixtureKey, MarketKey, Selection

RESULTS = Path(__file__).parents[1] / "data" / "results" / "epl_2023-24_results.csv"
T0 = datetime(2023, 8, 13, 12, 0, tzinfo=UTC)
CHELSEA = FixtureKey("EPL", "Chelsea", "Liverpool", datetime(2023, 8, 13, 15, 30, tzinfo=UTC))  # in the results
ARSENAL = FixtureKey("EPL", "Arsenal", "Man City", datetime(2023, 10, 8, 15, 30, tzinfo=UTC))  # not in them
LATER = FixtureKey("EPL", "Arsenal", "Luton", datetime(2024, 4, 3, 18, 30, tzinfo=UTC))
SEL = Selection(CHELSEA, MarketKey("1x2", "game"), "draw").key


def _order(uuid: str, *, at: datetime = T0, strategy: str = "value", selection: str = SEL, books: str = "pinnacle",
           back: bool = True, stake: str = "10", price: float = 2.0, filled: str | None = None,
           currency: str = "USD") -> OrderRow:
    fixture = Selection.parse(selection).fixture
    return OrderRow(request_uuid=uuid, signal_id=f"sig-{uuid}", strategy=strategy, selection=selection,
                    sport=fixture.sport, fixture=str(fixture), bookmakers=books, back=back, order_price=price,
                    stake=Decimal(stake), filled_stake=Decimal(filled if filled is not None else stake),
                    currency=currency, status="FILLED", created_at=at, updated_at=at)


def _bet(bet_id: int, uuid: str, *, stake: str = "10", price: float = 2.0, at: datetime = T0,
         status: str = "CONFIRMED", currency: str = "USD") -> BetRow:
    return BetRow(bet_id=bet_id, request_uuid=uuid, bookmaker="pinnacle", placed_stake=Decimal(stake),
                  placed_price=price, placed_currency=currency, bet_status=status, placed_at=at, updated_at=at)


def _ledger(path: Path, orders: list[OrderRow], bets: list[BetRow]) -> Path:
    ledger = Ledger(path)
    try:
        ledger.add_orders(orders)
        for bet in bets:
            ledger.upsert_bet(bet)
    finally:
        ledger.close()
    return path


def _text(report: dict[str, Any]) -> str:
    out = io.StringIO()
    render_report(report, Console(file=out, width=300, force_terminal=False))
    return out.getvalue()


# -- repeated orders ---------------------------------------------------------------------------


def _repeats_ledger(path: Path) -> Path:
    def minutes(m: int) -> datetime:
        return T0 + timedelta(minutes=m)

    return _ledger(path, [
        _order("a1", at=minutes(0)),
        _order("a2", at=minutes(10)),  # repeats a1 10 minutes later: fires
        _order("a3", at=minutes(15), back=False),  # a lay: another side
        _order("a4", at=minutes(20), strategy="arb"),  # another strategy
        _order("a4b", at=minutes(25), strategy="arb", price=2.1),  # a new price: a new decision
        _order("a5", at=minutes(130), books="fanduel,pinnacle"),  # pinnacle again, but 2 h after a2
        _order("a6", at=minutes(131), books=""),  # any bookmaker: its own target ("*")
        _order("a7", at=minutes(160), books=""),  # repeats a6: fires
    ], [])


def test_orders_repeated_inside_the_window_are_counted_and_listed(tmp_path: Path) -> None:
    report = build_report(_repeats_ledger(tmp_path / "bot.db"))
    repeats = report["checks"]["repeated_orders"]
    assert (repeats["window_seconds"], repeats["count"]) == (3600, 2)
    assert [(r["request_uuid"], r["previous_request_uuid"], r["bookmaker"], r["side"], r["seconds_apart"])
            for r in repeats["first"]] == [("a2", "a1", "pinnacle", "back", 600.0), ("a7", "a6", "*", "back", 1740.0)]
    text = _text(report)
    assert re.search(r"repeated orders \(within 3600 s\) +│ 2 ", text)
    assert "Repeated orders: 2, first 2" in text


def test_orders_further_apart_than_the_window_pass(tmp_path: Path) -> None:
    report = build_report(_repeats_ledger(tmp_path / "bot.db"), dedupe_window_seconds=300)
    assert report["checks"]["repeated_orders"] == {"window_seconds": 300, "count": 0, "first": []}
    text = _text(report)
    assert re.search(r"repeated orders \(within 300 s\) +│ 0 ", text) and "Repeated orders" not in text


# -- fills against their orders --------------------------------------------------------------------


def _clean_orders() -> list[OrderRow]:
    """Orders whose bets agree with them (fresh rows each time: the ledger takes ownership)."""
    return [
        # Mode 2 (docs/reference/abp.md §8.1): a later bet below the floor is fine while the
        # stake-weighted price stays at or above it: (40 x 2.10 + 30 x 1.95) / 70 = 2.036.
        _order("ok-partial", stake="100", filled="70", price=2.0),
        _order("ok-lay", back=False, price=2.0),  # how orderPrice bounds a lay is not documented
        _order("ok-eur", stake="10"),  # placed in another currency: not comparable with the order stake
    ]


def _clean_bets() -> list[BetRow]:
    return [
        _bet(1, "ok-partial", stake="40", price=2.10),
        _bet(2, "ok-partial", stake="30", price=1.95, at=T0 + timedelta(seconds=5)),
        _bet(3, "ok-partial", stake="500", price=1.5, status="REJECTED"),  # never placed: does not count
        _bet(4, "ok-lay", stake="10", price=2.5),
        _bet(5, "ok-eur", stake="12", currency="EUR"),
    ]


def test_fills_that_disagree_with_their_orders_are_counted_and_listed(tmp_path: Path) -> None:
    db = _ledger(tmp_path / "bot.db", [
        *_clean_orders(),
        _order("over-bets", stake="10"),  # two bets of 6: 12 placed on a 10 order
        _order("over-filled", stake="10", filled="12"),
        _order("first-low", price=2.0),  # first bet below the floor
        _order("avg-low", stake="100", price=2.0),  # (40 x 2.10 + 60 x 1.90) / 100 = 1.98
    ], [
        *_clean_bets(),
        _bet(10, "over-bets", stake="6"), _bet(11, "over-bets", stake="6", at=T0 + timedelta(seconds=1)),
        _bet(12, "over-filled", stake="10"),
        _bet(13, "first-low", stake="5", price=1.95), _bet(14, "first-low", stake="5", price=2.2,
                                                           at=T0 + timedelta(seconds=1)),
        _bet(15, "avg-low", stake="40", price=2.10), _bet(16, "avg-low", stake="60", price=1.90,
                                                          at=T0 + timedelta(seconds=1)),
        _bet(17, "no-such-order"),
    ])
    report = build_report(db)
    mismatches = report["checks"]["fill_mismatches"]
    assert mismatches["count"] == 5
    assert len(mismatches["first"]) == 5
    found = {(m["request_uuid"], m["problem"]): m["detail"] for m in mismatches["first"]}
    assert found == {
        ("no-such-order", "no order"): "bet 17 has no order in the ledger",
        ("over-bets", "stake"): "bets placed 12 USD above order stake 10",
        ("over-filled", "stake"): "filled_stake 12 above order stake 10",
        ("first-low", "price"): "first bet 13 at 1.95 below min price 2.0",
        ("avg-low", "price"): "stake-weighted price 1.9800 below min price 2.0",
    }
    text = _text(report)
    assert re.search(r"fills disagreeing with their order +│ 5 ", text)
    assert "Fills disagreeing with their order: 5, first 5" in text


def test_fills_that_agree_with_their_orders_pass(tmp_path: Path) -> None:
    report = build_report(_ledger(tmp_path / "bot.db", _clean_orders(), _clean_bets()))
    assert report["checks"]["fill_mismatches"] == {"count": 0, "first": []}
    text = _text(report)
    assert re.search(r"fills disagreeing with their order +│ 0 ", text) and "Fills disagreeing" not in text


# -- bets that cannot settle -------------------------------------------------------------------


def _unresolved_ledger(path: Path) -> Path:
    chelsea = Selection(CHELSEA, MarketKey("1x2", "game"), "draw").key
    arsenal = Selection(ARSENAL, MarketKey("1x2", "game"), "home").key
    later = Selection(LATER, MarketKey("1x2", "game"), "home").key
    return _ledger(path, [
        _order("c1", selection=chelsea, price=3.5), _order("c2", selection=chelsea, back=False, price=3.5),
        _order("x1", selection=arsenal, stake="7", price=2.9), _order("l1", selection=later, price=1.4),
    ], [
        _bet(1, "c1", price=3.5), _bet(2, "c2", price=3.5), _bet(3, "x1", stake="7", price=2.9),
        _bet(4, "l1", price=1.4),
    ])


def _unresolved(report: dict[str, Any]) -> list[tuple[str, str, int, str]]:
    return [(u["fixture"], u["reason"], u["bets"], u["exposure"]) for u in report["unresolved"]["by_fixture"]]


def test_report_names_each_unsettled_fixture_with_its_reason(tmp_path: Path) -> None:
    db = _unresolved_ledger(tmp_path / "bot.db")
    results = Results(load_results(RESULTS))
    after_arsenal = ARSENAL.start_time + timedelta(days=1)

    report = build_report(db, results=results, now=after_arsenal)
    # Chelsea's game is in the results and over: its bets stay open until a settlement run.
    assert _unresolved(report) == [
        (str(CHELSEA), "result known, not settled yet", 2, "35.00"),  # back 10 + lay liability 25
        (str(ARSENAL), "fixture not found in results", 1, "7.00"),
    ]
    assert {k: report["unresolved"][k] for k in ("bets", "fixtures", "exposure")} == {
        "bets": 3, "fixtures": 2, "exposure": "42.00"}
    assert report["unresolved"]["by_fixture"][1]["kickoff"] == "2023-10-08T15:30:00+00:00"

    during_chelsea = CHELSEA.start_time + timedelta(hours=1)
    assert _unresolved(build_report(db, results=results, now=during_chelsea)) == [
        (str(CHELSEA), "result pending", 2, "35.00")]
    assert _unresolved(build_report(db, now=after_arsenal)) == [  # no results source configured
        (str(CHELSEA), "no results source", 2, "35.00"),
        (str(ARSENAL), "no results source", 1, "7.00"),
    ]
    assert _unresolved(build_report(db, now=after_arsenal, venue_settles=True)) == [  # live: ABP settles
        (str(CHELSEA), "awaiting venue settlement", 2, "35.00"),
        (str(ARSENAL), "awaiting venue settlement", 1, "7.00"),
    ]
    assert build_report(db, now=T0)["unresolved"] == {"bets": 0, "fixtures": 0, "exposure": "0.00", "by_fixture": []}

    orjson.dumps(report)  # `bot report --json` can write it
    text = _text(report)
    assert "unresolved bets (past kickoff, open)" in text and "3 on 2 fixtures, exposure 42.00" in text
    assert "Unresolved bets (open past kickoff)" in text
    assert "fixture not found in results" in text and str(ARSENAL) in text


@pytest.mark.parametrize("now", [T0, None])
def test_a_ledger_with_nothing_past_kickoff_lists_nothing(tmp_path: Path, now: datetime | None) -> None:
    db = _ledger(tmp_path / "bot.db", [_order("f1", selection=Selection(
        FixtureKey("EPL", "A", "B", datetime(2999, 1, 1, tzinfo=UTC)), MarketKey("1x2", "game"), "home").key)],
        [_bet(1, "f1")])
    report = build_report(db, now=now)
    assert report["unresolved"]["bets"] == 0
    assert "Unresolved bets" not in _text(report)


# -- back and lay apart ------------------------------------------------------------------------


def test_report_shows_back_and_lay_apart(tmp_path: Path) -> None:
    db = _ledger(tmp_path / "bot.db", [
        _order("b1", stake="10", price=2.0), _order("b2", stake="4", price=3.5),
        _order("l1", back=False, stake="20", price=1.5), _order("l2", back=False, stake="6", price=4.0),
    ], [
        _bet(1, "b1", stake="10", price=2.0), _bet(2, "b2", stake="4", price=3.5),
        _bet(3, "b2", stake="9", price=3.5, status="REJECTED"),  # never placed: left out
        _bet(4, "l1", stake="20", price=1.5), _bet(5, "l2", stake="6", price=4.0),
    ])
    ledger = Ledger(db)
    for bet_id, uuid, status, stake, amount, pnl, commission in (
        (1, "b1", "WON", "10", "20", "10", "0"),
        (4, "l1", "WON", "20", "30", "19.50", "0.50"),  # liability 10 + stake 20 back; 5 % of 10 charged
        (5, "l2", "LOST", "6", "0", "-18", "0"),  # liability (4.0 - 1) x 6
    ):
        ledger.add_settlement(SettlementRow(bet_id=bet_id, request_uuid=uuid, strategy="value", status=status,
                                            stake=Decimal(stake), amount=Decimal(amount), pnl=Decimal(pnl),
                                            commission=Decimal(commission), at=T0))
    ledger.close()
    report = build_report(db)
    assert report["by_side"] == {
        "back": {"bets": 2, "turnover": "14.00", "liability": "14.00", "settled": 1, "pnl": "10.00",
                 "commission": "0.00"},
        "lay": {"bets": 2, "turnover": "26.00", "liability": "28.00", "settled": 2, "pnl": "1.50",
                "commission": "0.50"},  # liabilities 0.5 x 20 + 3 x 6
    }
    assert report["settled"]["commission"] == "0.50"
    assert re.search(r"lay +│ +2 │ +26\.00 │ +28\.00 │ +2 │ +1\.50 │ +0\.50", _text(report))
