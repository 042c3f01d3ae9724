"""A minimal bot process for the exactly-once SIGKILL test: Executor + AbpVenue + Ledger.

usage: killbot.py DB URL MODE KILL_AT SEED
MODE: after_commit   - SIGKILL itself at the KILL_AT-th placement, after the INTENT commit,
                       before the HTTP request leaves
      after_response - SIGKILL itself at the KILL_AT-th placement, after the HTTP answer
                       arrived, before the executor applied it
      loop           - place forever (the test kills it from outside at a random moment)
      reconcile      - start (reconciles everything), wait until no order is open, exit 0
Prints READY once the executor has started and PLACED after each submit.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from pathlib import Path

from loguru import logger

from bot.clock import WallClock
from bot.execution.abp_venue import AbpVenue
from bot.execution.config import AbpConfig, ExecutionConfig
from bot.execution.executor import Executor
from bot.ledger.store import Ledger

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.execution.helpers import Events, intent


class KillingVenue(AbpVenue):
    """AbpVenue that dies at a chosen placement (fault injection at the process boundary)."""

    def __init__(self, *args, mode: str, kill_at: int, **kw) -> None:
        super().__init__(*args, **kw)
        self.mode, self.kill_at, self.calls = mode, kill_at, 0

    async def place_orders(self, orders):
        self.calls += 1
        call = self.calls  # placements can overlap (reconcile resends and submits)
        if self.mode == "after_commit" and call == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        try:
            return await super().place_orders(orders)
        finally:
            if self.mode == "after_response" and call == self.kill_at:
                os.kill(os.getpid(), signal.SIGKILL)


async def main(db: Path, url: str, mode: str, kill_at: int, seed: int) -> None:
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    rng = random.Random(seed)
    ledger = Ledger(db)
    config = AbpConfig(base_url=url, ws_url=url.replace("http", "ws", 1) + "/ws", api_key="kill-key",
                       timeout_seconds=2.0, requests_per_second=1000.0, backoff_initial_seconds=0.01,
                       ws_reconnect_initial_seconds=0.05, emergency_wait_seconds=0.2)
    venue = KillingVenue(config, ledger, mode=mode, kill_at=kill_at)
    ex = Executor(venue, ledger, WallClock(), ExecutionConfig(reconcile_interval_seconds=0.1), Events())
    await ex.start()
    print("READY", flush=True)
    if mode == "reconcile":
        for _ in range(200):
            if not ledger.open_orders():
                break
            await asyncio.sleep(0.05)
        await ex.stop(cancel_pending=False)
        print("OPEN", len(ledger.open_orders()), flush=True)
        return
    while True:
        await ex.submit([intent(str(rng.randint(1, 50)), expires_in=120) for _ in range(rng.randint(1, 3))])
        print("PLACED", flush=True)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])))
