"""The Betfair pipeline benchmark in short (bench/betfair_vs_flumine.py --quick --no-flumine): the
loop set of one copy of each recording through the whole pipeline (engine in backtest mode, the
trivial strategy loaded from bench/strategies, risk, paper venue, SQLite ledger) and the orjson
floor; the figures are printed in their shape and every order the strategy signalled is in the
ledger as the strategy made it. flumine is not run (CI has no flumine venv). No timing is asserted
(docs/architecture.md, Invariants > Hot path lean)."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from contextlib import closing
from decimal import Decimal
from pathlib import Path

import pytest

from bot.types import Selection

ROOT = Path(__file__).resolve().parents[2]
QUICK_EVERY = 500  # `--quick` signals on every 500th market update (bench/betfair_vs_flumine.py)


def _match(pattern: str, text: str) -> re.Match[str]:
    found = re.search(pattern, text, re.MULTILINE)
    assert found is not None, f"no line matching {pattern!r}:\n{text}"
    return found


@pytest.mark.timeout(300)
def test_quick_bench_places_orders_through_the_whole_pipeline(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "betfair_vs_flumine.py"), "--quick", "--no-flumine",
                          "--workdir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=280,
                         check=False)
    out = run.stdout
    report = f"{out[-4000:]}\n{run.stderr[-3000:]}"
    assert run.returncode == 0, report
    # The loop set: one copy of the six recordings, each its own market.
    loop = _match(r"^loop set: 6 files, 6 distinct markets, (\d+) lines", out)
    lines = sum(1 for f in tmp_path.glob("*.mcm") for _ in f.open("rb"))
    assert int(loop.group(1)) == lines > 0, report
    _match(r"^orjson floor: +[\d,]+ lines/s \([\d.]+ s, CPU [\d.]+ s\), peak RSS \d+ MB$", out)
    ours = _match(r"^ours: +[\d,]+ lines/s \([\d.]+ s, CPU [\d.]+ s; (\d+) market updates, (\d+) best-back reads\), "
                  r"peak RSS \d+ MB$", out)
    updates, reads = int(ours.group(1)), int(ours.group(2))
    assert updates > 0 and reads > updates, report  # every runner of each changed market is read
    _match(r"^ratio vs floor: \d+\.\d\d \(goal >= 0\.25; by CPU time \d+\.\d\d\)$", out)
    assert re.search(r"^flumine: not run$", out, re.MULTILINE), report
    orders = _match(r"^ours orders: (\d+) signalled, (\d+) placed; ledger (\S+): (\d+) orders", out)
    signalled, placed, db = int(orders.group(1)), int(orders.group(2)), tmp_path / orders.group(3)
    assert 1 <= signalled <= updates // QUICK_EVERY, report
    assert placed == signalled == int(orders.group(4)), report

    # Read the ledger itself: each order is the strategy's 2.00 back of 2 at Betfair.
    assert db.is_file(), report
    with closing(sqlite3.connect(db)) as ledger:
        rows = ledger.execute("SELECT strategy, back, order_price, stake, bookmakers, selection, status FROM orders"
                              ).fetchall()
        bets = ledger.execute("SELECT count(*) FROM bets").fetchone()[0]
    assert len(rows) == placed, rows
    for strategy, back, price, stake, books, selection, status in rows:
        assert (strategy, back, price, Decimal(stake), books) == ("best_back", 1, 2.0, Decimal(2), "betfair-ex")
        assert Selection.parse(selection).market.type in {"win", "place", "match_odds"}, selection
        assert status, selection
    assert bets >= 1, rows
