"""`bot backtest` on bad input: a wrong header stops before anything runs with one line naming
the file, the line and the missing column; bad rows are skipped and counted while the rest is
backtested; a truncated file ends the run non-zero naming the file and the line reached; a
recording is backtested as it is (the week a user just recorded)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from tests.engine.conftest import run_bot

ROOT = Path(__file__).resolve().parents[2]
ODDS_CSV = ROOT / "tests" / "data" / "history" / "odds_csv"
SEASON = ROOT / "tests" / "data" / "history" / "football_data" / "e0_2023-24.csv.gz"
EXAMPLE = ROOT / "docs" / "examples" / "football-data.yaml"
RECORDING = ROOT / "bot" / "data" / "nfl_raw_snapshots_2025-11-16.jsonl.gz"


def test_a_wrong_header_is_one_line_naming_file_line_and_column(tmp_path: Path) -> None:
    done = run_bot("backtest", str(ODDS_CSV / "wrong_header.csv"), cwd=ROOT, timeout=60)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "wrong_header.csv: line 1: missing column(s) start_time, price or price_american" in line
    assert not (ROOT / "state" / "bot-backtest").exists()


def test_bad_rows_are_skipped_and_counted_and_the_rest_is_backtested(tmp_path: Path) -> None:
    done = run_bot("backtest", str(ODDS_CSV / "bad_rows.csv"), "--json", "--resamples", "200", cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["summary"]["bets"] >= 0
    assert "bad_price" in done.stderr and "line 6, column price" in done.stderr  # each bad row logged


def _truncated(source: Path, target: Path) -> Path:
    packed = gzip.compress(gzip.decompress(source.read_bytes()))
    target.write_bytes(packed[: len(packed) // 2])
    return target


def test_a_truncated_file_is_one_line_naming_the_line_reached(tmp_path: Path) -> None:
    # odds and results in one file: the results loader refuses it before the run (exit 2)
    cut = _truncated(SEASON, tmp_path / "e0_cut.csv.gz")
    done = run_bot("backtest", str(cut), "--config", str(EXAMPLE), "--json", cwd=tmp_path, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    (line,) = done.stderr.strip().splitlines()
    assert "e0_cut.csv.gz: line " in line and "file ends or breaks here" in line
    # odds only: the boards before the damage are backtested, then the run ends non-zero (exit 1)
    cut = _truncated(ODDS_CSV / "kc_phi_week2.csv.gz", tmp_path / "kc_cut.csv.gz")
    done = run_bot("backtest", str(cut), "--json", cwd=ROOT, timeout=120)
    assert done.returncode == 1, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert "kc_cut.csv.gz: line " in last


def test_the_bots_own_recording_is_backtested_as_it_is(tmp_path: Path) -> None:
    done = run_bot("backtest", str(RECORDING), "--json", "--resamples", "200", cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)["summary"]
    assert summary["bets"] > 0 and summary["clv"]["n_with_close"] == summary["bets"]
