"""The tick-to-order benchmark in short (bench/tick_to_order.py --quick): the live bot against the
local ABP and BoltOdds servers on loopback places its orders from real re-priced BoltOdds frames,
and the bot's own stamps (bot/latency.py: frame read in bot/feeds/boltodds.py, request written in
bot/execution/abp_client.py) reach `Executor.latency` for every order; a frame's orders leave in
one place-orders request. No timing is asserted (docs/architecture.md, Invariants > Hot path lean)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
QUICK_ORDERS = 100  # what `--quick` places (bench/tick_to_order.py)


def _number(pattern: str, text: str) -> int:
    found = re.search(pattern, text)
    assert found is not None, f"no line matching {pattern!r}:\n{text}"
    return int(found.group(1))


@pytest.mark.timeout(180)
def test_quick_bench_stamps_every_order_end_to_end(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "tick_to_order.py"), "--quick", "--workdir",
                          str(tmp_path / "work")],
                         cwd=ROOT, capture_output=True, text=True, timeout=170, check=False)
    report = f"{run.stdout[-4000:]}\n{run.stderr[-3000:]}"
    assert run.returncode == 0, report
    # Without a frame stamp or a write stamp nothing is recorded: "per order: no samples".
    assert _number(r"per order: n=(\d+)", run.stdout) >= QUICK_ORDERS, report
    frames = _number(r"per frame: n=(\d+)", run.stdout)
    assert _number(r"place-orders requests received: (\d+) for", run.stdout) == frames, report
    assert _number(r"frames with several orders: (\d+)", run.stdout) > 0, report
