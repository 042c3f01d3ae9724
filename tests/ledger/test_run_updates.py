"""Run checkpoints queued for one group commit become one UPDATE with the latest fields."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bot.ledger.models import RunRow
from bot.ledger.store import Ledger


def test_the_latest_checkpoint_wins_and_later_ones_still_land(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "bot.db")
    try:
        ledger.add_run(RunRow(run_id="r1", source="replay", started_at=datetime(2026, 1, 1, tzinfo=UTC)))
        ledger.add_run(RunRow(run_id="r2", source="replay", started_at=datetime(2026, 1, 1, tzinfo=UTC)))
        at = datetime(2026, 1, 2, 12, tzinfo=UTC)
        ledger.update_run("r1", last_event_seq=100, last_event_at=at)
        ledger.update_run("r2", last_event_seq=7)
        ledger.update_run("r1", last_event_seq=200)
        ledger.update_run("r1", outcome="finished")
        runs = {r.run_id: r for r in ledger.runs()}  # a read commits the queue first
        assert (runs["r1"].last_event_seq, runs["r1"].last_event_at, runs["r1"].outcome) == (200, at, "finished")
        assert (runs["r2"].last_event_seq, runs["r2"].outcome) == (7, "running")
        ledger.update_run("r1", last_event_seq=300)  # after the commit: a new UPDATE, not a stale merge
        assert next(r for r in ledger.runs() if r.run_id == "r1").last_event_seq == 300
    finally:
        ledger.close()
