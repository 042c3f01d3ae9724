"""Betfair Exchange Stream reader throughput: `BetfairStreamReader` (bot/feeds/history/betfair.py)
vs an orjson decode floor of the same lines, and optionally vs flumine.

Every recording of tests/data/betfair_stream/ (README.md there; the shared data of
/work/shared/data/betfair_stream/) is written out `--copies` times, uncompressed, each copy's
market ids rewritten (`<id>` -> `<id>_<copy>`) so the set holds `6 x copies` distinct markets
(10 copies: 60 markets, 600 560 lines). Then, in `--rounds` interleaved rounds (the best round
counts, so a busy machine skews both sides alike):
- floor: every file read line by line and each line decoded with `orjson.loads`;
- reader: a `BetfairStreamReader` per file, every `OddsBatch` taken (ladders kept, one
  `OddsUpdate` per changed runner with its best back and its `Ladder` to the default depth, 3).
It prints lines/s of each, their ratio (goal >= 0.25) and the peak RSS of the process.

With `--flumine PYTHON` (a separate venv with `flumine==3.3.2`, never a project dependency, e.g.
`python3 -m venv /tmp/flumine-venv && /tmp/flumine-venv/bin/pip install flumine==3.3.2`), the same
files are also run through a `FlumineSimulation` in that interpreter, with a strategy that reads
the best available-to-back price of every runner on every market book, and the script prints
`ratio vs flumine: X.XX` (our lines/s over flumine's).

    python bench/betfair_reader.py [--copies 10] [--rounds 3] [--flumine /tmp/flumine-venv/bin/python]

Stdlib only at import (the flumine worker runs this file in flumine's interpreter).
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import json
import re
import resource
import subprocess
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "betfair_stream"
SOURCES = ("1.197931750.gz", "1.197931751.gz", "1.200806927.gz", "BASIC-1.132153978", "SELF-1.181223995.gz",
           "nautilus/1-206064380.bz2")
_MARKET_ID = re.compile(rb'"id":\s*"(1\.\d+)"')


def _raw(path: Path) -> bytes:
    if path.suffix == ".gz":
        return gzip.decompress(path.read_bytes())
    if path.suffix == ".bz2":
        return bz2.decompress(path.read_bytes())
    return path.read_bytes()


def build(folder: Path, copies: int) -> tuple[list[Path], int, int]:
    """The loop set: (files, lines, distinct markets)."""
    files: list[Path] = []
    lines = 0
    markets: set[bytes] = set()
    for name in SOURCES:
        text = _raw(DATA / name)
        for copy in range(copies):
            suffix = f"_{copy}".encode()

            def rename(m: re.Match[bytes], suffix: bytes = suffix) -> bytes:
                markets.add(m.group(1) + suffix)
                return m.group(0)[:-1] + suffix + b'"'

            out = folder / f"{Path(name).name.split('.')[0]}-{name.split('/')[-1]}-{copy}.jsonl"
            out.write_bytes(_MARKET_ID.sub(rename, text))
            files.append(out)
            lines += text.count(b"\n")
    return files, lines, len(markets)


def floor(files: list[Path]) -> float:
    import orjson

    loads = orjson.loads
    start = time.perf_counter()
    for path in files:
        with path.open("rb") as f:
            for line in f:
                loads(line)
    return time.perf_counter() - start


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


def flumine_worker(files: list[Path]) -> None:
    """Run in flumine's interpreter: one FlumineSimulation over `files`; prints JSON."""
    import logging

    from flumine import BaseStrategy, FlumineSimulation, clients  # type: ignore[import-not-found]
    from flumine.streams.betfairhistoricalstream import BetfairHistoricalStream  # type: ignore[import-not-found]

    logging.disable(logging.CRITICAL)

    class BestBack(BaseStrategy):
        books = 0
        reads = 0

        def check_market_book(self, market: object, market_book: object) -> bool:
            return True

        def process_market_book(self, market: object, market_book: object) -> None:
            BestBack.books += 1
            for runner in market_book.runners:  # type: ignore[attr-defined]
                atb = runner.ex.available_to_back
                if atb:
                    atb[0]["price"]  # the read is the point (flumine serialises levels as dicts)
                BestBack.reads += 1

    framework = FlumineSimulation(client=clients.SimulatedClient())
    framework.add_strategy(BestBack(streams=[BetfairHistoricalStream(file_path=str(f)) for f in files]))
    start = time.perf_counter()
    framework.run()
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "books": BestBack.books, "reads": BestBack.reads}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=10, help="copies of each recording (10: 60 markets)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--flumine", metavar="PYTHON", help="an interpreter with flumine==3.3.2 installed")
    parser.add_argument("--flumine-worker", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.flumine_worker:
        flumine_worker(sorted(Path(args.flumine_worker).glob("*.jsonl")))
        return
    with tempfile.TemporaryDirectory(prefix="betfair-bench-") as tmp:
        files, lines, markets = build(Path(tmp), args.copies)
        print(f"loop set: {len(files)} files, {markets} distinct markets, {lines} lines")
        best_floor = best_reader = float("inf")
        batches = updates = 0
        for _ in range(args.rounds):
            best_floor = min(best_floor, floor(files))
            seconds, batches, updates = reader(files)
            best_reader = min(best_reader, seconds)
        ours = lines / best_reader
        print(f"orjson floor:  {lines / best_floor:12,.0f} lines/s ({best_floor:.2f} s)")
        print(f"reader:        {ours:12,.0f} lines/s ({best_reader:.2f} s; {batches} batches, {updates} updates)")
        print(f"ratio vs floor: {ours / (lines / best_floor):.2f} (goal >= 0.25)")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS: {peak:.0f} MB")
        if args.flumine:
            done = subprocess.run([args.flumine, __file__, "--flumine-worker", tmp], capture_output=True, text=True,
                                  check=False)
            if done.returncode != 0:
                print(f"flumine run failed ({done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
                return
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            theirs = lines / figures["seconds"]
            print(f"flumine:       {theirs:12,.0f} lines/s ({figures['seconds']:.2f} s; {figures['books']} market "
                  f"books, {figures['reads']} best-back reads)")
            print(f"ratio vs flumine: {ours / theirs:.2f}")


if __name__ == "__main__":
    main()
