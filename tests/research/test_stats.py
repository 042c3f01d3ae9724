"""Backtest statistics (bot.research.stats) against figures worked out by hand or computed
independently here, plus the terminal tables' verdict rule (bot.research.tables)."""

from __future__ import annotations

import json
import math
import random
import statistics
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from bot.research.records import BetRecord
from bot.research.stats import breakdown, breakdowns, daily_pnl, equity_curve, odds_band, summarise
from bot.research.tables import render, verdict

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
D = Decimal


def bet(
    bet_id: int,
    status: str,
    price: float,
    stake: str,
    pnl: str | None,
    settled_hours: float | None,
    *,
    clv: float | None = None,
    strategy: str = "value",
    bookmaker: str = "pinnacle",
    placed_at: datetime | None = None,
) -> BetRecord:
    return BetRecord(
        bet_id=bet_id,
        strategy=strategy,
        bookmaker=bookmaker,
        sport="soccer",
        market="1x2",
        selection="home",
        placed_at=placed_at or T0 - timedelta(days=1),
        start_time=None,
        price=price,
        stake=D(stake),
        status=status,
        pnl=None if pnl is None else D(pnl),
        settled_at=None if settled_hours is None else T0 + timedelta(hours=settled_hours),
        clv=clv,
    )


# Ten bets; ids deliberately out of settlement order (settlement order = the order written here).
# Settlement days: 2024-03-01 (first three), 03-02 (next three), 03-03 (last three).
HAND = [
    bet(7, "WON", 2.0, "10", "10", 1, strategy="a"),
    bet(2, "LOST", 3.0, "10", "-10", 2, strategy="a"),
    bet(9, "LOST", 1.5, "20", "-20", 3, strategy="b"),
    bet(1, "VOID", 2.5, "10", "0", 24, strategy="b"),
    bet(5, "HALF_LOST", 1.9, "10", "-5", 25, strategy="a"),
    bet(3, "WON", 1.8, "12.50", "10.00", 26, strategy="a"),
    bet(8, "HALF_WON", 2.2, "10", "6.00", 48, strategy="b"),
    bet(4, "LOST", 4.0, "25", "-25", 49, strategy="b"),
    bet(6, "PUSH", 2.0, "10", "0", 50, strategy="a"),
    bet(10, "UNSETTLED", 2.1, "10", None, None, strategy="a"),
]


def test_hand_built_figures_match_hand_computation() -> None:
    s = summarise(list(reversed(HAND)), D("100"), resamples=500)
    assert (s["bets"], s["settled"], s["unsettled"], s["void_push"], s["skipped_malformed"]) == (10, 9, 1, 2, 0)
    assert s["turnover"] == "117.50"  # every settled stake, void and push included
    assert s["pnl"] == "-34.00"
    assert s["roi"] == pytest.approx(-34 / 117.5, abs=1e-15)
    # Decided: WON, LOST, LOST, HALF_LOST, WON, HALF_WON, LOST -> 3 hits of 7.
    assert s["n_decided"] == 7
    assert s["hit_rate"] == pytest.approx(3 / 7, abs=1e-15)
    prices = [2.0, 3.0, 1.5, 1.9, 1.8, 2.2, 4.0]
    assert s["implied_hit_rate"] == pytest.approx(sum(1 / p for p in prices) / 7, rel=1e-12)
    assert s["avg_odds"] == pytest.approx(sum(prices) / 7, rel=1e-12)
    # Equity 100 -> 110 -> 100 -> 80 -> 80 -> 75 -> 85 -> 91 -> 66 -> 66: peak 110, trough 66.
    assert (s["max_drawdown"], s["max_drawdown_peak"]) == ("44.00", "110.00")
    assert s["max_drawdown_ratio"] == pytest.approx(0.4, abs=1e-15)
    # LOST, LOST, (VOID leaves the run alone), HALF_LOST = 3; a VOID that broke runs would give 2.
    assert s["longest_losing_run"] == 3
    # Daily pnl -20, +5, -19 (independent: statistics module).
    days = [-20.0, 5.0, -19.0]
    assert s["n_days"] == 3
    assert s["sharpe_daily"] == pytest.approx(statistics.mean(days) / statistics.stdev(days) * math.sqrt(365))
    assert [row["bet_id"] for row in s["unsettled_bets"]] == [10]
    assert s["unsettled_bets"][0]["stake"] == "10.00"
    json.dumps(s)  # JSON-ready: no Decimal, datetime or numpy scalar left


def test_equity_curve_and_daily_pnl_follow_settlement_time_not_input_or_id_order() -> None:
    shuffled = HAND[:]
    random.Random(3).shuffle(shuffled)
    curve = equity_curve(shuffled, D("100"))
    assert [p.equity for p in curve] == [
        D(v) for v in ("110", "100", "80", "80", "75", "85.00", "91.00", "66.00", "66.00")
    ]
    assert [p.bet_id for p in curve] == [7, 2, 9, 1, 5, 3, 8, 4, 6]
    assert max(p.drawdown for p in curve) == D("44")
    assert daily_pnl(shuffled) == [
        (datetime(2024, 3, 1).date(), D("-20")),
        (datetime(2024, 3, 2).date(), D("5.00")),
        (datetime(2024, 3, 3).date(), D("-19.00")),
    ]


def test_money_is_exact_decimal_to_the_cent() -> None:
    # 0.1 + 0.2 style amounts: a float sum of 30 x 0.10 gives 2.9999999999999996.
    bets = [bet(i, "WON", 2.0, "0.10", "0.10", i) for i in range(30)]
    s = summarise(bets, D("1"), resamples=100)
    assert s["pnl"] == "3.00"
    assert s["turnover"] == "3.00"
    assert s["roi"] == 1.0


def test_malformed_bets_are_skipped_counted_and_logged(warnings: list[str]) -> None:
    bad = [bet(100, "WON", float("nan"), "10", "10", 1), bet(101, "LOST", 2.0, "0", "0", 1)]
    s = summarise(HAND + bad, D("100"), resamples=100)
    assert s["skipped_malformed"] == 2
    assert s["bets"] == 10 and s["pnl"] == "-34.00"
    assert any("bet 100" in line and "price" in line for line in warnings)
    assert any("bet 101" in line and "stake" in line for line in warnings)


def test_empty_input_gives_none_not_a_crash() -> None:
    s = summarise([], D("100"))
    assert (s["bets"], s["pnl"], s["roi"], s["roi_ci95"], s["hit_rate"], s["sharpe_daily"]) == (
        0,
        "0.00",
        None,
        None,
        None,
        None,
    )
    assert s["clv"]["mean"] is None and s["clv"]["p_value"] is None
    assert verdict(s) == "No closing prices for any of the 0 bets: CLV cannot be judged."


def test_breakdowns_group_and_sum_per_group() -> None:
    rows = {r["group"]: r for r in breakdown(HAND, "strategy")}
    assert set(rows) == {"a", "b"}
    assert (rows["a"]["bets"], rows["a"]["settled"], rows["a"]["turnover"], rows["a"]["pnl"]) == (6, 5, "52.50", "5.00")
    assert (rows["b"]["bets"], rows["b"]["settled"], rows["b"]["turnover"], rows["b"]["pnl"]) == (
        4,
        4,
        "65.00",
        "-39.00",
    )
    assert rows["b"]["roi"] == pytest.approx(-39 / 65)
    bands = [r["group"] for r in breakdown(HAND, "odds_band")]
    assert bands == ["1.50-2.00", "2.00-3.00", "3.00-5.00"]  # price order, not alphabetical
    with pytest.raises(ValueError, match="unknown breakdown"):
        breakdown(HAND, "colour")
    assert set(breakdowns(HAND)) == {"strategy", "bookmaker", "market", "sport", "side", "odds_band", "month"}


def test_back_and_lay_are_broken_down_apart() -> None:
    lays = [replace(bet(20, "WON", 3.0, "10", "10", 1), side="lay"),  # a lay that won: the backer's stake
            replace(bet(21, "LOST", 1.5, "20", "-10", 2), side="lay")]  # a lay that lost: its liability
    rows = {r["group"]: r for r in breakdown(HAND[:2] + lays, "side")}
    assert set(rows) == {"back", "lay"}
    assert (rows["lay"]["bets"], rows["lay"]["turnover"], rows["lay"]["pnl"]) == (2, "30.00", "0.00")
    assert rows["back"]["bets"] == 2


@pytest.mark.parametrize(
    ("price", "band"),
    [
        (1.005, "1.00-1.01"),
        (1.01, "1.01-1.50"),
        (1.4999, "1.01-1.50"),
        (1.5, "1.50-2.00"),
        (2.0, "2.00-3.00"),
        (4.99, "3.00-5.00"),
        (5.0, "5.00-10.00"),
        (10.0, "10.00+"),
        (151.0, "10.00+"),
    ],
)
def test_odds_band_edges_are_lower_inclusive(price: float, band: str) -> None:
    assert odds_band(price) == band


def test_month_is_taken_in_utc() -> None:
    # 00:30 on 1 February at UTC+2 is still January in UTC.
    local = datetime(2024, 2, 1, 0, 30, tzinfo=timezone(timedelta(hours=2)))
    rows = breakdown([bet(1, "WON", 2.0, "10", "10", 1, placed_at=local)], "month")
    assert [r["group"] for r in rows] == ["2024-01"]


def test_clv_share_and_counts_over_bets_with_a_close() -> None:
    clvs = [0.05, -0.02, 0.01, None, 0.0]
    bets = [bet(i, "WON", 2.0, "10", "10", i, clv=c) for i, c in enumerate(clvs)]
    clv = summarise(bets, D("100"), resamples=200)["clv"]
    assert (clv["n_with_close"], clv["n_without_close"]) == (4, 1)
    assert clv["mean"] == pytest.approx(0.01)
    assert clv["share_beating_close"] == 0.5  # 0.0 does not beat the close


def _clv_bets(values: np.ndarray) -> list[BetRecord]:
    return [bet(i, "UNSETTLED", 2.0, "10", None, None, clv=float(v)) for i, v in enumerate(values)]


def test_p_value_small_for_clearly_positive_clv_and_large_for_zero_mean() -> None:
    rng = np.random.default_rng(7)
    positive = summarise(_clv_bets(rng.normal(0.03, 0.02, 120)), D("100"), resamples=500)
    assert positive["clv"]["p_value"] < 1e-6
    assert verdict(positive).endswith("over 120 bets: the prices beat the close")
    # Exactly zero mean (symmetric values): t = 0, one-sided p = 0.5.
    zero = summarise(_clv_bets(np.tile([-0.02, -0.01, 0.0, 0.01, 0.02], 20)), D("100"), resamples=500)
    assert zero["clv"]["p_value"] == pytest.approx(0.5)
    assert verdict(zero).endswith("over 100 bets: no evidence of an edge")
    negative = summarise(_clv_bets(rng.normal(-0.03, 0.02, 120)), D("100"), resamples=500)
    assert negative["clv"]["p_value"] > 0.999
    assert verdict(negative).endswith("the prices are worse than the close")


def _random_bets(n: int, seed: int) -> list[BetRecord]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        price = round(rng.uniform(1.3, 6.0), 2)
        stake = D(rng.choice(["5", "10", "40", "100"]))  # unequal stakes: ratio of sums != mean of ratios
        won = rng.random() < 1 / price
        pnl = (stake * D(str(price - 1))).quantize(D("0.01")) if won else -stake
        out.append(bet(i, "WON" if won else "LOST", price, str(stake), str(pnl), i, clv=rng.gauss(0.01, 0.04)))
    return out


def test_bootstrap_is_deterministic_contains_the_estimate_and_matches_a_plain_resampling() -> None:
    bets = _random_bets(300, 11)
    a = summarise(bets, D("1000"), resamples=4000, seed=5)
    b = summarise(bets, D("1000"), resamples=4000, seed=5)
    other = summarise(bets, D("1000"), resamples=4000, seed=6)
    assert a == b
    assert other["roi_ci95"] != a["roi_ci95"]  # the seed is really used
    low, high = a["roi_ci95"]
    assert low < a["roi"] < high
    assert a["clv"]["ci95"][0] < a["clv"]["mean"] < a["clv"]["ci95"][1]
    # Independent check: a plain numpy percentile bootstrap of sum(pnl) / sum(stake) over pairs.
    pnl = np.array([float(x.pnl) for x in bets if x.pnl is not None])
    stake = np.array([float(x.stake) for x in bets])
    idx = np.random.default_rng(99).integers(0, len(bets), (20_000, len(bets)))
    ratios = pnl[idx].sum(axis=1) / stake[idx].sum(axis=1)
    plain = np.percentile(ratios, [2.5, 97.5])
    width = plain[1] - plain[0]
    assert abs(low - plain[0]) < 0.1 * width and abs(high - plain[1]) < 0.1 * width


def test_roi_bootstrap_resamples_pnl_and_stake_as_pairs() -> None:
    # Every bet lost: any resample of (pnl, stake) pairs has ROI exactly -1; resampling pnl and
    # stake separately would spread the interval (the stakes differ).
    bets = [bet(i, "LOST", 2.0, stake, f"-{stake}", i) for i, stake in enumerate(["5", "10", "40", "100"] * 10)]
    s = summarise(bets, D(1000), resamples=1000)
    assert s["roi"] == -1.0
    assert s["roi_ci95"] == [-1.0, -1.0]


def test_render_prints_every_figure_with_its_n_and_the_verdict() -> None:
    bets = _random_bets(60, 2)
    s = summarise(bets, D("1000"), resamples=300)
    console = Console(record=True, width=200)
    render(s, breakdowns(bets), console)
    text = console.export_text()
    assert verdict(s) in text
    assert "60 settled" in text and "60 with close" in text and "days" in text
    assert "By odds band (decimal odds)" in text and "By month placed (UTC)" in text


STATUSES = ["WON", "LOST", "VOID", "PUSH", "HALF_WON", "HALF_LOST", "UNSETTLED"]


@st.composite
def bet_lists(draw: st.DrawFn) -> list[BetRecord]:
    n = draw(st.integers(0, 25))
    out = []
    for i in range(n):
        status = draw(st.sampled_from(STATUSES))
        price = draw(st.integers(101, 2000)) / 100
        stake = D(draw(st.integers(1, 100_000))) / 100
        win = stake * D(str(price - 1))
        pnl = {
            "WON": win,
            "LOST": -stake,
            "VOID": D(0),
            "PUSH": D(0),
            "HALF_WON": win / 2,
            "HALF_LOST": -stake / 2,
            "UNSETTLED": None,
        }[status]
        hours = draw(st.integers(0, 24 * 20))  # ties on purpose: broken by bet_id
        clv = draw(st.none() | st.floats(-0.5, 0.5))
        out.append(bet(i, status, price, str(stake), None if pnl is None else str(pnl), hours, clv=clv))
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bets=bet_lists(), bankroll=st.integers(0, 10_000), data=st.data())
def test_drawdown_is_bounded_and_summary_ignores_input_order(
    bets: list[BetRecord], bankroll: int, data: st.DataObject
) -> None:
    s = summarise(bets, D(bankroll), resamples=50)
    losses = -sum((b.pnl for b in bets if b.pnl is not None and b.pnl < 0), D(0))
    assert D(0) <= D(s["max_drawdown"]) <= losses.quantize(D("0.01"))
    shuffled = data.draw(st.permutations(bets))
    assert summarise(shuffled, D(bankroll), resamples=50) == s
