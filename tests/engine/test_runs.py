"""One bot per ledger, and runs that never bet twice (docs/architecture.md, "Invariants > One
writer per ledger" and "Runs never re-bet"): a second `bot run` on a held ledger exits 2 naming
the holder; a killed holder does not block; a finished replay is refused on rerun; an interrupted
replay resumes to exactly the orders of one uninterrupted run."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from bot.config.settings import load_settings
from bot.engine.wiring import RunRefusedError, build_engine
from tests.engine.conftest import READY, REPLAY, BotProcess, ledger_rows, run_bot, write_config

ORDER_SET = ("select strategy, selection, bookmakers, back, order_price, stake from orders "
             "order by strategy, selection, bookmakers, back, order_price, stake")


def _slow_config(folder: Path, speed: float) -> Path:
    return write_config(folder, feeds={"replay": {"path": str(REPLAY), "format": "auto", "speed": speed}})


def test_second_bot_on_one_ledger_exits_2_naming_the_holder(workdir: Path) -> None:
    cfg = _slow_config(workdir, 8000)
    db = workdir / "state" / "bot.db"
    with BotProcess("run", "-c", str(cfg), cwd=workdir) as first:
        first.wait_for_line(READY)
        started = time.monotonic()
        second = run_bot("run", "-c", str(cfg), cwd=workdir, timeout=30)
        assert time.monotonic() - started < 5.0
        assert second.returncode == 2, second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and f"pid {first.proc.pid}" in lines[0] and "in use" in lines[0], second.stderr
        assert first.wait(timeout=120) == 0, first.tail()
    assert ledger_rows(db, "select count(*) from runs") == [(1,)]
    twice = ledger_rows(db, "select strategy, selection, bookmakers, back, order_price, count(*) from orders "
                      "group by 1, 2, 3, 4, 5 having count(*) > 1")
    assert twice == [] and ledger_rows(db, "select count(*) from orders")[0][0] > 0


def test_a_killed_holder_does_not_block_and_its_run_resumes(workdir: Path) -> None:
    cfg = _slow_config(workdir, 2000)
    db = workdir / "state" / "bot.db"
    with BotProcess("run", "-c", str(cfg), cwd=workdir) as first:
        first.wait_for_line(r"PnL snapshot: .* orders=[1-9]", after=first.wait_for_line(READY))
        first.proc.send_signal(signal.SIGKILL)
        assert first.wait(timeout=10) == -signal.SIGKILL
    fast = write_config(workdir)
    second = run_bot("run", "-c", str(fast), cwd=workdir)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "resuming run" in second.stderr
    outcomes = ledger_rows(db, "select outcome from runs order by id")
    assert outcomes == [("resumed",), ("finished",)]


def test_rerun_of_a_finished_replay_places_nothing_and_says_why(workdir: Path) -> None:
    cfg = write_config(workdir)
    db = workdir / "state" / "bot.db"
    assert run_bot("run", "-c", str(cfg), cwd=workdir).returncode == 0
    orders = ledger_rows(db, ORDER_SET)
    again = run_bot("run", "-c", str(cfg), cwd=workdir)
    assert again.returncode == 2
    lines = again.stderr.strip().splitlines()
    assert len(lines) == 1 and "already holds a finished run" in lines[0] and "--fresh" in lines[0], again.stderr
    assert ledger_rows(db, ORDER_SET) == orders and orders

    fresh = run_bot("run", "-c", str(cfg), "--fresh", cwd=workdir)
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    kept = [p for p in (workdir / "state").glob("bot.*.db")]
    assert len(kept) == 1 and ledger_rows(kept[0], ORDER_SET) == orders
    assert ledger_rows(db, ORDER_SET) == orders  # the same replay on a new ledger bets the same


def test_resume_refuses_another_config_and_a_missing_run(workdir: Path) -> None:
    cfg = write_config(workdir)
    nothing = run_bot("run", "-c", str(cfg), "--resume", cwd=workdir)
    assert nothing.returncode == 2 and "holds no interrupted run" in nothing.stderr


async def _run_to(folder: Path, stop_after_record: int | None) -> None:
    settings = load_settings(write_config(folder), logging={"json_file": False, "progress": False})
    engine = await build_engine(settings, config_dir=folder)
    if stop_after_record is not None:
        replay = engine.feeds[0]

        def stop_at(done: int, _total: int) -> None:
            if done == stop_after_record:
                engine.request_stop("test interrupt")

        replay.progress = stop_at  # type: ignore[attr-defined]
    await engine.run()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> list[tuple]:
    folder = tmp_path_factory.mktemp("whole")
    asyncio.run(_run_to(folder, None))
    return ledger_rows(folder / "state" / "bot.db", ORDER_SET)


@pytest.mark.parametrize("stop_after", [3, 11, 19, 27, 38])
async def test_interrupted_replay_resumes_to_exactly_one_runs_orders(
    workdir: Path, uninterrupted: list[tuple], stop_after: int
) -> None:
    await _run_to(workdir, stop_after)
    db = workdir / "state" / "bot.db"
    before = ledger_rows(db, ORDER_SET)
    assert ledger_rows(db, "select outcome from runs") == [("stopped",)]
    await _run_to(workdir, None)
    assert ledger_rows(db, "select outcome from runs order by id") == [("resumed",), ("finished",)]
    assert ledger_rows(db, ORDER_SET) == uninterrupted and uninterrupted
    assert len(before) < len(uninterrupted) or stop_after > 30
    with pytest.raises(RunRefusedError, match="already holds a finished run"):
        await _run_to(workdir, None)


def test_sigint_then_run_again_equals_one_run(workdir: Path, uninterrupted: list[tuple]) -> None:
    cfg = _slow_config(workdir, 2000)
    with BotProcess("run", "-c", str(cfg), cwd=workdir) as first:
        first.wait_for_line(r"PnL snapshot: .* orders=[1-9]", after=first.wait_for_line(READY))
        os.kill(first.proc.pid, signal.SIGINT)
        assert first.wait(timeout=15) == 0, first.tail()
    again = run_bot("run", "-c", str(write_config(workdir)), cwd=workdir)
    assert again.returncode == 0 and "resuming run" in again.stderr, again.stderr[-2000:]
    assert ledger_rows(workdir / "state" / "bot.db", ORDER_SET) == uninterrupted
