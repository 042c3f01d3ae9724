"""Parameter sweeps and walk-forward (bot/research/sweep.py) through `bot backtest`: the grid is
every combination, ranked by mean CLV; walk-forward picks on the train span and reports only
the chosen combination's bets in the test span, the same bets a plain backtest with those params
places in that span."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from bot.research.backtest import BacktestError
from bot.research.sweep import parse_grid, parse_span
from tests.engine.conftest import run_bot

ROOT = Path(__file__).resolve().parents[2]
SEASON = ROOT / "tests" / "data" / "history" / "football_data" / "e0_2023-24.csv.gz"
EXAMPLE = ROOT / "docs" / "examples" / "football-data.yaml"


def test_grid_is_the_cartesian_product_and_spans_are_half_open() -> None:
    grid = parse_grid(["min_edge=0.02,0.05", "sharp_books=[pinnacle],[bet365, pinnacle]"])
    assert grid == [{"min_edge": 0.02, "sharp_books": ["pinnacle"]},
                    {"min_edge": 0.02, "sharp_books": ["bet365", "pinnacle"]},
                    {"min_edge": 0.05, "sharp_books": ["pinnacle"]},
                    {"min_edge": 0.05, "sharp_books": ["bet365", "pinnacle"]}]
    years = parse_span("2019-2022")
    assert datetime(2019, 1, 1, tzinfo=UTC) in years and datetime(2022, 12, 31, 23, 59, tzinfo=UTC) in years
    assert datetime(2023, 1, 1, tzinfo=UTC) not in years
    days = parse_span("2023-08-01..2023-08-31")
    assert datetime(2023, 8, 31, 22, tzinfo=UTC) in days and datetime(2023, 9, 1, tzinfo=UTC) not in days
    with pytest.raises(BacktestError, match="expected YEAR"):
        parse_span("last season")
    with pytest.raises(BacktestError, match="name=v1,v2"):
        parse_grid(["min_edge"])


def _config(folder: Path) -> Path:
    config = yaml.safe_load(EXAMPLE.read_text())
    config["logging"]["progress"] = False
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_walk_forward_reports_the_chosen_combination_on_the_test_span_only(tmp_path: Path) -> None:
    config = _config(tmp_path)
    done = run_bot("backtest", str(SEASON), "--config", str(config), "--json", "--resamples", "500",
                   "--sweep", "min_edge=0.0,0.04", "--train", "2023", "--test", "2024", "--jobs", "2",
                   cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    verdict = json.loads(done.stdout)
    grid = verdict["grid"]
    assert sorted(r["params"]["min_edge"] for r in grid) == [0.0, 0.04]
    means = [r["summary"]["clv"]["mean"] for r in grid]
    assert means == sorted(means, reverse=True)  # ranked by mean CLV on the train span
    wf = verdict["walk_forward"]
    assert wf["chosen"] == grid[0]["params"]

    # the same params in a plain backtest: its bets placed in 2024 are the ones reported
    single = run_bot("backtest", str(SEASON), "--config", str(config), "--json", "--resamples", "500",
                     "--set", f"min_edge={wf['chosen']['min_edge']}", "--out", str(tmp_path / "one"),
                     cwd=tmp_path, timeout=300)
    assert single.returncode == 0, single.stderr[-3000:]
    con = sqlite3.connect(tmp_path / "one" / "ledger" / "bot.db")
    in_2024 = con.execute("SELECT count(*), sum(CAST(placed_stake AS REAL)) FROM bets "
                          "WHERE placed_at >= '2024-01-01'").fetchone()
    train = con.execute("SELECT count(*) FROM bets WHERE placed_at < '2024-01-01'").fetchone()[0]
    con.close()
    assert wf["test_summary"]["bets"] == in_2024[0] > 0
    assert float(wf["test_summary"]["turnover"]) == pytest.approx(in_2024[1], abs=0.005)
    assert grid[0]["summary"]["bets"] == train  # the grid's figures are the train span's
