"""The main job: the README's run command on the bundled real replay, then `bot report`;
SIGTERM mid-run; a bad strategy path."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.engine.conftest import ROOT, bot_env, run_bot, write_config


def _ledger_rows(db: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_default_replay_runs_settles_and_reports(workdir: Path) -> None:
    cfg = write_config(workdir)
    run = run_bot("run", "-c", str(cfg), cwd=workdir)
    assert run.returncode == 0, run.stderr[-3000:]
    db = workdir / "state" / "bot.db"
    assert db.is_file()

    out = run_bot("report", "-c", str(cfg), "--json", cwd=workdir)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["signals"]["total"] > 0
    assert report["decisions"]["total"] == report["signals"]["total"]
    assert any(k.startswith("APPROVED") for k in report["decisions"]["by_reason"])
    assert any(k.startswith("REJECTED:") for k in report["decisions"]["by_reason"])  # reason codes shown
    assert report["orders"]["total"] > 0 and report["fills"]["bets"] > 0
    assert report["orders"]["duplicate_request_uuids"] == 0
    assert report["settled"]["bets"] > 0
    # Every fill of a game with a known result is settled by the end of the replay.
    assert report["fills"]["open_bets"] == 0
    # The report's PnL is the ledger's, to the cent.
    pnl = sum(float(p) for (p,) in _ledger_rows(db, "select pnl from settlements"))
    assert abs(float(report["settled"]["pnl"]) - pnl) < 0.005
    uuids = _ledger_rows(db, "select request_uuid from orders")
    assert len(uuids) == len(set(uuids))

    text = run_bot("report", "-c", str(cfg), cwd=workdir)
    assert text.returncode == 0 and "Settled PnL by strategy" in text.stdout


def test_replay_is_deterministic(workdir: Path) -> None:
    decisions = []
    for run_id in ("a", "b"):
        folder = workdir / run_id
        folder.mkdir()
        cfg = write_config(folder)
        assert run_bot("run", "-c", str(cfg), cwd=folder).returncode == 0
        decisions.append(_ledger_rows(folder / "state" / "bot.db",
                                      "select s.selection, s.stake, d.verdict, d.reason, d.approved_stake "
                                      "from decisions d join signals s using(signal_id) order by d.id"))
    assert decisions[0] == decisions[1] and decisions[0]


def _start_slow_run(workdir: Path) -> tuple[subprocess.Popen[str], Path]:
    """`bot run` on the replay at 2000x (about 16 h of snapshots: ~30 s), returned once the
    first order is in the ledger, so a signal sent next lands mid-run."""
    cfg = write_config(workdir, feeds={"replay": {"path": str(ROOT / "bot/data/nfl_raw_snapshots_2025-11-16.jsonl.gz"),
                                                   "format": "auto", "speed": 2000}})
    proc = subprocess.Popen([sys.executable, "-m", "bot", "run", "-c", str(cfg)], cwd=workdir,
                            env=bot_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    db = workdir / "state" / "bot.db"
    deadline = time.monotonic() + 60
    while not (db.is_file() and _ledger_rows(db, "select count(*) from orders")[0][0] > 0):
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("no order placed within 60 s: " + proc.stderr.read()[-2000:])
        time.sleep(0.2)
    return proc, db


def test_sigterm_exits_within_5s_with_a_consistent_ledger(workdir: Path) -> None:
    proc, db = _start_slow_run(workdir)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=15)
    assert time.monotonic() - sent < 5.0
    assert proc.returncode == 0, proc.stderr.read()[-2000:]
    # Consistent: nothing left half-sent, every fill belongs to an order and fits its stake.
    assert _ledger_rows(db, "select count(*) from orders where status in ('INTENT','SENT','UNKNOWN')") == [(0,)]
    orphans = _ledger_rows(db, "select count(*) from bets b left join orders o using(request_uuid) where o.id is null")
    assert orphans == [(0,)]
    over = _ledger_rows(db, "select o.request_uuid from orders o join bets b using(request_uuid) "
                            "group by o.request_uuid having sum(cast(b.placed_stake as real)) > max(cast(o.stake as real)) + 1e-9")
    assert over == []
    assert _ledger_rows(db, "pragma integrity_check") == [("ok",)]


def test_unknown_strategy_path_is_one_line(workdir: Path) -> None:
    cfg = write_config(workdir, strategies=[{"name": "mine", "path": "no_such_module:Nope", "params": {}}])
    out = run_bot("run", "-c", str(cfg), cwd=workdir)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "strategies" in lines[0] and "mine" in lines[0] and "no_such_module" in lines[0]


def test_sigusr1_kill_switch_halts_and_the_halt_survives_a_restart(workdir: Path) -> None:
    proc, db = _start_slow_run(workdir)
    proc.send_signal(signal.SIGUSR1)
    time.sleep(3)  # replay goes on while halted: later signals must all be rejected
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=15)
    assert proc.returncode == 0, proc.stderr.read()[-2000:]
    status = run_bot("risk", "status", "--state-dir", str(workdir / "state"), "--json", cwd=workdir)
    state = json.loads(status.stdout)
    assert state["state"] == "HALTED" and "kill switch" in state["reason"]

    # The halt survives a restart: the whole replay again, and nothing is approved.
    orders_before = _ledger_rows(db, "select count(*) from orders")[0][0]
    decided_before = _ledger_rows(db, "select max(id) from decisions")[0][0] or 0
    cfg = write_config(workdir)
    assert run_bot("run", "-c", str(cfg), cwd=workdir).returncode == 0
    after = _ledger_rows(db, f"select verdict, reason, count(*) from decisions where id > {decided_before} "
                             "group by verdict, reason")
    assert after and all((v, r) == ("REJECTED", "TRADING_HALTED") for v, r, _ in after)
    assert _ledger_rows(db, "select count(*) from orders")[0][0] == orders_before
    # The restarted paper venue adopted the first run's bets and settled them from the results.
    assert _ledger_rows(db, "select count(*) from bets where settlement_status = 'UNSETTLED'") == [(0,)]
    assert _ledger_rows(db, "select count(*) from settlements")[0][0] == _ledger_rows(db, "select count(*) from bets")[0][0] > 0
