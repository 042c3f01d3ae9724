"""What the Betfair benchmarks share (bench/betfair_reader.py, bench/betfair_vs_flumine.py): the loop
set of distinct markets, the orjson decode floor, and flumine 3.3.2 in a virtual environment of its
own with the equivalent strategy.

- Loop set: every recording of tests/data/betfair_stream/ (README.md there) written out `copies`
  times, uncompressed, each copy's market ids rewritten (`<id>` -> `<id>_<copy>`), so the set holds
  `6 x copies` distinct markets (10 copies: 60 markets, 600 560 lines). Each copy is a distinct
  event too: its event ids (`<id>` -> `<id> x 100 + copy`), event names and venues (`<name> #<copy>`)
  are rewritten, since the bot names a Betfair fixture by event name and market time
  (docs/reference/historical-data.md, Betfair Exchange Stream, Names): copies that kept them would
  be one market in its book, each update of a later copy a repeat of the first's.
- Floor: every file read line by line, each line decoded with `orjson.loads`.
- flumine: never a project dependency. `flumine_python()` finds or creates a venv with
  `flumine==3.3.2` from the package registry under `$XDG_CACHE_HOME/betbot-bench` (default
  `~/.cache`), and `run_flumine` runs a `FlumineSimulation` over a folder of the loop set in that
  interpreter: this file is its worker (`python bench/betfair_loop.py DIR [--order-every N]`,
  one JSON line out), so it imports only the standard library at module level.
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "betfair_stream"
SOURCES = ("1.197931750.gz", "1.197931751.gz", "1.200806927.gz", "BASIC-1.132153978", "SELF-1.181223995.gz",
           "nautilus/1-206064380.bz2")
FLUMINE = "flumine==3.3.2"
_MARKET_ID = re.compile(rb'"id":\s*"(1\.\d+)"')
_EVENT_ID = re.compile(rb'"eventId":\s*"(\d+)"')
_EVENT_NAME = re.compile(rb'"(?:eventName|venue)":\s*"[^"]*')  # the closing quote stays


def _raw(path: Path) -> bytes:
    if path.suffix == ".gz":
        return gzip.decompress(path.read_bytes())
    if path.suffix == ".bz2":
        return bz2.decompress(path.read_bytes())
    return path.read_bytes()


def build(folder: Path, copies: int, sources: tuple[str, ...] = SOURCES) -> tuple[list[Path], int, int]:
    """Write the loop set into `folder`: (files, lines, distinct markets)."""
    files: list[Path] = []
    lines = 0
    markets: set[bytes] = set()
    for name in sources:
        text = _raw(DATA / name)
        for copy in range(copies):
            suffix = f"_{copy}".encode()

            def rename(m: re.Match[bytes], suffix: bytes = suffix) -> bytes:
                markets.add(m.group(1) + suffix)
                return m.group(0)[:-1] + suffix + b'"'

            def event_id(m: re.Match[bytes], copy: int = copy) -> bytes:
                return b'"eventId":"%d"' % (int(m.group(1)) * 100 + copy)

            def event_name(m: re.Match[bytes], copy: int = copy) -> bytes:
                return m.group(0) + b" #%d" % copy

            out = folder / f"{Path(name).name}-{copy}.mcm"  # not .jsonl: `bot backtest` takes that for its own
            out.write_bytes(_MARKET_ID.sub(rename, _EVENT_NAME.sub(event_name, _EVENT_ID.sub(event_id, text))))
            files.append(out)
            lines += text.count(b"\n")
    return files, lines, len(markets)


def loop_files(folder: Path) -> list[Path]:
    """The loop set `build` wrote into `folder`, in a fixed order."""
    return sorted(folder.glob("*.mcm"))


def floor(files: list[Path]) -> tuple[float, float]:
    """(seconds, CPU seconds of this process) to read every line of `files` and decode each with
    `orjson.loads`."""
    import orjson

    loads = orjson.loads
    start, cpu = time.perf_counter(), time.process_time()
    for path in files:
        with path.open("rb") as f:
            for line in f:
                loads(line)
    return time.perf_counter() - start, time.process_time() - cpu


def peak_rss_mb() -> float:
    """This process's peak resident set size (MB; Linux reports `ru_maxrss` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def flumine_python() -> tuple[Path | None, str]:
    """(the interpreter of a venv with flumine 3.3.2, or None; one sentence on how it was set up
    or why it could not be). A missing venv is created with `python3 -m venv` and `pip install
    flumine==3.3.2`; nothing else is fetched."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "betbot-bench" / "flumine-3.3.2"
    python = cache / "bin" / "python"
    probe = [str(python), "-c", "import flumine; print(flumine.__version__)"]

    def version() -> str:
        done = subprocess.run(probe, capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    if python.exists() and version() == "3.3.2":
        return python, f"flumine 3.3.2 found in {cache}"
    started = time.perf_counter()
    for step in ([sys.executable, "-m", "venv", "--clear", str(cache)],
                 [str(python), "-m", "pip", "install", "-q", FLUMINE]):
        try:
            done = subprocess.run(step, capture_output=True, text=True, check=False, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, f"flumine not set up: `{' '.join(step)}` failed: {exc}"
        if done.returncode != 0:
            why = (done.stderr.strip().splitlines() or ["no output"])[-1]
            return None, f"flumine not set up: `{' '.join(step)}` exited {done.returncode}: {why}"
    if version() != "3.3.2":
        return None, f"flumine not set up: {cache} does not import flumine 3.3.2 after pip install {FLUMINE}"
    return python, (f"flumine 3.3.2 installed into {cache} (python -m venv, pip install {FLUMINE}; "
                    f"{time.perf_counter() - started:.0f} s)")


def run_flumine(python: Path, folder: Path, order_every: int) -> dict[str, Any]:
    """`flumine_worker` over the loop set in `folder`, in flumine's interpreter: its JSON figures.

    Raises:
        RuntimeError: the worker failed (its last line of stderr).
    """
    done = subprocess.run([str(python), __file__, str(folder), "--order-every", str(order_every)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"flumine run failed ({done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def flumine_worker(files: list[Path], order_every: int, depth: int = 3) -> dict[str, Any]:
    """Run in flumine's interpreter: one FlumineSimulation over `files` (flumine plays them one
    market after another) with the strategy of bench/strategies/best_back_every.py. On every
    market book it reads every runner's best available-to-back price. A book in which some
    runner's quote changed is an update, as the bot's OddsBook counts them (it calls strategies on
    changed markets only): a quote as the bot's reader makes it (bot/feeds/history/betfair.py) is
    the best back price (None when nothing is offered, the market is not OPEN, the runner not
    ACTIVE, or the market never had a ladder), whether it is suspended, and the ladder: `depth`
    back and lay levels (price, size), last traded price, traded volume. Every `order_every`th
    update (0: never) it backs the first runner that can be backed at 2.00 or more with a 2.00
    LimitOrder of 2 (GBP, the simulated client's currency). Figures: seconds and CPU seconds (the
    simulation built and run), market books, updates, best-back reads, orders placed (accepted by
    flumine's controls) and matched at the end, peak RSS."""
    import logging

    from flumine import BaseStrategy, FlumineSimulation, clients  # type: ignore[import-not-found]
    from flumine.order.ordertype import LimitOrder  # type: ignore[import-not-found]
    from flumine.order.trade import Trade  # type: ignore[import-not-found]
    from flumine.streams.betfairhistoricalstream import BetfairHistoricalStream  # type: ignore[import-not-found]

    logging.disable(logging.CRITICAL)
    placed: list[Any] = []
    tally = {"books": 0, "updates": 0, "reads": 0}
    quoted: dict[tuple[str, int, float], tuple[Any, ...]] = {}  # runner -> its last quote
    laddered: set[str] = set()  # markets that had a ladder (not only a last traded price)

    def levels(ladder: list[dict[str, float]]) -> tuple[tuple[float, float], ...]:
        return tuple((level["price"], level["size"]) for level in ladder[:depth])

    class BestBackEvery(BaseStrategy):
        def check_market_book(self, market: Any, market_book: Any) -> bool:
            return True

        def process_market_book(self, market: Any, market_book: Any) -> None:
            tally["books"] += 1
            target = None
            changed = False
            market_id, is_open = market_book.market_id, market_book.status == "OPEN"
            runners = market_book.runners
            if market_id not in laddered and any(r.ex.available_to_back or r.ex.available_to_lay for r in runners):
                laddered.add(market_id)
            has_ladder = market_id in laddered
            for runner in runners:
                ex = runner.ex
                atb = ex.available_to_back  # flumine serialises levels as dicts
                tally["reads"] += 1
                suspended = not (is_open and runner.status == "ACTIVE" and has_ladder)
                best = None if suspended or not atb else atb[0]["price"]
                quote = (best, suspended, levels(atb), levels(ex.available_to_lay), runner.last_price_traded,
                         runner.total_matched)
                key = (market_id, runner.selection_id, runner.handicap)
                if quoted.get(key) != quote:
                    quoted[key] = quote
                    changed = True
                if target is None and best is not None and best >= 2.0:
                    target = runner
            if not changed:
                return
            tally["updates"] += 1
            if order_every and tally["updates"] % order_every == 0 and target is not None:
                trade = Trade(market_id=market_id, selection_id=target.selection_id, handicap=target.handicap,
                              strategy=self)
                order = trade.create_order(side="BACK", order_type=LimitOrder(price=2.0, size=2.0))
                if market.place_order(order):
                    placed.append(order)

    start, cpu = time.perf_counter(), time.process_time()
    framework = FlumineSimulation(client=clients.SimulatedClient())
    framework.add_strategy(BestBackEvery(streams=[BetfairHistoricalStream(file_path=str(f)) for f in files]))
    framework.run()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"seconds": seconds, "cpu": cpu, **tally, "placed": len(placed),
            "matched": sum(1 for o in placed if o.size_matched > 0), "peak_rss_mb": peak_rss_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description="flumine worker: a FlumineSimulation over a loop set folder")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--order-every", type=int, default=0, help="place an order every Nth market book (0: none)")
    args = parser.parse_args()
    print(json.dumps(flumine_worker(loop_files(args.folder), args.order_every)))


if __name__ == "__main__":
    main()
