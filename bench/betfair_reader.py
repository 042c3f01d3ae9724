"""Betfair Exchange Stream reader throughput: `BetfairStreamReader` (bot/feeds/history/betfair.py)
vs an orjson decode floor of the same lines, and optionally vs flumine.

The loop set of bench/betfair_loop.py: every recording of tests/data/betfair_stream/ (README.md
there; the shared data of /work/shared/data/betfair_stream/) written out `--copies` times,
uncompressed, each copy a distinct market and event (10 copies: 60 markets, 600 560 lines). Then,
in `--rounds` interleaved rounds (the best round counts, so a busy machine skews both sides alike):
- floor: every file read line by line and each line decoded with `orjson.loads`;
- reader: a `BetfairStreamReader` per file, every `OddsBatch` taken (ladders kept, one
  `OddsUpdate` per changed runner with its best back and its `Ladder` to the default depth, 3).
It prints lines/s of each, their ratio (goal >= 0.25) and the peak RSS of the process.

With `--flumine` the same files are also run through a `FlumineSimulation` with a strategy that
reads the best available-to-back price of every runner on every market book and places nothing,
in flumine 3.3.2's own venv (never a project dependency: found or created by
bench/betfair_loop.py, or the interpreter given as `--flumine PYTHON`), and the script prints
`ratio vs flumine: X.XX` (our lines/s over flumine's). bench/betfair_vs_flumine.py compares the
whole pipeline with flumine.

    python bench/betfair_reader.py [--copies 10] [--rounds 3] [--flumine [PYTHON]]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from betfair_loop import build, floor, flumine_python, peak_rss_mb, run_flumine


def reader(files: list[Path]) -> tuple[float, int, int]:
    """(seconds, batches, updates); raises when any file has bad input (the set is clean)."""
    from bot.feeds.history.betfair import BetfairStreamReader

    batches = updates = 0
    start = time.perf_counter()
    for path in files:
        r = BetfairStreamReader(path)
        for batch in r.batches():
            batches += 1
            updates += len(batch.updates)
        if r.stats.bad_total:
            raise SystemExit(f"{path}: bad input {dict(r.stats)}")
    return time.perf_counter() - start, batches, updates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=10, help="copies of each recording (10: 60 markets)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--flumine", metavar="PYTHON", nargs="?", const="auto",
                        help="compare with flumine 3.3.2: its own venv (found or created), or this interpreter")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="betfair-bench-") as tmp:
        files, lines, markets = build(Path(tmp), args.copies)
        print(f"loop set: {len(files)} files, {markets} distinct markets, {lines} lines")
        best_floor = best_reader = float("inf")
        batches = updates = 0
        for _ in range(args.rounds):
            best_floor = min(best_floor, floor(files)[0])
            seconds, batches, updates = reader(files)
            best_reader = min(best_reader, seconds)
        ours = lines / best_reader
        print(f"orjson floor:  {lines / best_floor:12,.0f} lines/s ({best_floor:.2f} s)")
        print(f"reader:        {ours:12,.0f} lines/s ({best_reader:.2f} s; {batches} batches, {updates} updates)")
        print(f"ratio vs floor: {ours / (lines / best_floor):.2f} (goal >= 0.25)")
        print(f"peak RSS: {peak_rss_mb():.0f} MB")
        if args.flumine:
            python, how = flumine_python() if args.flumine == "auto" else (Path(args.flumine), args.flumine)
            print(how)
            if python is None:
                return
            figures = run_flumine(python, Path(tmp), order_every=0)
            theirs = lines / figures["seconds"]
            print(f"flumine:       {theirs:12,.0f} lines/s ({figures['seconds']:.2f} s; {figures['books']} market "
                  f"books, {figures['reads']} best-back reads)")
            print(f"ratio vs flumine: {ours / theirs:.2f}")

if __name__ == "__main__":
    main()
