"""The research loop's speed (docs/research.md): `bot backtest` on real seasons.

1. The whole NFL 2025 change log (The Odds API, 389,273 rows, 6,546 snapshots) through the whole
   pipeline (value strategy on the consensus, risk, paper venue, ledger, settlement from the
   nflverse results, closing lines) against the reader alone on the same file, in one run:
   outcome updates per second, their ratio (goal >= 0.5) and the pipeline's peak RSS
   (goal <= 300 MB). Two stages in between show where the time goes: the reader feeding an
   OddsBook, and that plus the no-vig consensus of every changed market.
2. All 8,955 football-data matches with docs/examples/football-data.yaml: wall time (goal <= 20 s).
3. A 3x3 sweep on the football-data file: wall time and CPU time of all its processes; CPU / wall
   is the number of cores in use (goal: both cores, ~2 on this machine).

Each pipeline run is `bot backtest` in a child process (its peak RSS is its own), timed from
start to exit, report included. The data is read from ../shared/data (beside the project root)
or BOT_BENCH_DATA.

    python bench/backtest.py [--skip-sweep]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("BOT_BENCH_DATA", ROOT.parent / "shared" / "data"))
NFL_ODDS = DATA / "oddsapi_nfl_2025" / "nfl_odds_changes.csv.gz"
NFL_RESULTS = DATA / "oddsapi_nfl_2025" / "nfl_2025_games_nflverse.csv"
FOOTBALL = DATA / "football_data_top5_2019_2024" / "top5_leagues_2019-20_to_2023-24.csv.gz"
FOOTBALL_CONFIG = ROOT / "docs" / "examples" / "football-data.yaml"
GOAL_RATIO, GOAL_RSS_MB, GOAL_FOOTBALL_S = 0.5, 300, 20.0


def reader_only(stage: str = "reader") -> tuple[int, float]:
    """(outcome updates, seconds) of the change log read alone (`stage` "reader"), also applied
    to an OddsBook on event time ("book"), and then with the no-vig consensus of every market
    a batch changed ("consensus", what a consensus strategy asks of the book): the floor under
    any pipeline that keeps a book, measured in the same run."""
    from datetime import timedelta

    from bot.clock import ReplayClock
    from bot.feeds.history.oddsapi_changes import OddsApiChangesReader
    from bot.market.book import OddsBook

    clock = ReplayClock()
    book = OddsBook(clock, timedelta(hours=1))  # config.yaml's feeds.stale_after_seconds in nfl_config
    updates = 0
    started = time.perf_counter()
    for batch in OddsApiChangesReader(NFL_ODDS).batches():
        updates += len(batch.updates)
        if stage == "reader":
            continue
        clock.advance(batch.received_at)
        changed = book.apply_batch(batch)
        if stage == "consensus":
            for fixture, market in changed:
                book.consensus(fixture, market)
    return updates, time.perf_counter() - started


def nfl_config(folder: Path) -> Path:
    """config.yaml with risk limits a season does not hit (the benchmark measures the work of
    every signal, not a halt after the first bad month)."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["risk"].update(max_exposure_total=10**7, max_exposure_strategy=10**7, max_exposure_bookmaker=10**7,
                          daily_loss_limit=10**7, max_drawdown=10**7, max_orders_per_window=10**6)
    config["settlement"] = {"unresolved": "hold"}
    config["logging"] = {"level": "ERROR", "json_file": False, "progress": False}
    path = folder / "nfl.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def bot(*args: str) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of it and its children, peak RSS MB of the largest process)
    of `bot ARGS` in a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True, cwd=ROOT,
                          check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"bot {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, after.ru_maxrss // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-sweep", action="store_true", help="leave out the 3x3 sweep")
    args = parser.parse_args()
    for path in (NFL_ODDS, NFL_RESULTS, FOOTBALL):
        if not path.is_file():
            sys.exit(f"{path}: missing (set BOT_BENCH_DATA to the shared data folder)")
    with tempfile.TemporaryDirectory() as tmp:
        updates, reader_s = reader_only()
        _, book_s = reader_only("book")
        _, consensus_s = reader_only("consensus")
        wall, _, rss = bot("backtest", str(NFL_ODDS), str(NFL_RESULTS), "--config", str(nfl_config(Path(tmp))),
                           "--json", "--resamples", "2000")
        reader_rate, pipeline_rate = updates / reader_s, updates / wall
        ratio = pipeline_rate / reader_rate
        print(f"NFL 2025 change log: {updates:,} outcome updates; reader alone {reader_s:.1f} s "
              f"({reader_rate:,.0f}/s); whole pipeline {wall:.1f} s ({pipeline_rate:,.0f}/s)")
        print(f"  stages, ratio to the reader alone: + OddsBook {book_s:.1f} s ({reader_s / book_s:.2f}); "
              f"+ consensus of each changed market {consensus_s:.1f} s ({reader_s / consensus_s:.2f}); "
              f"whole pipeline, start-up and report included {wall:.1f} s ({reader_s / wall:.2f})")
        print(f"  ratio pipeline / reader: {ratio:.2f} (goal >= {GOAL_RATIO}) "
              f"{'MET' if ratio >= GOAL_RATIO else 'NOT MET'}")
        print(f"  peak RSS of the pipeline: {rss} MB (goal <= {GOAL_RSS_MB}) {'MET' if rss <= GOAL_RSS_MB else 'NOT MET'}")

        wall, _, rss = bot("backtest", str(FOOTBALL), "--config", str(FOOTBALL_CONFIG), "--json",
                           "--resamples", "2000")
        print(f"football-data, 8,955 matches: {wall:.1f} s (goal <= {GOAL_FOOTBALL_S:.0f} s) "
              f"{'MET' if wall <= GOAL_FOOTBALL_S else 'NOT MET'}; peak RSS {rss} MB")
        if not args.skip_sweep:
            wall, cpu, _ = bot("backtest", str(FOOTBALL), "--config", str(FOOTBALL_CONFIG), "--json",
                               "--resamples", "2000", "--sweep", "min_edge=0.02,0.03,0.05",
                               "--sweep", "devig=multiplicative,power,shin")
            cores = cpu / wall
            print(f"3x3 sweep on football-data: {wall:.1f} s wall, {cpu:.1f} s CPU: {cores:.2f} cores in use "
                  f"of {os.cpu_count()} (goal: all) {'MET' if cores >= 0.8 * (os.cpu_count() or 1) else 'NOT MET'}")


if __name__ == "__main__":
    main()
