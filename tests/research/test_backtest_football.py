"""`bot backtest` on a real football-data.co.uk season (Premier League 2023/24), checked against figures computed here
independently from the raw CSV with the csv module alone: which bets the strategy makes (Bet365's
opening 1X2 price beating Pinnacle's opening no-vig price), their profit from the final score,
their CLV against Pinnacle's closing no-vig price, and the report's PnL (to the cent), ROI, mean
CLV (to 1e-9) and max drawdown (to the cent)."""

from __future__ import annotations

import csv
import gzip
import json
import sqlite3
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from pathlib import Path

import pytest
import yaml

from tests.engine.conftest import run_bot

ROOT = Path(__file__).resolve().parents[2]
EXTRACT = ROOT / "tests" / "data" / "history" / "football_data" / "e0_2023-24.csv.gz"
EXAMPLE = ROOT / "docs" / "examples" / "football-data.yaml"
BANKROLL, KELLY, CAP, MAX_STAKE, MIN_EDGE = Decimal(10_000), 0.25, 0.02, Decimal(100), 0.005
OUTCOMES = (("home", "H"), ("draw", "D"), ("away", "A"))


def no_vig(prices: list[float]) -> list[float]:
    implied = [1 / p for p in prices]
    return [q / sum(implied) for q in implied]


def expected_bets() -> dict[tuple[str, str, str], dict[str, object]]:
    """(home, away, outcome) -> price, stake, pnl, clv for every bet the strategy should make."""
    bets: dict[tuple[str, str, str], dict[str, object]] = {}
    with gzip.open(EXTRACT, "rt", newline="") as f:
        for row in csv.DictReader(f):
            b365 = [float(row[f"B365{c}"]) for _, c in OUTCOMES]
            fair = no_vig([float(row[f"PS{c}"]) for _, c in OUTCOMES])
            close = no_vig([float(row[f"PSC{c}"] or row[f"PS{c}"]) for _, c in OUTCOMES])
            for (outcome, code), price, p, p_close in zip(OUTCOMES, b365, fair, close, strict=True):
                edge = p * price - 1
                if edge < MIN_EDGE or not 1.2 <= price <= 10.0:
                    continue
                kelly = (p * price - 1) / (price - 1)
                stake = min((BANKROLL * Decimal(str(min(kelly * KELLY, CAP)))).quantize(Decimal("0.01"), ROUND_DOWN),
                            MAX_STAKE)
                if stake < 1:
                    continue
                won = row["FTR"] == code
                bets[(row["HomeTeam"], row["AwayTeam"], outcome)] = {
                    "price": price, "stake": stake, "won": won, "clv": price * p_close - 1}
    return bets


@pytest.fixture(scope="module")
def backtest(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, object], Path]:
    folder = tmp_path_factory.mktemp("football")
    config = yaml.safe_load(EXAMPLE.read_text())
    config["strategies"][0]["params"]["min_edge"] = MIN_EDGE
    config["logging"]["progress"] = False
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    out = folder / "out"
    done = run_bot("backtest", str(EXTRACT), "--config", str(folder / "config.yaml"), "--json", "--out", str(out),
                   "--resamples", "2000", cwd=folder, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout), out / "ledger" / "bot.db"


def test_the_bets_are_those_the_raw_file_implies_and_clv_matches_to_1e_9(
        backtest: tuple[dict[str, object], Path]) -> None:
    _, db = backtest
    expected = expected_bets()
    assert len(expected) >= 10  # enough bets for the check to mean something
    con = sqlite3.connect(db)
    rows = con.execute("SELECT o.selection, b.placed_price, b.placed_stake, b.clv, b.bookmaker FROM bets b "
                       "JOIN orders o ON o.request_uuid = b.request_uuid").fetchall()
    con.close()
    made = {}
    for selection, price, stake, clv, book in rows:
        _, teams, _, _, outcome = selection.split("|")
        home, away = teams.split(" vs ")
        assert book == "bet365"
        made[(home, away, outcome)] = (price, Decimal(stake), clv)
    assert set(made) == set(expected)
    for key, want in expected.items():
        price, stake, clv = made[key]
        assert price == want["price"]
        assert abs(stake - want["stake"]) <= Decimal("0.01"), key  # the book's exact consensus may round a cent
        assert clv == pytest.approx(want["clv"], abs=1e-9), key


def test_the_report_matches_pnl_roi_clv_and_drawdown_computed_from_the_raw_file(
        backtest: tuple[dict[str, object], Path]) -> None:
    report, db = backtest
    summary = report["summary"]
    assert isinstance(summary, dict)
    expected = expected_bets()
    con = sqlite3.connect(db)
    order = con.execute("SELECT o.selection, s.at, b.bet_id, b.placed_stake FROM bets b "
                        "JOIN orders o ON o.request_uuid = b.request_uuid "
                        "JOIN settlements s ON s.bet_id = b.bet_id ORDER BY s.at, b.bet_id").fetchall()
    con.close()
    pnl_total = turnover = Decimal(0)
    equity = peak = BANKROLL
    drawdown = Decimal(0)
    for selection, _, _, stake_text in order:
        _, teams, _, _, outcome = selection.split("|")
        home, away = teams.split(" vs ")
        bet = expected[(home, away, outcome)]
        stake = Decimal(stake_text)  # as placed: the cent the strategy rounded to
        price = Decimal(str(bet["price"]))
        # the bookmaker pays stake x price to the cent (half to even), profit is that less the stake
        pnl = (stake * price).quantize(Decimal("0.01"), ROUND_HALF_EVEN) - stake if bet["won"] else -stake
        pnl_total += pnl
        turnover += stake
        equity += pnl
        peak = max(peak, equity)
        drawdown = max(drawdown, peak - equity)
    assert len(order) == len(expected) == summary["bets"] == summary["settled"]
    assert Decimal(summary["pnl"]) == pnl_total
    assert Decimal(summary["turnover"]) == turnover
    assert summary["roi"] == pytest.approx(float(pnl_total / turnover), abs=1e-9)
    assert Decimal(summary["max_drawdown"]) == drawdown
    mean_clv = sum(float(b["clv"]) for b in expected.values()) / len(expected)  # type: ignore[arg-type]
    assert summary["clv"]["mean"] == pytest.approx(mean_clv, abs=1e-9)
    assert summary["clv"]["n_with_close"] == len(expected)


def test_out_holds_the_html_report_and_its_plots(backtest: tuple[dict[str, object], Path]) -> None:
    _, db = backtest
    out = db.parent.parent
    assert (out / "report.html").stat().st_size > 10_000
    for png in ("equity.png", "clv_hist.png", "odds_bands.png", "monthly_pnl.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
