"""The research-loop benchmark in short (bench/backtest.py --skip-sweep on the tests' extracts laid
out as ../shared/data is, through BOT_BENCH_DATA): every stage runs on the same change log and
the whole `bot backtest` runs in a child process for both sources. No timing is asserted
(docs/research.md, Performance)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HISTORY = ROOT / "tests" / "data" / "history"


def _data(folder: Path) -> Path:
    """The bench's data layout, filled with the tests' real extracts."""
    nfl = folder / "oddsapi_nfl_2025"
    nfl.mkdir(parents=True)
    shutil.copy(HISTORY / "oddsapi" / "nfl_odds_changes_week2.csv.gz", nfl / "nfl_odds_changes.csv.gz")
    shutil.copy(HISTORY / "oddsapi" / "nfl_odds_changes_week2_snapshot_times.txt",
                nfl / "nfl_odds_changes_snapshot_times.txt")
    shutil.copy(ROOT / "bot" / "data" / "nfl_results_2025-11-16.csv", nfl / "nfl_2025_games_nflverse.csv")
    football = folder / "football_data_top5_2019_2024"
    football.mkdir()
    shutil.copy(HISTORY / "football_data" / "e0_2023-24.csv.gz", football / "top5_leagues_2019-20_to_2023-24.csv.gz")
    return folder


@pytest.mark.timeout(240)
def test_quick_bench_runs_every_stage_and_both_sources(tmp_path: Path) -> None:
    env = dict(os.environ, BOT_BENCH_DATA=str(_data(tmp_path / "data")))
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "backtest.py"), "--skip-sweep"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=230, check=False)
    report = f"{run.stdout[-4000:]}\n{run.stderr[-3000:]}"
    assert run.returncode == 0, report
    updates = re.search(r"NFL 2025 change log: ([\d,]+) outcome updates", run.stdout)
    assert updates is not None and int(updates.group(1).replace(",", "")) > 1000, report
    stages = re.search(r"\+ OddsBook [\d.]+ s \(([\d.]+)\); \+ consensus of each changed market [\d.]+ s "
                       r"\(([\d.]+)\); whole pipeline, start-up and report included [\d.]+ s \(([\d.]+)\)", run.stdout)
    assert stages is not None, report
    book, consensus, _ = (float(r) for r in stages.groups())  # the whole run is start-up on an extract
    assert book > 0 and consensus > 0, report
    assert re.search(r"peak RSS of the pipeline: \d+ MB", run.stdout), report
    assert re.search(r"football-data, 8,955 matches: [\d.]+ s .*(MET|NOT MET); peak RSS \d+ MB", run.stdout), report
