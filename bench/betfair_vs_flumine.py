"""The whole pipeline vs flumine 3.3.2 on the same Betfair Exchange Stream recordings, and both vs an
orjson decode floor of the same lines.

The loop set (bench/betfair_loop.py): the six recordings of tests/data/betfair_stream/ written
`--copies` times, each copy a distinct market and event (10: 60 markets, 600 560 lines), once,
into a work folder. Each contestant then runs in a child process of its own, so its peak RSS (`ru_maxrss`,
printed by the child) is its own; the time counted is its run, not the interpreter's start-up:
- ours: `bot backtest`'s engine as the bot runs it (bot/research/backtest.py: the loop set as
  history files, merged on event time, and as Betfair results; paper venue; a real SQLite ledger
  in the work folder) with the trivial strategy bench/strategies/best_back_every.py loaded from
  `strategy_dirs`: reads every runner's best back on every market update and backs the first
  runner offering 2.00 or more at 2.00 every 5,000th update; risk on with the default checks and
  caps that let such orders through. Reader -> OddsBook -> strategy -> risk -> paper venue ->
  ledger, settlement at the end;
- flumine: a `FlumineSimulation` over the same files with the same strategy, in a venv of its own
  (created under ~/.cache/betbot-bench with `pip install flumine==3.3.2` when missing; how is
  printed; never a project dependency). flumine calls its strategy on every market book, the
  bot's OddsBook only on a market in which some runner's quote changed (its best back, whether it
  is suspended, or its ladder: 3 levels a side, the default `feeds.history.ladder_depth`, last
  traded price, traded volume); flumine's strategy counts the books with such a change as its
  updates, so both place their orders at the same points;
- floor: `orjson.loads` of every line.
With `--runs N` the contestants run N times in turn and the best time of each counts (a busy
machine skews all alike); peak RSS is the largest of the runs. It prints lines/s of each and the
CPU seconds of its run (on a shared machine the ratio of CPU times approximates the ratio of wall
times on an idle one), `ratio vs flumine: X.XX` (ours over flumine's), the ratio to the floor,
peak RSS of each and the orders each placed. Goals: ratio vs flumine >= 2, ratio vs floor >= 0.25,
our peak RSS at or below flumine's.

    python bench/betfair_vs_flumine.py [--runs 1] [--copies 10] [--quick] [--no-flumine] [--workdir DIR]

`--quick` (tests/bench/test_betfair_vs_flumine_short.py): one copy (6 markets, 60 056 lines),
orders every 500th update.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from betfair_loop import build, floor, flumine_python, loop_files, peak_rss_mb, run_flumine

ROOT = Path(__file__).resolve().parent.parent
STRATEGIES = Path(__file__).resolve().parent / "strategies"
STRATEGY = "best_back_every.py:BestBackEvery"
GOAL_FLUMINE, GOAL_FLOOR = 2.0, 0.25
PRELOAD = ("bot.engine.wiring", "bot.engine.core", "bot.config.preflight", "bot.feeds.history.feed",
           "bot.feeds.history.betfair", "bot.sim.adapters", "bot.sim.paper", "bot.sim.settlement",
           "bot.execution.executor", "bot.risk.manager", "bot.strategy.host", "bot.engine.alerts", "bot.notify")
"""What building the engine imports: imported before the clock starts, as flumine's modules are."""


def bench_config(folder: Path, every: int) -> Path:
    """config.yaml made into the benchmark's (written to `folder`): the trivial strategy alone,
    risk caps and limits no run reaches (the benchmark measures every order's path, not a halt)
    and no in-flight block (an order partly filled from a ladder level would hold its runner),
    quotes never stale (flumine has no staleness), quiet logs."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["strategy_dirs"] = [str(STRATEGIES)]
    config["strategies"] = [{"name": "best_back", "path": STRATEGY, "params": {"every": every}}]
    config["risk"].update(max_exposure_selection=10**6, max_exposure_fixture=10**6, max_exposure_bookmaker=10**6,
                          max_exposure_strategy=10**7, max_exposure_total=10**7, daily_loss_limit=10**7,
                          max_drawdown=10**7, max_orders_per_window=10**6,
                          # a back at an exchange fills from the level's size, so an order may stay
                          # PARTIALLY_FILLED; flumine has no in-flight check, and the same runner is
                          # backed again
                          block_while_in_flight=False)
    config["feeds"]["stale_after_seconds"] = 10**9
    config["settlement"] = {"unresolved": "hold"}
    config["logging"] = {"level": "ERROR", "json_file": False, "progress": False}
    path = folder / "bench.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def ours(folder: Path, state: Path, every: int) -> dict[str, Any]:
    """Run in a child: the whole pipeline over the loop set in `folder` on a fresh ledger in
    `state`; its figures."""
    from bot.config.settings import load_settings
    from bot.engine.logs import setup_logging
    from bot.research.backtest import backtest_settings, classify, run
    from bot.strategy.loader import resolve_class

    config = bench_config(folder, every)
    settings = backtest_settings(load_settings(config), classify(loop_files(folder)), state, log_level="ERROR",
                                 progress=False)
    setup_logging(settings)
    for module in PRELOAD:
        importlib.import_module(module)
    start, cpu = time.perf_counter(), time.process_time()
    stats = run(settings, config.parent)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    if stats.failed:
        raise SystemExit(f"the run failed: {stats.failed}")
    db = sqlite3.connect(settings.db_path)
    try:
        orders, filled = db.execute("SELECT count(*), count(*) FILTER (WHERE CAST(filled_stake AS REAL) > 0) FROM orders").fetchone()
        bets = db.execute("SELECT count(*) FROM bets").fetchone()[0]
    finally:
        db.close()
    tally = resolve_class("best_back", STRATEGY, [STRATEGIES]).tally  # type: ignore[attr-defined]
    return {"seconds": seconds, "cpu": cpu, "books": tally["updates"], "reads": tally["reads"], "signals": tally["signals"],
            "placed": stats.orders_submitted, "rejected": dict(stats.by_reason), "ledger_orders": orders,
            "ledger_filled": filled, "ledger_bets": bets, "db": str(settings.db_path), "peak_rss_mb": peak_rss_mb()}


def child(contestant: str, folder: Path, every: int, state: Path) -> dict[str, Any]:
    """One contestant in a child process of this interpreter: its figures."""
    done = subprocess.run([sys.executable, __file__, "--child", contestant, "--workdir", str(folder),
                           "--every", str(every), "--state", str(state)], capture_output=True, text=True,
                          check=False, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"{contestant} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest run's figures, with the largest peak RSS of all runs."""
    fastest = dict(min(runs, key=lambda r: r["seconds"]))
    fastest["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    return fastest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1, help="runs of each contestant; the fastest counts")
    parser.add_argument("--copies", type=int, default=10, help="copies of each recording (10: 60 markets)")
    parser.add_argument("--quick", action="store_true", help="one copy (6 markets), an order every 500th update")
    parser.add_argument("--no-flumine", action="store_true", help="ours and the floor only")
    parser.add_argument("--workdir", type=Path, help="keep the loop set and the ledger here (default: a temp dir)")
    parser.add_argument("--child", choices=("ours", "floor"), help=argparse.SUPPRESS)
    parser.add_argument("--every", type=int, default=5000, help=argparse.SUPPRESS)
    parser.add_argument("--state", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "ours":
        print(json.dumps(ours(args.workdir, args.state, args.every)))
        return
    if args.child == "floor":
        seconds, cpu = floor(loop_files(args.workdir))
        print(json.dumps({"seconds": seconds, "cpu": cpu, "peak_rss_mb": peak_rss_mb()}))
        return
    copies, every = (1, 500) if args.quick else (args.copies, 5000)
    with tempfile.TemporaryDirectory(prefix="betfair-vs-flumine-") as tmp:
        work = args.workdir or Path(tmp)
        compare(work, copies, every, args.runs, flumine=not args.no_flumine)


def compare(work: Path, copies: int, every: int, runs: int, *, flumine: bool) -> None:
    """Build the loop set in `work`, run the contestants `runs` times and print the figures."""
    work.mkdir(parents=True, exist_ok=True)
    files, lines, markets = build(work, copies)
    print(f"loop set: {len(files)} files, {markets} distinct markets, {lines} lines; an order every {every}th update")
    python = None
    if flumine:
        python, how = flumine_python()
        print(how)
    results: dict[str, list[dict[str, Any]]] = {"ours": [], "floor": [], "flumine": []}
    for run in range(runs):
        results["floor"].append(child("floor", work, every, work))
        # a fresh ledger each run (a finished replay is refused on the same one)
        results["ours"].append(child("ours", work, every, work / f"state-{run + 1}"))
        if python is not None:
            results["flumine"].append(run_flumine(python, work, every))
    base, us = best(results["floor"]), best(results["ours"])
    rate_floor, rate_ours = lines / base["seconds"], lines / us["seconds"]
    print(f"orjson floor: {rate_floor:12,.0f} lines/s ({base['seconds']:.2f} s, CPU {base['cpu']:.2f} s), "
          f"peak RSS {base['peak_rss_mb']:.0f} MB")
    print(f"ours:         {rate_ours:12,.0f} lines/s ({us['seconds']:.2f} s, CPU {us['cpu']:.2f} s; {us['books']} market "
          f"updates, {us['reads']} best-back reads), peak RSS {us['peak_rss_mb']:.0f} MB")
    ledger = Path(us["db"]).relative_to(work)
    print(f"ours orders: {us['signals']} signalled, {us['placed']} placed; ledger {ledger}: {us['ledger_orders']} "
          f"orders ({us['ledger_filled']} filled), {us['ledger_bets']} bets; rejected {us['rejected'] or 'none'}")
    print(f"ratio vs floor: {rate_ours / rate_floor:.2f} (goal >= {GOAL_FLOOR}; by CPU time "
          f"{base['cpu'] / us['cpu']:.2f})")
    if not results["flumine"]:
        print("flumine: not run")
        return
    them = best(results["flumine"])
    rate_them = lines / them["seconds"]
    print(f"flumine:      {rate_them:12,.0f} lines/s ({them['seconds']:.2f} s, CPU {them['cpu']:.2f} s; {them['books']} "
          f"market books, {them['updates']} market updates, {them['reads']} best-back reads), "
          f"peak RSS {them['peak_rss_mb']:.0f} MB")
    print(f"flumine orders: {them['placed']} placed, {them['matched']} matched")
    print(f"ratio vs flumine: {rate_ours / rate_them:.2f} (goal >= {GOAL_FLUMINE}; by CPU time "
          f"{them['cpu'] / us['cpu']:.2f})")
    print(f"flumine vs floor: {rate_them / rate_floor:.2f}")
    rss = "at or below" if us["peak_rss_mb"] <= them["peak_rss_mb"] else "above"
    print(f"peak RSS: ours {us['peak_rss_mb']:.0f} MB, flumine {them['peak_rss_mb']:.0f} MB ({rss} flumine's)")
    print(f"orders placed: ours {us['placed']}, flumine {them['placed']} (market updates: ours {us['books']}, "
          f"flumine {them['updates']})")

if __name__ == "__main__":
    main()
