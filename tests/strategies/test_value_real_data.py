"""Value strategy on real closing odds (docs/architecture.md, "Strategies"): Pinnacle's closing 1X2 de-vigged
as the fair price, the other books' closing 1X2 prices as offers, 3 % edge. The count of value
bets the strategy signals must equal an independent count computed here with plain arithmetic."""

from __future__ import annotations

import csv
import gzip
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.clock import ReplayClock
from bot.config.settings import StrategySpec
from bot.market.book import OddsBook
from bot.strategy.host import StrategyHost
from bot.types import FixtureKey, MarketKey, OddsUpdate, Selection

DATA = Path(__file__).parents[1] / "data" / "football_data" / "top5_2023-24_closing_1x2.csv.gz"
OFFERS = {"bet365": "B365C", "bwin": "BWC", "interwetten": "IWC", "williamhill": "WHC", "vcbet": "VCC"}
OUTCOMES = {"home": "H", "draw": "D", "away": "A"}
EDGE = 0.03
LONDON = ZoneInfo("Europe/London")


def _price(row: dict[str, str], column: str) -> float | None:
    text = row.get(column, "").strip()
    return float(text) if text else None


def _rows() -> list[dict[str, str]]:
    with gzip.open(DATA, "rt", newline="") as f:
        rows = list(csv.DictReader(f))
    return sorted(rows, key=_kickoff)


def _kickoff(row: dict[str, str]) -> datetime:
    local = datetime.strptime(f"{row['Date']} {row['Time'] or '15:00'}", "%d/%m/%Y %H:%M")
    return local.replace(tzinfo=LONDON).astimezone(UTC)


def independent_count(rows: list[dict[str, str]]) -> int:
    """Plain arithmetic: p = (1/o) / sum(1/o) over Pinnacle's three closing prices; an offer is a
    value bet when price * p - 1 >= 3 %."""
    count = 0
    for row in rows:
        pin = [_price(row, "PSC" + c) for c in "HDA"]
        if any(p is None or p <= 1 for p in pin):
            continue
        inverse = [1 / p for p in pin]  # type: ignore[operator]
        fair = {c: q / sum(inverse) for c, q in zip("HDA", inverse, strict=True)}
        for prefix in OFFERS.values():
            for c in "HDA":
                price = _price(row, prefix + c)
                if price is not None and price > 1 and price * fair[c] - 1 >= EDGE:
                    count += 1
    return count


async def test_value_bets_on_real_closing_odds_match_independent_count() -> None:
    rows = _rows()
    clock = ReplayClock(_kickoff(rows[0]) - timedelta(hours=1))
    book = OddsBook(clock)
    params = {"sharp_books": ["pinnacle"], "min_edge": EDGE, "min_price": 1.01, "max_price": 1000,
              "bankroll": "1000000", "max_stake": "1000000000", "min_stake": 0, "max_kelly_fraction": 1}
    host = StrategyHost.load([StrategySpec(name="value_fd", path="value", params=params)],
                             book=book, clock=clock, ledger=None)
    market = MarketKey("moneyline")
    signals = []
    for row in rows:
        at = _kickoff(row) - timedelta(minutes=1)
        clock.advance(at)
        fixture = FixtureKey(row["Div"], row["HomeTeam"], row["AwayTeam"], _kickoff(row))
        for bookmaker, prefix in {"pinnacle": "PSC", **OFFERS}.items():
            for outcome, c in OUTCOMES.items():
                price = _price(row, prefix + c)
                if price is None:
                    continue
                update = OddsUpdate("football-data", bookmaker, Selection(fixture, market, outcome),
                                    price, None, False, at, at)
                if book.apply(update):
                    signals.extend(await host.on_odds(update))
    expected = independent_count(rows)
    print(f"value bets at {EDGE:.0%} edge: strategy {len(signals)}, independent {expected}, matches {len(rows)}")
    assert expected > 100  # the data has plenty: a count of zero would prove nothing
    assert len(signals) == expected
    assert host.errors == {}
    # each signal: one per (selection, bookmaker), at the row's price, with the edge it claims
    by_match = {(r["Div"], r["HomeTeam"], r["AwayTeam"]): r for r in rows}
    keys = set()
    for sig in signals:
        fx = sig.selection.fixture
        row = by_match[(fx.sport, fx.home, fx.away)]
        keys.add((fx, sig.bookmakers, sig.selection.outcome))
        assert sig.price == _price(row, OFFERS[sig.bookmakers[0]] + OUTCOMES[sig.selection.outcome])
        assert sig.edge >= EDGE
    assert len(keys) == len(signals)
    sample = signals[0]
    assert sample.edge >= EDGE and sample.min_price == sample.price
    kelly = (sample.edge / (sample.price - 1)) * 0.25  # fractional Kelly, default multiplier
    assert abs(float(sample.stake) - 1_000_000 * kelly) <= 0.011
    assert sample.stake == sample.stake.quantize(Decimal("0.01"))
