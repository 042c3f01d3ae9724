"""One instance per ledger (docs/architecture.md, "Invariants > One writer per ledger").

`LedgerLock` holds an exclusive OS lock (`filelock`, flock on POSIX) on `<ledger>.lock` for the
life of the process; the OS drops it when the process dies, so a killed holder never blocks the
next start. The holder's pid, host, instance name and start time are written beside it
(`<ledger>.holder.json`) so a refused second instance can name it. With a ledger shared by
several instances (PostgreSQL), the same contract maps to one advisory lock per instance
(`pg_try_advisory_lock`) held on the bot's connection.
"""

from __future__ import annotations

import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout


class LedgerBusy(RuntimeError):
    """Another live process holds the ledger; the message is one line naming it."""


def describe(holder: dict[str, Any]) -> str:
    """One line naming a holder record ({"pid", "host", "instance", "started_at"})."""
    return (f"pid {holder.get('pid')} on {holder.get('host')} (instance {holder.get('instance')}, "
            f"since {holder.get('started_at')})")


class LedgerLock:
    """Exclusive lock on the ledger at `db_path` for `instance`. Not re-entrant across objects:
    one per process."""

    def __init__(self, db_path: Path, instance: str) -> None:
        self.db_path = Path(db_path)
        self.instance = instance
        self.lock_path = self.db_path.with_name(self.db_path.name + ".lock")
        self.holder_path = self.db_path.with_name(self.db_path.name + ".holder.json")
        self._lock = FileLock(self.lock_path, thread_local=False)

    def acquire(self) -> dict[str, Any]:
        """Take the lock without waiting and record this process as the holder; returns the
        record ({"pid", "host", "instance", "started_at" (UTC, ISO)}).

        Raises:
            LedgerBusy: another process holds it ("ledger <path> is in use by pid ...").
        """
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            holder = self.holder()
            who = describe(holder) if holder is not None else "a process that has not recorded itself yet"
            raise LedgerBusy(f"ledger {self.db_path} is in use by {who}; stop it first "
                             f"(or give this bot its own state_dir)") from None
        me = {"pid": os.getpid(), "host": socket.gethostname(), "instance": self.instance,
              "started_at": datetime.now(UTC).isoformat(timespec="seconds")}
        tmp = self.holder_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(me))
        tmp.replace(self.holder_path)
        return me

    def holder(self) -> dict[str, Any] | None:
        """The recorded holder (meaningful while the lock is held), or None."""
        try:
            found = json.loads(self.holder_path.read_text())
        except (OSError, ValueError):
            return None
        return found if isinstance(found, dict) else None

    def release(self) -> None:
        if self._lock.is_locked:
            self.holder_path.unlink(missing_ok=True)
            self._lock.release()
