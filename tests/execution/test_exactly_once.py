"""Exactly once across SIGKILLs: a bot process (Executor + AbpVenue + Ledger) is killed at random
points around placement, restarted, and reconciled against a local ABP server process."""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
KILLBOT = Path(__file__).with_name("killbot.py")
ROUNDS = 24
MODES = ("after_commit", "after_response", "loop")


def _start_server() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.execution.cli", "serve", "--port", "0", "--api-key", "kill-key",
         "--max-stake", "1000000", "--delay", "0.02", "--ping-seconds", "1", "--bookmakers", "paper"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    line = proc.stdout.readline()
    assert "listening on" in line, line
    return proc, line.split("listening on ")[1].split()[0]


def _bot(db: Path, url: str, mode: str, kill_at: int, seed: int) -> subprocess.Popen:
    db.parent.mkdir(parents=True, exist_ok=True)
    log = (db.parent / "bot.log").open("a")  # kept for diagnosis when a round misbehaves
    return subprocess.Popen(
        [sys.executable, str(KILLBOT), str(db), url, mode, str(kill_at), str(seed)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True,
    )


def _wait_ready(proc: subprocess.Popen) -> bool:
    """True once the bot is READY; False if it died by its own SIGKILL while resending during
    start-up reconciliation (its placement counter also counts resends: another kill point)."""
    line = proc.stdout.readline()
    if line == "" and proc.wait(timeout=20) == -9:
        return False
    assert line.strip() == "READY", f"bot did not start: {line!r} rc={proc.poll()}"
    return True


def test_sigkill_around_placement_is_exactly_once(tmp_path: Path) -> None:
    rng = random.Random(20251116)
    db = tmp_path / "state" / "bot.db"
    server, url = _start_server()
    kills = Counter()
    try:
        for i in range(ROUNDS):
            mode = MODES[i % len(MODES)]
            bot = _bot(db, url, mode, rng.randint(1, 3), rng.randint(0, 10**6))
            if not _wait_ready(bot):
                kills[f"{mode} (during start-up resend)"] += 1
                continue
            if mode == "loop":
                time.sleep(rng.uniform(0.0, 0.15))
                bot.kill()
            assert bot.wait(timeout=20) == -9, f"round {i} ({mode}) did not die by SIGKILL"
            kills[mode] += 1
        final = _bot(db, url, "reconcile", 0, 0)
        out, _ = final.communicate(timeout=30)
        assert final.returncode == 0 and out.split()[-1] == "0", out
        state = httpx.get(f"{url}/_admin/state", timeout=5).json()
    finally:
        server.terminate()
        server.wait(timeout=10)

    assert sum(kills.values()) >= 20
    server_orders = state["orders"]
    # exactly one venue order per requestUuid, and per intent (never re-placed under a new id)
    assert len({o["requestUuid"] for o in server_orders}) == len(server_orders)
    per_signal = Counter(o["meta"]["signal_id"] for o in server_orders)
    assert max(per_signal.values()) == 1
    con = sqlite3.connect(db)
    ledger = {u: (s, Decimal(f), sig) for u, s, f, sig in
              con.execute("SELECT request_uuid, status, filled_stake, signal_id FROM orders")}
    con.close()
    venue = {o["requestUuid"]: o for o in server_orders}
    # every venue order is in the ledger with the same state and filled stake
    for u, o in venue.items():
        assert u in ledger, f"venue order {u} missing from the ledger"
        status, filled, sig = ledger[u]
        assert (status, filled, sig) == (o["orderStatus"], Decimal(str(o["filledStake"])), o["meta"]["signal_id"])
    # ledger orders the venue never saw are closed without a fill
    for u, (status, filled, _) in ledger.items():
        if u not in venue:
            assert status in ("EXPIRED", "DECLINED") and filled == 0, (u, status)
    print(f"\nSIGKILLs: {dict(kills)} total={sum(kills.values())}; venue orders={len(venue)}; "
          f"ledger orders={len(ledger)}; all agree")
