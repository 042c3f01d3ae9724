"""The main job: the README's run command on the bundled real replay, then `bot report`;
SIGTERM and SIGUSR1 mid-run (waiting on the lines the bot logs, never on files or fixed sleeps);
a bad strategy path."""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.engine.conftest import READY, REPLAY, BotProcess, ledger_rows, run_bot, write_config

SIGNALS_LOGGED = re.compile(r"signals=(\d+)")


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
    assert report["checks"]["repeated_orders"]["count"] == 0
    assert report["checks"]["fill_mismatches"]["count"] == 0
    assert report["unresolved"]["bets"] == 0
    assert report["settled"]["bets"] > 0
    # Every fill of a game with a known result is settled by the end of the replay.
    assert report["fills"]["open_bets"] == 0
    # The report's PnL is the ledger's, to the cent.
    pnl = sum(float(p) for (p,) in ledger_rows(db, "select pnl from settlements"))
    assert abs(float(report["settled"]["pnl"]) - pnl) < 0.005
    uuids = ledger_rows(db, "select request_uuid from orders")
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
        decisions.append(ledger_rows(folder / "state" / "bot.db",
                                      "select s.selection, s.stake, d.verdict, d.reason, d.approved_stake "
                                      "from decisions d join signals s using(signal_id) order by d.id"))
    assert decisions[0] == decisions[1] and decisions[0]


@contextmanager
def _slow_run(workdir: Path) -> Iterator[BotProcess]:
    """`bot run` on the replay at 2000x (about 16 h of snapshots: ~30 s), handed over once it has
    logged an order (the hourly PnL line counts them), so a signal sent next lands mid-run."""
    cfg = write_config(workdir, feeds={"replay": {"path": str(REPLAY), "format": "auto", "speed": 2000}})
    with BotProcess("run", "-c", str(cfg), cwd=workdir) as proc:
        ready = proc.wait_for_line(READY)
        proc.wait_for_line(r"PnL snapshot: .* orders=[1-9]", after=ready)
        yield proc


def test_sigterm_exits_within_5s_with_a_consistent_ledger(workdir: Path) -> None:
    db = workdir / "state" / "bot.db"
    with _slow_run(workdir) as proc:
        sent = time.monotonic()
        proc.proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=15)
        assert time.monotonic() - sent < 5.0
        assert code == 0, proc.tail()
    # Consistent: nothing left half-sent, every fill belongs to an order and fits its stake.
    assert ledger_rows(db, "select count(*) from orders where status in ('INTENT','SENT','UNKNOWN')") == [(0,)]
    orphans = ledger_rows(db, "select count(*) from bets b left join orders o using(request_uuid) where o.id is null")
    assert orphans == [(0,)]
    over = ledger_rows(db, "select o.request_uuid from orders o join bets b using(request_uuid) "
                            "group by o.request_uuid having sum(cast(b.placed_stake as real)) > max(cast(o.stake as real)) + 1e-9")
    assert over == []
    assert ledger_rows(db, "pragma integrity_check") == [("ok",)]


def test_unknown_strategy_path_is_one_line(workdir: Path) -> None:
    cfg = write_config(workdir, strategies=[{"name": "mine", "path": "no_such_module:Nope", "params": {}}])
    out = run_bot("run", "-c", str(cfg), cwd=workdir)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "strategies" in lines[0] and "mine" in lines[0] and "no_such_module" in lines[0]


def _wait_for_signals_after(proc: BotProcess, line: int, decided: int) -> None:
    """Wait until an hourly PnL line after `line` counts more signals than `decided`."""
    while True:
        line = proc.wait_for_line(r"PnL snapshot: .* signals=\d+", after=line + 1)
        if int(SIGNALS_LOGGED.findall(proc.lines[line])[0]) > decided:
            return


def test_sigusr1_kill_switch_halts_and_the_halt_survives_a_restart(workdir: Path) -> None:
    db = workdir / "state" / "bot.db"
    with _slow_run(workdir) as proc:
        proc.proc.send_signal(signal.SIGUSR1)
        halted = proc.wait_for_line(r"trading halted \(")
        # The replay goes on while halted: wait until signals arrive that were decided after the halt.
        _wait_for_signals_after(proc, halted, ledger_rows(db, "select count(*) from decisions")[0][0])
        proc.proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0, proc.tail()
    verdicts = [(v, r) for v, r in ledger_rows(db, "select verdict, reason from decisions order by id")]
    first_halted = verdicts.index(("REJECTED", "TRADING_HALTED"))
    assert all(v == ("REJECTED", "TRADING_HALTED") for v in verdicts[first_halted:])
    # `bot risk status -c` reads the ledger of the config's state dir, as `bot run` does.
    status = run_bot("risk", "status", "-c", str(workdir / "config.yaml"), "--json", cwd=workdir)
    state = json.loads(status.stdout)
    assert state["state"] == "HALTED" and "kill switch" in state["reason"]

    # The halt survives a restart: the whole replay again, and nothing is approved.
    orders_before = ledger_rows(db, "select count(*) from orders")[0][0]
    decided_before = ledger_rows(db, "select max(id) from decisions")[0][0] or 0
    cfg = write_config(workdir)
    assert run_bot("run", "-c", str(cfg), cwd=workdir).returncode == 0
    after = ledger_rows(db, f"select verdict, reason, count(*) from decisions where id > {decided_before} "
                             "group by verdict, reason")
    assert after and all((v, r) == ("REJECTED", "TRADING_HALTED") for v, r, _ in after)
    assert ledger_rows(db, "select count(*) from orders")[0][0] == orders_before
    # The restarted paper venue adopted the first run's bets and settled them from the results.
    assert ledger_rows(db, "select count(*) from bets where settlement_status = 'UNSETTLED'") == [(0,)]
    assert ledger_rows(db, "select count(*) from settlements")[0][0] == ledger_rows(db, "select count(*) from bets")[0][0] > 0
