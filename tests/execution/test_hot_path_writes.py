"""The hot path's ledger writes (bot/ledger/store.py, docs/architecture.md "Ledger writes and
the hot path"): from a signal to its placement request the ledger commits once, durably
(synchronous=FULL), for all the orders of one frame, which leave in one request; signals,
decisions, events and SENT are group-committed and reach the file at the end of the loop turn.
Against the local ABP server on loopback; commits counted by tracing the statements of the
ledger's own sqlite3 connection."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import event

from bot.clock import WallClock
from bot.execution.abp_venue import AbpVenue
from bot.execution.config import ExecutionConfig
from bot.execution.executor import Executor
from bot.execution.venue import PlaceReply
from bot.latency import TickToOrder, frame_received
from bot.ledger.store import Ledger
from bot.risk.control import TradingControl
from bot.sim.abp_server import LocalAbpServer
from bot.types import Instrument, OrderIntent, Verdict
from tests.execution.conftest import abp_config
from tests.execution.helpers import Events, eventually
from tests.risk.factories import Env, make_signal, selection

SYNC_FULL = 2
SYNC_LEVELS = {"OFF": 0, "NORMAL": 1, "FULL": 2, "EXTRA": 3}  # PRAGMA synchronous


class CommitLog:
    """Every COMMIT on the ledger's connection, with the synchronous level it ran under: the
    statements sqlite3 runs, traced on the connection itself, so the ORM's commits and the raw
    intent commit (bot/ledger/intent.py) are seen alike."""

    def __init__(self, ledger: Ledger) -> None:
        self.levels: list[int] = []
        assert ledger._conn is not None
        self._level = int(ledger._conn.execute("PRAGMA synchronous").fetchone()[0])
        ledger._conn.set_trace_callback(self._trace)

    def _trace(self, statement: str) -> None:
        text = statement.strip().upper()
        if text.startswith("PRAGMA SYNCHRONOUS="):
            self._level = SYNC_LEVELS[text.partition("=")[2]]
        elif text == "COMMIT":
            self.levels.append(self._level)


class WatchedVenue(AbpVenue):
    """The real AbpVenue; notes how many commits the ledger made before each request left."""

    def __init__(self, *args: Any, commits: CommitLog, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.commits = commits
        self.before_request: list[list[int]] = []

    async def place_orders(self, orders: Sequence[dict[str, Any]]) -> PlaceReply:
        self.before_request.append(list(self.commits.levels))
        return await super().place_orders(orders)


def rows(db: Path, table: str) -> int:
    with sqlite3.connect(db) as con:
        return int(con.execute(f"select count(*) from {table}").fetchone()[0])


async def test_a_frame_of_orders_is_one_durable_commit_and_one_request(tmp_path: Path,
                                                                      server: LocalAbpServer) -> None:
    env = Env(tmp_path / "risk")
    sels = [selection("home", n) for n in range(3)]
    for sel in sels:
        env.quote(sel, "paper", 2.2)
    commits = CommitLog(env.ledger)
    venue = WatchedVenue(abp_config(server, emergency_wait_seconds=0.1), env.ledger, commits=commits)
    ex = Executor(venue, env.ledger, WallClock(), ExecutionConfig(reconcile_interval_seconds=0.05), Events())
    await ex.start()
    await eventually(lambda: venue.stream is not None and venue.stream.emergency is False)
    env.ledger.flush()
    commits.levels.clear()

    signals = [make_signal(sel, env.clock.now(), price=2.2, bookmakers=("paper",)) for sel in sels]
    frame_received()  # as the feed does when it reads the frame
    stamped = time.perf_counter_ns()
    decisions = await env.risk.evaluate_many([(s, None) for s in signals])
    assert [d.verdict for d in decisions] == [Verdict.APPROVED] * 3
    intents = [OrderIntent(d.signal, d.stake, Instrument("id1000004461512432", 101), None, ("paper",))
               for d in decisions]
    await ex.submit(intents)
    done = time.perf_counter_ns()

    # one request for the frame, after exactly one commit, and that commit fsync'd
    assert [len(r["body"]["orders"]) for r in server.requests if r["path"] == "/place-orders"] == [3]
    assert venue.before_request == [[SYNC_FULL]]
    # the rest reaches the file within the group commit's bound, every later commit without fsync
    await eventually(lambda: rows(env.ledger.path, "events") >= 2)  # place.request, place.response
    assert (rows(env.ledger.path, "signals"), rows(env.ledger.path, "decisions")) == (3, 3)
    assert rows(env.ledger.path, "orders") == 3
    assert commits.levels.count(SYNC_FULL) == 1
    # the frame's tick-to-order: three orders written in one request, inside the measured span
    summary = TickToOrder.summary(ex.latency.per_order)
    assert summary is not None and summary.count == 3 and len(ex.latency.per_frame) == 1
    assert 0 < ex.latency.per_frame[0] <= done - stamped
    await ex.stop(cancel_pending=False)
    env.ledger.close()


async def test_group_committed_writes_are_read_back_at_once_and_reach_the_file_by_themselves(
        tmp_path: Path) -> None:
    env = Env(tmp_path)
    signal = make_signal(selection(), env.clock.now())
    env.ledger.record_signal(signal)
    env.ledger.append_event("place.request", {"orders": []})
    assert rows(env.ledger.path, "signals") == 0  # queued, not yet committed
    assert [s.signal_id for s in env.ledger.signals()] == [signal.signal_id]  # a read sees it
    env.ledger.append_event("place.response", {"status": 200})
    await eventually(lambda: rows(env.ledger.path, "events") == 2)  # the group commit timer
    env.ledger.record_signal(signal)  # the same signal again: still one row
    env.ledger.close()  # close writes the queue
    assert rows(env.ledger.path, "signals") == 1


async def test_the_trading_state_is_read_only_when_another_process_wrote(tmp_path: Path) -> None:
    """control.sync runs on every signal: it must not query the ledger unless someone else wrote."""
    env = Env(tmp_path)
    sel = selection()
    env.quote(sel)
    state_reads: list[str] = []
    event.listen(env.ledger._engine, "before_cursor_execute",
                 lambda _c, _cur, sql, *_a: state_reads.append(sql) if "FROM state" in sql else None)
    for _ in range(5):
        await env.risk.evaluate(make_signal(sel, env.clock.now(), price=2.0 + 0.01 * len(state_reads)), None)
    assert state_reads == []
    cli = Ledger(env.ledger.path)  # `bot risk halt` from another process
    TradingControl(cli, env.clock, zone="UTC", state_dir=env.state_dir).halt("operator")
    cli.close()
    d = await env.risk.evaluate(make_signal(sel, env.clock.now(), price=2.5), None)
    assert (d.verdict, d.reason) == (Verdict.REJECTED, "TRADING_HALTED")
    assert len(state_reads) == 1
    env.ledger.close()
