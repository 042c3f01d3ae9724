"""Runs are identified and never re-bet (docs/architecture.md, "Invariants > Runs never re-bet").

Each `bot run` is a row of the ledger's `runs` table (bot/ledger/models.py `RunRow`). Before the
engine starts, `plan_run` decides from the earlier runs of the same source:
- a replay whose source already FINISHED in this ledger is refused (`--fresh` starts a new
  ledger file and keeps the old one), so a rerun never places the same bets again;
- an interrupted replay (outcome running, stopped or interrupted) is resumed: the first
  `warmup_events` feed events rebuild the book without trading, then trading goes on from the
  first event the interrupted run did not finish. A different config refuses to resume;
- live runs always start; a restart is kept from re-betting by the strategies' and the risk
  manager's memory restored from the ledger (bot/risk/checks.py `DuplicateSignalCheck`).
"""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bot.config.settings import Settings
from bot.ledger.models import RunRow
from bot.ledger.store import Ledger

FINISHED = "finished"
RESUMABLE = ("running", "stopped", "interrupted")


class RunRefused(Exception):
    """This run would bet again what the ledger already holds; the message is one line."""


@dataclass(frozen=True, slots=True)
class RunPlan:
    """How a run starts: its `row` (recorded by `record`), `warmup_events` replayed without
    trading, and the earlier run it resumes."""

    row: RunRow
    warmup_events: int
    resumes: str | None = None

    @property
    def run_id(self) -> str:
        return self.row.run_id

    def record(self, ledger: Ledger) -> None:
        """Write the run row; the resumed run becomes `resumed`, and runs left `running` by a
        process that died become `interrupted` (the caller holds the ledger lock)."""
        for run in ledger.runs():
            if run.run_id == self.resumes:
                ledger.update_run(run.run_id, outcome="resumed")
            elif run.outcome == "running":
                ledger.update_run(run.run_id, outcome="interrupted")
        ledger.add_run(self.row)


def run_source(settings: Settings, config_dir: Path) -> str:
    """The feed source a run reads: `replay:<absolute path>`, `history:<absolute paths>`, or
    `live:<feed names>`."""
    replay = settings.feeds.replay
    if replay is not None:
        path = replay.path if replay.path.is_absolute() else config_dir / replay.path
        return f"replay:{path.resolve()}"
    history = settings.feeds.history
    if history is not None:
        paths = [p if p.is_absolute() else config_dir / p for p in history.paths]
        return "history:" + ",".join(str(p.resolve()) for p in paths)
    names = [n for n in ("boltodds", "oddsapi", "oddspapi", "olympus") if getattr(settings.feeds, n) is not None]
    return "live:" + ",".join(names or ["mqtt"])


def config_hash(settings: Settings) -> str:
    """SHA-256 (16 hex) of what decides the bets: the config without logging, state location and
    replay speed (secrets are masked by pydantic's dump, so never hashed in clear)."""
    data = settings.model_dump(mode="json", exclude={"logging": True, "state_dir": True,
                                                     "feeds": {"replay": {"speed"}}})
    return hashlib.sha256(repr(sorted(data.items())).encode()).hexdigest()[:16]


def plan_run(ledger: Ledger, settings: Settings, *, source: str, digest: str, must_resume: bool = False) -> RunPlan:
    """Decide how this run starts (see the module docstring); nothing is written until
    `RunPlan.record`.

    Raises:
        RunRefused: a finished replay of `source` is in the ledger, the interrupted one used
            another config, or `must_resume` (`bot run --resume`) and there is nothing to resume.
    """
    replay = source.startswith("replay:")
    earlier = ledger.runs(source)
    warmup, resumed_from = 0, None
    if replay and earlier:
        last = earlier[-1]
        if last.outcome == FINISHED:
            orders = len(ledger.orders())
            raise RunRefused(
                f"{ledger.name} already holds a finished run of {source.removeprefix('replay:')} "
                f"(run {last.run_id}, {orders} orders): nothing to do; `bot run --fresh` starts a new "
                "ledger and keeps this one")
        if last.outcome in RESUMABLE:
            if last.config_hash != digest:
                raise RunRefused(
                    f"run {last.run_id} of {source.removeprefix('replay:')} was interrupted under another "
                    "config; restore that config to resume it, or `bot run --fresh` for a new ledger")
            warmup, resumed_from = last.last_event_seq, last.run_id
    if must_resume and resumed_from is None:
        raise RunRefused(f"--resume: {ledger.name} holds no interrupted run of {source.removeprefix('replay:')}")
    row = RunRow(run_id=uuid.uuid4().hex[:12], instance=settings.instance, mode=settings.mode, source=source,
                 config_hash=digest, pid=os.getpid(), host=socket.gethostname(), resumed_from=resumed_from,
                 warmup_events=warmup, last_event_seq=warmup, started_at=datetime.now(UTC))
    return RunPlan(row, warmup, resumed_from)


def fresh_ledger(db_path: Path) -> Path | None:
    """Move the ledger at `db_path` (with its WAL files) aside as `<stem>.<UTC stamp><suffix>`;
    returns the new path of the old ledger, or None when there was none. Call it under the lock."""
    if not db_path.exists():
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    kept = db_path.with_name(f"{db_path.stem}.{stamp}{db_path.suffix}")
    for extra in ("-wal", "-shm"):
        side = db_path.with_name(db_path.name + extra)
        if side.exists():
            side.replace(kept.with_name(kept.name + extra))
    db_path.replace(kept)
    return kept
