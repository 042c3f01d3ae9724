"""One instance per ledger (docs/architecture.md, "Invariants > One writer per ledger").

`LedgerLock` holds an exclusive OS lock (`filelock`, flock on POSIX) on `<ledger>.lock` for the
life of the process; the OS drops it when the process dies, so a killed holder never blocks the
next start. The holder's pid, host, instance name and start time are written beside it
(`<ledger>.holder.json`) so a refused second instance can name it.

With a ledger several instances share (PostgreSQL; docs/operations.md, "Several instances") the
same contract is one session-level advisory lock per instance NAME (`InstanceLock`,
`pg_try_advisory_lock`) held on a connection of its own for the life of the process: two processes configured as the same
instance are refused, different instances run side by side. The server drops the lock when the
holder's connection ends, so a killed holder never blocks the next start either; the holder is
named from `pg_stat_activity` (its `application_name` carries pid, host and start time).
`instance_lock(target, instance)` picks the lock for a ledger target.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

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


class InstanceLock:
    """The advisory lock of `instance` on the PostgreSQL ledger at `url` (see the module docstring).

    Raises (from `acquire`):
        LedgerBusy: another live process holds this instance's lock ("ledger ... instance bot1
            is in use by pid ...").
        sqlalchemy.exc.OperationalError: the server cannot be reached.
    """

    def __init__(self, url: str, instance: str) -> None:
        from sqlalchemy.engine import make_url

        self.url = url
        self.instance = instance
        self.key = advisory_key(f"betbot-instance:{instance}")
        self._where = make_url(url).render_as_string()  # password masked
        self._conn: Any = None

    def acquire(self) -> dict[str, Any]:
        """Take the lock without waiting; returns this process's holder record."""
        from sqlalchemy import create_engine, text
        from sqlalchemy.pool import NullPool

        me = {"pid": os.getpid(), "host": socket.gethostname(), "instance": self.instance,
              "started_at": datetime.now(UTC).isoformat(timespec="seconds")}
        tag = f"betbot {self.instance} pid={me['pid']} host={me['host']} since={me['started_at']}"[:63]
        engine = create_engine(self.url, poolclass=NullPool, connect_args={"application_name": tag})
        conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        if not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar():
            holder = conn.execute(text(
                "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
                "AND ((l.classid::bigint << 32) | l.objid::bigint) = :k"), {"k": self.key}).scalar()
            conn.close()
            raise LedgerBusy(f"ledger {self._where}: instance {self.instance} is in use by "
                             f"{holder or 'another process'}; stop it first (or give this bot another `instance`)")
        self._conn = conn
        return me

    def release(self) -> None:
        if self._conn is not None:
            self._conn.close()  # the session ends, and its advisory lock with it
            self._conn = None


class HeldLock(Protocol):
    def acquire(self) -> dict[str, Any]: ...
    def release(self) -> None: ...


def advisory_key(name: str) -> int:
    """A signed 64-bit PostgreSQL advisory lock key for `name` (stable across processes)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def instance_lock(target: Path | str, instance: str) -> HeldLock:
    """The one-process-per-instance lock for a ledger `target` (a file, or a PostgreSQL URL)."""
    if isinstance(target, str):
        return InstanceLock(target, instance)
    return LedgerLock(target, instance)
