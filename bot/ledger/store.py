"""The ledger: one SQLite file in WAL mode (the default), or a PostgreSQL database shared by
several bot instances (`ledger.url`; docs/operations.md, "Several instances"), written by the
event loop only (sync calls; on SQLite one connection). Orders are keyed by `request_uuid`, committed durably BEFORE the placement request
leaves (docs/architecture.md, Invariants > Exactly-once placement); bets are the fills;
settlements carry the realised PnL. Tools that only read (`bot report`) open it with
`read_only=True`.

Durability where it buys exactly-once (docs/architecture.md, "Ledger writes and the hot path"):
the connection runs `synchronous=NORMAL` (a commit survives the process being killed; only an OS
crash or power loss can take back the last commits) and the intent commit of `add_orders` (the
orders alone) runs with `synchronous=FULL` (fsync'd before the request leaves). Signals,
decisions, the event log, order status changes (`update_order`, `defer_order_update`), the ABP
stream's seq, run checkpoints and balances are group-committed: queued and written in one
transaction `GROUP_COMMIT_MAX_AGE` after the first of them (a loop timer, held while a placement
is on its way out: `holding`), when `GROUP_COMMIT_MAX_OPS` are queued, and before any read or
immediate write, so every read sees every write. A crash loses at most those milliseconds of
queue, none of which reconciliation needs: the orders, bets and settlements are written at once,
and the venue answers for the rest.

An OPEN order is one `open_orders()` returns: its status is not final, except a PARTIALLY_FILLED
order more than `PARTIAL_CLOSED_AFTER` past its expiry. Everything that needs open orders (risk,
reconciliation, status, report) asks `open_orders()`, so there is one definition.

Returned rows are detached copies: reading their fields is fine, mutating them changes nothing.
Money is Decimal throughout; times are UTC-aware.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import sqlite3
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from loguru import logger
from sqlalchemy import and_, bindparam, event, func, insert, or_, text, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.expression import Executable
from sqlmodel import Session, SQLModel, col, create_engine, select

from bot.clock import Clock, WallClock
from bot.config.secrets import mask
from bot.ledger.intent import IntentInsert
from bot.ledger.migrations import LedgerSchemaError, current_version, migrate
from bot.ledger.models import (
    SCHEMA_VERSION,
    BalanceRow,
    BetRow,
    DecisionRow,
    EventRow,
    OrderRow,
    RunRow,
    SettlementRow,
    SignalRow,
    StateRow,
)
from bot.types import FINAL_ORDER_STATUSES, BetStatus, Decision, OrderStatus, SettlementStatus, Signal

_FINAL = [s.value for s in FINAL_ORDER_STATUSES]
_NOT_FINAL = [s.value for s in OrderStatus if s not in FINAL_ORDER_STATUSES]  # IN (...) uses the status index
# A bet can still win or lose money: ABP /positions counts PLACED and CONFIRMED
# (docs/reference/abp.md §6.8); a PENDING bet awaits the bookmaker and may still be placed, so
# exposure counts it too.
PARTIAL_CLOSED_AFTER = timedelta(hours=1)
OPEN_BET_STATUSES = (BetStatus.PENDING.value, BetStatus.PLACED.value, BetStatus.CONFIRMED.value)
_IN_CHUNK = 500  # SQLite host parameters per IN (...) query, well under its limit
GROUP_COMMIT_MAX_OPS = 1000  # queued writes that force a group commit
_ORDERS_CACHED = 10_000  # recent orders kept in memory (get_order, update_order)
_SETTLED_KEPT = 8  # `since` values whose settled PnL is kept current
GROUP_COMMIT_MAX_AGE = 0.005  # seconds a queued write waits for the group commit (loop timer)

# a write, or a row for a prepared INSERT (its values, or a function making them at the commit)
Op = Callable[[Session], object] | tuple[Executable, dict[str, Any] | Callable[[], dict[str, Any]]]
RISK_STATE_KEY = "risk"  # the trading state's key (bot/risk/control.py)
RESERVE_LOCK = 0x6C65_6467_7273  # pg advisory lock key of intent commits and trading-state changes ("ledgrs")


@dataclass(frozen=True, slots=True)
class SharedView:
    """What the global limits judge an intent commit by (read inside it, every instance's):
    open orders, open bets with their orders by request_uuid, the trading state record
    (bot/risk/control.py `TradingRecord`, None before the first) and the settled PnL since the
    trading day began (Decimal, bot currency)."""

    open_orders: list[OrderRow]
    open_bets: list[BetRow]
    bet_orders: dict[str, OrderRow]
    risk_state: dict[str, Any] | None
    day_pnl: Decimal


class IntentGuard(Protocol):
    """The global limits of a shared ledger (bot/risk/shared.py `GlobalLimits`)."""

    def day_start(self) -> datetime:
        """Start (UTC) of the trading day the loss limit counts."""
        ...

    def refusals(self, view: SharedView, rows: Sequence[OrderRow]) -> dict[str, str]:
        """{request_uuid: reason} of the rows that must not be placed."""
        ...


def _sqlite_pragmas(dbapi_conn: Any, _record: Any, *, durable: bool = True) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode: a commit survives the process being killed, not an OS crash; the
    # intent commit alone runs FULL (Ledger.add_orders), see the module docstring. OFF: a
    # throwaway ledger (`Ledger(durable=False)`).
    cur.execute(f"PRAGMA synchronous={'NORMAL' if durable else 'OFF'}")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _read_only_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=5000")  # the bot may be writing: wait, never fail the read
    cur.close()


class LedgerUnavailable(RuntimeError):
    """The ledger file cannot be used: not a SQLite database, locked by another writer beyond the
    busy timeout, or not writable. The message is one line naming the file and the fix
    (`ledger error: <file>: <problem>; fix: <what to do>`); the commands exit 2 with it
    (docs/architecture.md, "Configuration")."""


def unavailable(where: str, exc: BaseException, *, parent: str = "its folder") -> LedgerUnavailable:
    """`exc` (the database's or the file system's refusal) as one line naming `where` and the fix."""
    orig = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps the driver's error
    why = " ".join(str(orig).split()) or type(orig).__name__
    low = why.lower()
    name = where.rsplit("/", 1)[-1]
    if where.startswith("postgresql"):
        fix = ("check that PostgreSQL runs and ledger.url names its host, port, user and database "
               "(postgresql+psycopg://user:password@host:5432/dbname)")
    elif "not a database" in low or "malformed" in low or "file is encrypted" in low:
        fix = (f"move {name} aside or `bot run --fresh` (a new ledger, the old file kept beside it), "
               "or point state_dir at the right folder")
    elif "locked" in low or "busy" in low:
        fix = "another process holds it for writing: stop it, or give this bot its own state_dir"
    elif "readonly" in low or "read-only" in low or "permission" in low or "unable to open" in low:
        fix = f"make {parent} and {name} writable, or point state_dir at a writable folder"
    else:
        fix = "check the file and its folder, or point state_dir elsewhere"
    return LedgerUnavailable(f"ledger error: {where}: {why}; fix: {fix}")


def is_url(target: Path | str) -> bool:
    """True when `target` is a database URL (`postgresql+psycopg://...`), not a file path."""
    return isinstance(target, str) and "://" in target


def describe(target: Path | str) -> str:
    """What messages name for a ledger target: the file, or the URL with its password masked."""
    return make_url(str(target)).render_as_string() if is_url(target) else str(target)


class Ledger:
    """The ledger of signals, decisions, orders, bets, settlements, balances, events, state.

    Args:
        target: the SQLite file (parent directories are created), or a PostgreSQL URL
            (`postgresql+psycopg://user:password@host:5432/dbname`) for a ledger several
            instances share (docs/operations.md, "Several instances").
        clock: stamps `append_event`, `set_state` and row updates, and is the `now` of
            `open_orders` (default wall clock).
        read_only: open an existing ledger without creating, migrating or writing anything
            (the database refuses writes on this connection).
        instance: the bot instance this process is: stamped on the orders it adds; on a shared
            ledger the reads of what this process must recover and reconcile (open orders,
            open bets, unfinished orders) are limited to its own orders.
        durable: False for a throwaway SQLite ledger (a backtest's): synchronous=OFF and no
            fsync'd intent commit, so a crash of the machine may corrupt the file (the run is
            rerun, nothing is at stake). A killed process still loses no commit.

    Raises:
        LedgerSchemaError: the database was written by a newer schema version.
        FileNotFoundError: `read_only` and the file does not exist.
        LedgerUnavailable: the file is not a SQLite database, the database refuses it (locked by
            another writer beyond the busy timeout, read-only) or PostgreSQL cannot be reached:
            one line naming the file (or the URL, password masked) and the fix. A writable
            SQLite ledger takes the write lock once at open, so a ledger another process keeps
            locked is refused here rather than failing every later write.
    """

    def __init__(self, target: Path | str, clock: Clock | None = None, *, read_only: bool = False,
                 instance: str = "", durable: bool = True) -> None:
        self.shared = is_url(target) and make_url(str(target)).get_backend_name() == "postgresql"
        self.path: Path | None = None if is_url(target) else Path(target)
        # what messages name: the file, or the URL without its password
        self.name = describe(target)
        self.instance = instance
        self._clock = clock or WallClock()
        self._read_only = read_only
        self._durable = durable
        self._closed = False
        self._conn: sqlite3.Connection | None = None  # the one SQLite connection (`_connect`)
        self._intent: IntentInsert | None = None  # the intent commit on that connection
        self._pending: list[Op] = []
        self._run_updates: dict[str, dict[str, Any]] = {}  # run_id -> fields of its queued UPDATE
        self._flush_soon = False
        self._holds = 0  # placements holding the group commit's timer (see `holding`)
        self._data_version: int | None = None
        self._changes = itertools.count()  # shared ledger: every `bets_version` differs
        # Queries a replay would otherwise repeat on every event, skipped while nothing they read
        # can have changed: no open order since the last empty answer (orders never become open
        # again once final: only `add_orders` makes one), at this `data_version`.
        self._no_open_orders_at: int | None = None
        self._bet_writes = 0  # this process's bet writes (`bets_version`)
        self.refused_writes = 0  # queued writes the database refused (logged; see flush)
        self.write_error: str | None = None  # why the last write failed, until one succeeds
        self._settled: dict[datetime | None, Decimal] = {}  # since -> settled PnL, kept current
        self._orders: OrderedDict[str, OrderRow] = OrderedDict()  # recent orders by request_uuid
        self._order_ids: dict[int, str] = {}  # ABP orderId -> request_uuid of a cached order
        self.guard: IntentGuard | None = None  # the global limits on a shared ledger (bot/risk/shared.py)
        try:
            if self.path is None:
                self._open_url(str(target), read_only=read_only)
            else:
                self._open(self.path, read_only=read_only)
        except (SQLAlchemyError, OSError) as exc:
            engine = getattr(self, "_engine", None)
            if engine is not None:
                engine.dispose()
            if isinstance(exc, FileNotFoundError) and read_only:
                raise
            raise unavailable(self.name, exc, parent=str(self.path.parent) if self.path else "") from None
        self._insert_signal = (pg_insert(_SIGNALS) if self.shared else sqlite_insert(_SIGNALS)).on_conflict_do_nothing(
            index_elements=["signal_id"])

    def _open(self, path: Path, *, read_only: bool) -> None:
        if read_only:
            if not path.is_file():
                raise FileNotFoundError(f"no ledger at {path}")
            self._engine: Engine = create_engine(f"sqlite:///file:{path.resolve()}?mode=ro&uri=true")
            event.listen(self._engine, "connect", _read_only_pragmas)
            self._check_version()
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        # One connection for every write and read of this process (the event loop's): `PRAGMA
        # data_version` on it then changes only when ANOTHER process commits (`changed_elsewhere`).
        self._engine = create_engine("sqlite://", creator=self._connect, poolclass=StaticPool)
        event.listen(self._engine, "connect", functools.partial(_sqlite_pragmas, durable=self._durable))
        self._intent = IntentInsert(_TABLES[str(OrderRow.__tablename__)], self._engine.dialect)
        self.schema_version = migrate(self._engine)
        with self._engine.connect() as conn:  # the write lock, once: waits busy_timeout, then refuses
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            conn.exec_driver_sql("ROLLBACK")
        self.changed_elsewhere()  # from here on: what others write after this open

    def _open_url(self, url: str, *, read_only: bool) -> None:
        """A ledger on a database server. Sessions run in UTC (the ledger stores naive UTC);
        a read-only ledger's transactions are read-only on the server."""
        options = "-c timezone=UTC" + (" -c default_transaction_read_only=on" if read_only else "")
        self._engine = create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=2,
                                     connect_args={"options": options} if self.shared else {})
        if read_only:
            self._check_version()
            return
        self.schema_version = migrate(self._engine)

    def _check_version(self) -> None:
        """A read-only open reads a ledger at this bot's schema version only.

        Raises:
            LedgerSchemaError: older (its tables lack columns this bot reads) or newer.
        """
        with self._engine.connect() as conn:
            self.schema_version = current_version(conn) or 0
        if self.schema_version > SCHEMA_VERSION:
            self.close()
            raise LedgerSchemaError(f"ledger schema version {self.schema_version} is newer than this "
                                    f"bot's {SCHEMA_VERSION}; upgrade the bot")
        if self.schema_version < SCHEMA_VERSION:
            self.close()
            raise LedgerSchemaError(f"ledger error: {self.name}: schema version {self.schema_version} is older than "
                                    f"this bot's {SCHEMA_VERSION}; fix: run `bot risk status` once (it opens "
                                    "the ledger writable and migrates it), or start the bot")

    def close(self) -> None:
        """Write what is queued, then close. Safe to call twice."""
        if not self._read_only and not self._closed:
            try:
                self.flush()
            except SQLAlchemyError as exc:  # shutdown goes on; what is lost is said
                logger.error("ledger: {} queued writes (signals, decisions, events) could not be written "
                             "at close: {}", len(self._pending), self.write_error or exc)
        self._closed = True
        self._engine.dispose()  # closes the connection; a later read opens a new one

    def _session(self) -> Session:
        return Session(self._engine, expire_on_commit=False)

    def _connect(self) -> sqlite3.Connection:
        assert self.path is not None  # the SQLite engine only
        self._conn = sqlite3.connect(self.path, check_same_thread=False)
        return self._conn

    def _pragma(self, statement: str) -> Any:
        """Run a PRAGMA on the one connection (opened if needed) and return its first value."""
        if self._conn is not None and not self._closed:  # open: no pool checkout (risk asks per signal)
            row = self._conn.execute(statement).fetchone()
            return None if row is None else row[0]
        with self._engine.connect():  # makes sure the pool's connection exists
            assert self._conn is not None  # the SQLite engine opened it (`_connect`)
            row = self._conn.execute(statement).fetchone()
        return None if row is None else row[0]

    # -- group commit ------------------------------------------------------------------------

    def _defer(self, op: Op) -> None:
        """Queue a write for the next group commit (see the module docstring)."""
        if not self._pending:
            self._schedule_flush()
        self._pending.append(op)
        if len(self._pending) >= GROUP_COMMIT_MAX_OPS:
            self.flush()

    def _defer_insert(self, statement: Executable, values: dict[str, Any] | Callable[[], dict[str, Any]]) -> None:
        """Queue one row for a prepared INSERT: consecutive rows of one statement are written in
        one executemany (no row objects, no statement built per row). `values` may be a function
        that makes them when the group commit runs: work kept off the hot path."""
        self._defer((statement, values))

    def _schedule_flush(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (tools, tests): write at once
            self._flush_soon = False
            return
        if not self._flush_soon:
            self._flush_soon = True
            # not call_soon: a placement task started in this turn runs first, and its intent
            # commit takes the queue along; the rest waits at most this long
            loop.call_later(GROUP_COMMIT_MAX_AGE, self._flush_turn)

    def _flush_turn(self) -> None:
        self._flush_soon = False
        if self._closed:
            return
        if self._holds:  # a placement is on its way out: write after it (reads still flush)
            self._schedule_flush()
            return
        try:
            self.flush()
        except Exception:  # noqa: BLE001 - the queue is kept; the next write or read retries it
            logger.opt(exception=True).error("ledger: group commit failed; {} writes kept queued", len(self._pending))

    @contextmanager
    def holding(self) -> Iterator[None]:
        """Keep the group commit's timer from writing while the block runs (a placement between
        its intent commit and its request written: bot/execution/executor.py `submit`). Reads and
        immediate writes still write the queue first, and `GROUP_COMMIT_MAX_OPS` still applies."""
        self._holds += 1
        try:
            yield
        finally:
            self._holds -= 1

    def flush(self) -> None:
        """Commit every queued write in one transaction (nothing to do when none is queued).

        Raises:
            sqlalchemy.exc.SQLAlchemyError: the commit failed; the queue is kept for a retry.
        """
        if not self._pending:
            return
        try:
            with self._session() as s:
                self._apply_pending(s)
                s.commit()
        except SQLAlchemyError as exc:
            if _environmental(exc):  # the database cannot write at all: keep the queue, say so
                self.write_error = str(exc).splitlines()[0][:200]
                raise
            # one bad row must not block every later write: commit the rest one by one
            logger.error("ledger: group commit refused ({}); writing its {} items one by one", exc, len(self._pending))
            self._write_singly()
        self.write_error = None
        self._cleared()

    def _cleared(self) -> None:
        """The queue was written: forget it, and the run updates merged into it."""
        self._pending.clear()
        self._run_updates.clear()

    def _write_singly(self) -> None:
        """Each queued write in its own transaction; one the database refuses on its own is
        logged with its error and counted in `refused_writes`, the rest are kept."""
        for op in self._pending:
            try:
                with self._session() as s:
                    if isinstance(op, tuple):
                        s.connection().execute(op[0], [_values(op[1])])
                    else:
                        op(s)
                    s.commit()
            except SQLAlchemyError as exc:
                if _environmental(exc):
                    raise
                self.refused_writes += 1
                logger.error("ledger: write refused and dropped: {}", exc)

    def _apply_pending(self, s: Session) -> None:
        """The queued inserts first, one executemany per statement in first-queued order (signals
        before the decisions naming them), then the other writes in queue order (they touch
        other rows: order status, state, runs)."""
        inserts: dict[Executable, list[dict[str, Any]]] = {}
        for op in self._pending:
            if isinstance(op, tuple):
                inserts.setdefault(op[0], []).append(_values(op[1]))
        conn = s.connection()
        for statement, rows in inserts.items():
            conn.execute(statement, rows)
        for op in self._pending:
            if not isinstance(op, tuple):
                op(s)
        s.flush()

    def _write(self, op: Callable[[Session], Any], *, durable: bool = False, queue: bool = True) -> Any:
        """Run `op` after the queued writes (without them: `queue=False`), in one transaction,
        committed now; `durable` commits with synchronous=FULL (fsync'd). Returns what `op`
        returns."""
        durable = durable and self._durable and not self.shared  # a PostgreSQL commit is durable already
        if durable:
            self._pragma("PRAGMA synchronous=FULL")
        try:
            with self._session() as s:
                if queue:
                    self._apply_pending(s)
                result = op(s)
                s.commit()
        except SQLAlchemyError as exc:
            if _environmental(exc):
                self.write_error = str(exc).splitlines()[0][:200]
            raise
        finally:
            if durable:
                self._pragma("PRAGMA synchronous=NORMAL")
        if queue:
            self._cleared()
        self.write_error = None
        return result

    def _read(self) -> Session:
        """A session for a read that sees every write: the queue is committed first."""
        self.flush()
        return self._session()

    def changed_elsewhere(self) -> bool:
        """True when another process committed to the ledger since the last call (or since the
        ledger was opened); costs one `PRAGMA data_version`, no query of the tables. Always True
        on a shared ledger: other instances write all the time."""
        if self._read_only or self.shared:
            return True
        version = self._pragma("PRAGMA data_version")
        changed, self._data_version = version != self._data_version, version
        return changed

    def _now(self) -> datetime:
        return self._clock.now()

    def _own_orders(self) -> tuple[Any, ...]:
        """Conditions limiting an orders query to this instance's orders on a shared ledger
        (nothing on a ledger of one instance)."""
        return (OrderRow.instance == self.instance,) if self.shared else ()

    def _own_bets(self) -> tuple[Any, ...]:
        """Conditions limiting a bets query to the bets of this instance's orders on a shared ledger."""
        if not self.shared:
            return ()
        return (col(BetRow.request_uuid).in_(select(OrderRow.request_uuid).where(OrderRow.instance == self.instance)),)

    # -- signals and decisions -------------------------------------------------------------

    def record_signal(self, signal: Signal) -> None:
        """Store a signal (group-committed); a second call with the same `signal_id` is a no-op."""
        sel = signal.selection
        values = {
            "signal_id": signal.signal_id, "strategy": signal.strategy, "selection": sel.key,
            "sport": sel.fixture.sport, "fixture": str(sel.fixture), "market": str(sel.market),
            "outcome": sel.outcome, "side": signal.side.value, "stake": signal.stake, "price": signal.price,
            "min_price": signal.min_price, "edge": signal.edge, "bookmakers": ",".join(signal.bookmakers),
            "reason": signal.reason, "tag": signal.tag, "group": signal.group, "created_at": signal.created_at,
        }
        self._defer_insert(self._insert_signal, values)

    def record_decision(self, decision: Decision) -> None:
        """Store a risk decision and its signal, if not stored yet (group-committed)."""
        self.record_signal(decision.signal)
        at = decision.at or self._now()
        # the row is made when the group commit runs, after the placement request has left
        self._defer_insert(_INSERT_DECISION, lambda: {
            "signal_id": decision.signal.signal_id, "strategy": decision.signal.strategy,
            "verdict": decision.verdict.value, "reason": decision.reason,
            "requested_stake": decision.signal.stake, "approved_stake": decision.stake,
            "details": _jsonable(decision.details), "at": at,
        })

    def decisions(self, signal_id: str | None = None) -> list[DecisionRow]:
        with self._read() as s:
            q = select(DecisionRow).order_by(col(DecisionRow.id))
            if signal_id is not None:
                q = q.where(DecisionRow.signal_id == signal_id)
            return list(s.exec(q))

    def decision_counts(self) -> list[tuple[str, str | None, int]]:
        """(verdict, reason code, decisions) for every pair that occurs."""
        with self._read() as s:
            q = (select(DecisionRow.verdict, col(DecisionRow.reason), func.count())
                 .group_by(DecisionRow.verdict, col(DecisionRow.reason)))
            return [(verdict, reason, n) for verdict, reason, n in s.exec(q)]

    def signal_counts(self) -> dict[str, int]:
        """Signals per strategy."""
        with self._read() as s:
            return dict(s.exec(select(SignalRow.strategy, func.count()).group_by(SignalRow.strategy)).all())

    def signals(self, strategy: str | None = None) -> list[SignalRow]:
        with self._read() as s:
            q = select(SignalRow).order_by(col(SignalRow.id))
            if strategy is not None:
                q = q.where(SignalRow.strategy == strategy)
            return list(s.exec(q))

    def signalled_prices(self, strategy: str) -> list[tuple[str, str, float]]:
        """(selection key, comma-joined bookmakers, price) of the latest signal of `strategy` per
        selection and bookmakers, oldest first: one row per key, columns only (the strategy's
        `last_price` seed at start)."""
        latest = (select(func.max(SignalRow.id)).where(SignalRow.strategy == strategy)
                  .group_by(SignalRow.selection, SignalRow.bookmakers))
        with self._read() as s:
            q = (select(SignalRow.selection, SignalRow.bookmakers, SignalRow.price)
                 .where(col(SignalRow.id).in_(latest)).order_by(col(SignalRow.id)))
            return [(key, books, price) for key, books, price in s.exec(q)]

    def acted_signals(self, since: datetime) -> list[tuple[tuple[str, str, str, str], float, datetime, str]]:
        """Signals created at or after `since` that became orders, oldest first, as
        ((strategy, selection key, side, bookmakers), price, created_at, signal_id): what the
        risk manager restores for DUPLICATE_SIGNAL (bot/risk/checks.py `ApprovalLog`)."""
        with self._read() as s:
            ordered = select(OrderRow.id).where(OrderRow.signal_id == SignalRow.signal_id).exists()
            q = (sa_select(col(SignalRow.strategy), col(SignalRow.selection), col(SignalRow.side),
                           col(SignalRow.bookmakers), col(SignalRow.price), col(SignalRow.created_at),
                           col(SignalRow.signal_id))
                 .where(ordered)  # per candidate, on the orders' signal_id index
                 .where(col(SignalRow.created_at) >= since).order_by(col(SignalRow.id)))
            return [((strategy, key, side, books), price, at, signal_id)
                    for strategy, key, side, books, price, at, signal_id in s.connection().execute(q)
                    if at is not None]

    # -- key/value state and the event log -------------------------------------------------

    def get_state(self, key: str) -> dict | None:
        with self._read() as s:
            row = s.get(StateRow, key)
            return None if row is None else dict(row.value)

    def set_state(self, key: str, value: dict, *, defer: bool = False, below_rev: int | None = None) -> bool:
        """Store `value` under `key`: committed at once (another process may be waiting for it),
        or with `defer` in the next group commit (bookkeeping a crash may lose, such as the ABP
        stream's last seq: a restart then replays from an earlier one).

        `below_rev`: write only if the stored value's `rev` is below it, checked in the same
        transaction (under the shared ledger's lock), so a record another instance changed
        meanwhile is never overwritten. Returns False when it was not written for that reason."""
        stored, at = _jsonable(value), self._now()

        def op(s: Session) -> bool:
            if self.shared:  # a trading-state change and an intent commit never interleave
                _serialise(s)
            row = s.get(StateRow, key)
            if row is None:
                s.add(StateRow(key=key, value=stored, updated_at=at))
                return True
            if below_rev is not None and int(row.value.get("rev", 0)) >= below_rev:
                return False
            row.value = stored
            row.updated_at = at
            s.add(row)
            return True
        if defer:
            self._defer(op)
            return True
        written: bool = self._write(op)
        return written

    def append_event(self, kind: str, payload: dict, request_uuid: str | None = None) -> None:
        """Append to the execution event log, group-committed (raw wire data is kept as given,
        made JSON-safe, with every configured secret and credential query parameter masked by
        bot.config.secrets.mask: docs/architecture.md, "Invariants > Secrets never leave")."""
        at = self._now()
        # Made JSON-safe and masked when the group commit runs, not here: a placement appends its
        # request before it leaves (bot/execution/executor.py). The payload is not changed after.
        self._defer_insert(_INSERT_EVENT, lambda: {"at": at, "kind": kind, "request_uuid": request_uuid,
                                                   "payload": mask(_jsonable(payload))})

    def events(self, kind: str | None = None, request_uuid: str | None = None) -> list[EventRow]:
        with self._read() as s:
            q = select(EventRow).order_by(col(EventRow.id))
            if kind is not None:
                q = q.where(EventRow.kind == kind)
            if request_uuid is not None:
                q = q.where(EventRow.request_uuid == request_uuid)
            return list(s.exec(q))

    # -- orders ----------------------------------------------------------------------------

    def add_orders(self, rows: Iterable[OrderRow]) -> dict[str, str]:
        """Insert order rows in ONE durable transaction, fsync'd (synchronous=FULL): the INTENT
        commit before sending, the one durable write per batch of orders. It holds the orders
        alone, so the fsync'd write stays small; the queue (their signals and decisions) follows
        in the next group commit, after the request has left.

        On a shared ledger the commit is also the cross-instance reservation: it runs under a
        transaction-level advisory lock every instance's intent commit (and trading-state change)
        takes, and `guard` (bot/risk/shared.py) judges the rows against everyone's open orders,
        open bets, the trading state and the day's settled PnL read inside it. Rows it refuses
        are stored DECLINED with the reason, in the same commit, and never leave.

        Returns:
            {request_uuid: reason} of the refused rows (empty on a ledger of one instance).

        Raises:
            sqlalchemy.exc.IntegrityError: a `request_uuid` already exists (nothing is written).
        """
        now = self._now()
        rows = list(rows)
        for row in rows:
            row.created_at = row.created_at or now
            row.updated_at = now
            row.instance = row.instance or self.instance

        def op(s: Session) -> dict[str, str]:
            refused: dict[str, str] = {}
            if self.shared:
                _serialise(s)
                if self.guard is not None:
                    refused = self.guard.refusals(self._shared_view(s, self.guard.day_start()), rows)
                for row in rows:
                    if row.request_uuid in refused:
                        row.status = OrderStatus.DECLINED.value
                        row.status_reason = f"not sent: {refused[row.request_uuid]}"[:500]
            s.connection().execute(_INSERT_ORDER, [row.model_dump(exclude={"id"}) for row in rows])
            return refused
        self._no_open_orders_at = None
        conn = self._conn
        if self._intent is not None and conn is not None and not self._closed and not conn.in_transaction:
            try:  # the raw intent commit (bot/ledger/intent.py); no refusals on a ledger of one instance
                self._intent.commit(conn, rows, durable=self._durable)
            except SQLAlchemyError as exc:
                if _environmental(exc):
                    self.write_error = str(exc).splitlines()[0][:200]
                raise
            self.write_error = None
            refusals: dict[str, str] = {}
        else:
            refusals = self._write(op, durable=True, queue=False)
        for row in rows:
            self._cache_order(row.model_copy())
        return refusals

    def _shared_view(self, s: Session, day_start: datetime) -> SharedView:
        """Every instance's open orders and open bets (with their orders), the trading state and
        the settled PnL since `day_start`, read in the intent commit's transaction."""
        bets = list(s.exec(_open_bets()))
        wanted = sorted({b.request_uuid for b in bets})
        bet_orders: dict[str, OrderRow] = {}
        for i in range(0, len(wanted), _IN_CHUNK):
            q = select(OrderRow).where(col(OrderRow.request_uuid).in_(wanted[i:i + _IN_CHUNK]))
            bet_orders.update((o.request_uuid, o) for o in s.exec(q))
        state = s.get(StateRow, RISK_STATE_KEY)
        settled = sum(s.exec(select(col(SettlementRow.pnl)).where(col(SettlementRow.at) >= day_start)), Decimal(0))
        return SharedView(open_orders=list(s.exec(_open_orders(self._now()))), open_bets=bets, bet_orders=bet_orders,
                          risk_state=None if state is None else dict(state.value), day_pnl=settled)

    def get_order(self, request_uuid: str) -> OrderRow | None:
        """The order with this `request_uuid` (from the cache of recent orders when held)."""
        cached = self._orders.get(request_uuid)
        if cached is not None:
            self._orders.move_to_end(request_uuid)
            return cached.model_copy()
        with self._read() as s:
            row = s.exec(select(OrderRow).where(OrderRow.request_uuid == request_uuid)).first()
        if row is not None and not self._read_only:
            self._cache_order(row)
        return None if row is None else row.model_copy()

    def get_order_by_order_id(self, order_id: int) -> OrderRow | None:
        """The order with ABP's `orderId` (set once the venue answered)."""
        request_uuid = self._order_ids.get(order_id)
        if request_uuid is not None and request_uuid in self._orders:
            return self.get_order(request_uuid)
        with self._read() as s:
            return s.exec(select(OrderRow).where(OrderRow.order_id == order_id)).first()

    def update_order(self, request_uuid: str, **fields: Any) -> OrderRow:
        """Set fields of one order (group-committed: an order status the venue answers for,
        see the module docstring); returns the updated row.

        Raises:
            KeyError: no order with this `request_uuid`.
        """
        row = self.get_order(request_uuid)
        if row is None:
            raise KeyError(request_uuid)
        updated = row.model_copy(update={**fields, "updated_at": self._now()})
        self._cache_order(updated)
        self.defer_order_update([request_uuid], **fields, updated_at=updated.updated_at)
        return updated.model_copy()

    def defer_order_update(self, request_uuids: Collection[str], **fields: Any) -> None:
        """Set the same fields on these orders in the next group commit (an order status the
        venue answers for, such as SENT: see the module docstring)."""
        values = {"updated_at": self._now(), **fields}
        for request_uuid in request_uuids:
            cached = self._orders.get(request_uuid)
            if cached is not None:
                self._cache_order(cached.model_copy(update=values))
        statement = _keyed_update(str(OrderRow.__tablename__), "request_uuid", tuple(values))
        rows = [_keyed_params(request_uuid, values) for request_uuid in request_uuids]
        self._defer(lambda s: s.connection().execute(statement, rows))  # an op in queue order, not an insert

    def _cache_order(self, row: OrderRow) -> None:
        """Keep a copy of a recent order: this process is the ledger's only writer of orders
        (bot/ledger/lock.py), so the copy is what the file holds once the queue is written."""
        self._orders[row.request_uuid] = row
        self._orders.move_to_end(row.request_uuid)
        if row.order_id is not None:
            self._order_ids[row.order_id] = row.request_uuid
        while len(self._orders) > _ORDERS_CACHED:
            _, old = self._orders.popitem(last=False)
            if old.order_id is not None:
                self._order_ids.pop(old.order_id, None)

    def open_orders(self) -> list[OrderRow]:
        """The open orders (the one definition, see the module docstring): status not final
        (INTENT, SENT, UNKNOWN, PENDING, PROCESSING, PARTIALLY_FILLED), except PARTIALLY_FILLED
        orders more than `PARTIAL_CLOSED_AFTER` past their expiry: ABP stops filling at
        `expiresAt` (docs/reference/abp.md §8.3), so they can change no more, and start-up
        reconciliation stays bounded on a bot that runs for weeks."""
        version = None if self._read_only or self.shared else self._pragma("PRAGMA data_version")
        if version is not None and version == self._no_open_orders_at:
            return []  # none since the last look, and no other process wrote since
        with self._read() as s:
            rows = list(s.exec(_open_orders(self._now()).where(*self._own_orders())))
        self._no_open_orders_at = None if rows else version
        return rows

    def recovery_order_ids(self, since: datetime | None) -> list[int]:
        """ABP ids of the orders created at or after `since` (None: any time) whose bets may
        still change: not final, or a bet still open, or a filled stake with no bet seen. An
        order whose every known bet is closed is not asked (bot/execution/executor.py `recover`)."""
        # three queries each on an index (or one plain scan), not one OR that makes SQLite
        # materialise every bet: flat in the ledger's history
        open_bets = (select(BetRow.request_uuid).where(col(BetRow.bet_status).in_(OPEN_BET_STATUSES))
                     .where(BetRow.settlement_status == SettlementStatus.UNSETTLED.value))
        has_bet = select(BetRow.id).where(BetRow.request_uuid == OrderRow.request_uuid).exists()
        wanted = [
            col(OrderRow.status).in_(_NOT_FINAL),
            col(OrderRow.request_uuid).in_(open_bets),
            and_(col(OrderRow.filled_stake) > 0, ~has_bet),
        ]
        found: dict[int, int] = {}  # row id -> order id, so the answer is in order of creation
        with self._read() as s:
            for condition in wanted:
                q = (select(OrderRow.id, OrderRow.order_id).where(col(OrderRow.order_id).is_not(None))
                     .where(condition, *self._own_orders()))
                if since is not None:
                    q = q.where(col(OrderRow.created_at) >= since)
                found.update((row_id, order_id) for row_id, order_id in s.exec(q)
                             if row_id is not None and order_id is not None)
        return [found[row_id] for row_id in sorted(found)]

    def orders_by_uuid(self, request_uuids: Collection[str]) -> dict[str, OrderRow]:
        """The orders with these `request_uuid`s (missing ones are absent from the result)."""
        wanted = sorted(request_uuids)
        found: dict[str, OrderRow] = {}
        with self._read() as s:
            for i in range(0, len(wanted), _IN_CHUNK):
                q = select(OrderRow).where(col(OrderRow.request_uuid).in_(wanted[i:i + _IN_CHUNK]))
                found.update((o.request_uuid, o) for o in s.exec(q))
        return found

    def orders(self, strategy: str | None = None) -> list[OrderRow]:
        with self._read() as s:
            q = select(OrderRow).order_by(col(OrderRow.id))
            if strategy is not None:
                q = q.where(OrderRow.strategy == strategy)
            return list(s.exec(q))

    # -- runs ------------------------------------------------------------------------------

    def add_run(self, row: RunRow) -> None:
        self._write(lambda s: s.add(row))

    def update_run(self, run_id: str, **fields: Any) -> None:
        """Set `fields` on the run (e.g. last_event_seq, outcome, ended_at), group-committed. The
        updates of one run queued for the same group commit are one UPDATE, the latest value of
        each field winning (a replay checkpoints every hundred events)."""
        queued = self._run_updates.get(run_id)
        if queued is not None:
            queued.update(fields)
            return
        queued = self._run_updates[run_id] = dict(fields)
        self._defer(lambda s: s.connection().execute(
            _keyed_update(str(RunRow.__tablename__), "run_id", tuple(queued)), _keyed_params(run_id, queued)))

    def runs(self, source: str | None = None) -> list[RunRow]:
        """Runs in start order, optionally of one `source`; on a shared ledger this instance's."""
        with self._read() as s:
            q = select(RunRow).order_by(col(RunRow.id))
            if self.shared:
                q = q.where(RunRow.instance == self.instance)
            if source is not None:
                q = q.where(RunRow.source == source)
            return list(s.exec(q))

    # -- bets, settlements, balances -------------------------------------------------------

    def upsert_bet(self, bet: BetRow) -> tuple[BetRow, BetRow | None]:
        """Insert or update a bet by `bet_id`; returns (stored row, previous copy or None).

        Fields left None on `bet` (placed_at, settled_at, settlement_amount, venue_*) keep their
        value; a bet without `venue_*` is taken as placed in its `placed_currency`.
        """
        def op(s: Session) -> tuple[BetRow, BetRow | None]:
            # Core statements prepared once (bets change at every fill and settlement): the ORM
            # select and unit of work cost ~4x as much per bet
            conn = s.connection()
            found = conn.execute(_SELECT_BET, {"key": bet.bet_id}).first()
            given = {name: getattr(bet, name) for name in _BET_FIELDS}
            if found is None:
                previous, values = None, given
            else:
                previous = BetRow.model_validate(found._asdict())
                values = {name: getattr(previous, name) for name in _BET_FIELDS}
                values.update((name, value) for name, value in given.items() if value is not None)
            values["venue_currency"] = values["venue_currency"] or values["placed_currency"]
            if values["venue_currency"] == values["placed_currency"]:  # same currency: the venue's amounts are ours
                if values["venue_stake"] is None:
                    values["venue_stake"] = values["placed_stake"]
                if values["venue_amount"] is None:
                    values["venue_amount"] = values["settlement_amount"]
            values["updated_at"] = self._now()
            if previous is None:
                key = conn.execute(_INSERT_BET, values).inserted_primary_key
                assert key is not None  # a single-row INSERT has one
                row_id = key[0]
            else:
                row_id = previous.id
                conn.execute(_keyed_update(str(BetRow.__tablename__), "bet_id", _BET_FIELDS),
                             _keyed_params(bet.bet_id, values))
            return BetRow(id=row_id, **values), previous
        result: tuple[BetRow, BetRow | None] = self._write(op)
        self._bet_writes += 1
        return result

    def bets(self, request_uuid: str | None = None) -> list[BetRow]:
        with self._read() as s:
            q = select(BetRow).order_by(col(BetRow.bet_id))
            if request_uuid is not None:
                q = q.where(BetRow.request_uuid == request_uuid)
            return list(s.exec(q))

    def open_bets(self) -> list[BetRow]:
        """Bets PENDING, PLACED or CONFIRMED and still UNSETTLED (see OPEN_BET_STATUSES)."""
        with self._read() as s:
            return list(s.exec(_open_bets().where(*self._own_bets())))

    def add_settlement(self, row: SettlementRow) -> bool:
        """Store a settlement once per `bet_id`, committed at once; returns False if it was
        already stored. Without `venue_*` it is taken as settled in its own `currency`."""
        def op(s: Session) -> bool:
            if s.exec(select(SettlementRow.id).where(SettlementRow.bet_id == row.bet_id)).first():
                return False
            row.venue_currency = row.venue_currency or row.currency
            row.venue_stake = row.stake if row.venue_stake is None else row.venue_stake
            row.venue_amount = row.amount if row.venue_amount is None else row.venue_amount
            s.add(row)
            return True
        added: bool = self._write(op)
        if added:
            at = None if row.at is None else _utc(row.at)
            for since in self._settled:
                if since is None or (at is not None and at >= since):
                    self._settled[since] += row.pnl
        return added

    def market_bets(self, fixture: str, market: str, bookmaker: str) -> list[tuple[BetRow, SettlementRow | None]]:
        """Every bet at `bookmaker` on `market` (a `Selection.key` without its outcome) of
        `fixture` (str(FixtureKey)), each with its settlement once stored; all instances' (one
        account per bookmaker). Read through the index on `orders.fixture`."""
        q = (select(BetRow, SettlementRow, OrderRow.selection)
             .join(OrderRow, col(OrderRow.request_uuid) == col(BetRow.request_uuid))
             .outerjoin(SettlementRow, col(SettlementRow.bet_id) == col(BetRow.bet_id))
             .where(OrderRow.fixture == fixture, BetRow.bookmaker == bookmaker)
             .order_by(col(BetRow.bet_id)))
        with self._read() as s:
            return [(bet, settled) for bet, settled, selection in s.exec(q) if selection.rpartition("|")[0] == market]

    def settlements(self, since: datetime | None = None, until: datetime | None = None) -> list[SettlementRow]:
        """Settlements in the order stored; with `since` / `until` (UTC) only those settled in
        [since, until), read through the index on `at`."""
        q = select(SettlementRow).order_by(col(SettlementRow.id))
        if since is not None:
            q = q.where(col(SettlementRow.at) >= _utc(since))
        if until is not None:
            q = q.where(col(SettlementRow.at) < _utc(until))
        with self._read() as s:
            return list(s.exec(q))

    def settlement_pnls(self, after_id: int = 0) -> list[tuple[int, datetime, int, Decimal]]:
        """(id, at, bet_id, pnl) of the settlements stored after `after_id`, in id order: the
        columns alone, read through the primary key (an equity curve kept up to date by reading
        only what is new)."""
        q = select(col(SettlementRow.id), col(SettlementRow.at), col(SettlementRow.bet_id), col(SettlementRow.pnl)).where(
            col(SettlementRow.id) > after_id).order_by(col(SettlementRow.id))
        with self._read() as s:
            return [(i, _utc(at), bet, pnl) for i, at, bet, pnl in s.exec(q) if i is not None and at is not None]

    def settled_pnl(self, since: datetime | None = None, strategy: str | None = None) -> Decimal:
        """Sum of settlement PnL (amount - stake) settled at or after `since`, exact Decimal.

        Without `strategy`, a writable ledger sums once per `since` and keeps the sum current
        as `add_settlement` stores (this process is the ledger's only writer: bot/ledger/lock.py),
        so the risk limits read it in O(1) however long the history. A shared ledger sums every
        time: the other instances settle too."""
        since = None if since is None else _utc(since)
        cached = strategy is None and not self._read_only and not self.shared
        if cached and since in self._settled:
            return self._settled[since]
        if cached and since is not None and None in self._settled:
            with self._read() as s:
                earliest = s.exec(select(func.min(SettlementRow.at))).one()
            if earliest is None or since <= _utc(earliest):  # every settlement counts: the total, kept
                total = self._settled[since] = self._settled[None]
                return total
        with self._read() as s:
            q = select(col(SettlementRow.pnl))
            if since is not None:
                q = q.where(col(SettlementRow.at) >= since)
            if strategy is not None:
                q = q.where(SettlementRow.strategy == strategy)
            total = sum(s.exec(q), Decimal(0))
        if cached:
            if len(self._settled) >= _SETTLED_KEPT:  # day starts come one a day: keep the newest
                self._settled.pop(min(self._settled, key=lambda k: k or datetime.min.replace(tzinfo=UTC)))
            self._settled[since] = total
        return total

    def record_balance(
        self, bookmaker: str, balance: Decimal, currency: str = "USD", username: str = ""
    ) -> None:
        """Store a balance reading (group-committed)."""
        row = BalanceRow(bookmaker=bookmaker, username=username, currency=currency, balance=balance, at=self._now())
        self._defer(lambda s: s.add(row))

    def balances(self) -> list[BalanceRow]:
        """Latest balance per (bookmaker, username)."""
        with self._read() as s:
            latest = (
                select(func.max(BalanceRow.id))
                .group_by(BalanceRow.bookmaker, BalanceRow.username)
                .scalar_subquery()
            )
            q = select(BalanceRow).where(col(BalanceRow.id).in_(latest)).order_by(col(BalanceRow.id))
            return list(s.exec(q))

    # -- what can still change, for the paper venue and paper settlement (bot/sim) ------------

    def unfinished_orders(self) -> list[OrderRow]:
        """Orders whose status is not final, or that own an open bet (OPEN_BET_STATUSES,
        UNSETTLED), by id: what the paper venue adopts after a restart (bot/sim/paper.py)."""
        open_bet = (select(BetRow.request_uuid).where(col(BetRow.bet_status).in_(OPEN_BET_STATUSES))
                    .where(BetRow.settlement_status == SettlementStatus.UNSETTLED.value))
        with self._read() as s:
            q = (select(OrderRow)
                 .where(or_(col(OrderRow.status).in_(_NOT_FINAL), col(OrderRow.request_uuid).in_(open_bet)))
                 .where(*self._own_orders())
                 .order_by(col(OrderRow.id)))
            return list(s.exec(q))

    def bets_of_orders(self, request_uuids: Collection[str]) -> list[BetRow]:
        """Every bet of the orders with these `request_uuid`s, by bet_id."""
        wanted = sorted(request_uuids)
        found: list[BetRow] = []
        with self._read() as s:
            for i in range(0, len(wanted), _IN_CHUNK):
                found += s.exec(select(BetRow).where(col(BetRow.request_uuid).in_(wanted[i:i + _IN_CHUNK])))
        return sorted(found, key=lambda b: b.bet_id)

    def last_venue_ids(self) -> tuple[int, int]:
        """(highest `orders.order_id`, highest `bets.bet_id`), 0 when there is none: ids a paper
        venue must not hand out again."""
        with self._read() as s:
            order_id = s.exec(select(func.max(OrderRow.order_id))).one()
            bet_id = s.exec(select(func.max(BetRow.bet_id))).one()
        return order_id or 0, bet_id or 0

    def bet_watermark(self) -> tuple[int, datetime | None]:
        """(highest bets row id, latest bet `updated_at`): where `bets_changed` starts from."""
        with self._read() as s:
            row_id = s.exec(select(func.max(BetRow.id))).one()
            at = s.exec(select(func.max(BetRow.updated_at))).one()
        return row_id or 0, None if at is None else _utc(at)

    def bets_version(self) -> tuple[int, int | None]:
        """Changes whenever a bet may have changed: (this process's bet writes, SQLite's
        `data_version`, which moves with other processes' commits; None read-only). A reader
        of `bets_changed` skips its query while this is unchanged."""
        if self.shared:  # other instances' commits cannot be seen: always changed
            return self._bet_writes, next(self._changes)
        return self._bet_writes, None if self._read_only else self._pragma("PRAGMA data_version")

    def bets_changed(self, after_id: int, since: datetime | None) -> list[BetRow]:
        """Bets stored after row id `after_id` or updated at or after `since`, by row id. Two
        range reads, one per index (an OR of both scans every bet of a long history)."""
        with self._read() as s:
            rows = {b.id: b for b in s.exec(select(BetRow).where(col(BetRow.id) > after_id))}
            if since is not None:
                rows.update((b.id, b) for b in s.exec(select(BetRow).where(col(BetRow.updated_at) >= since)))
            return [rows[i] for i in sorted(rows, key=lambda i: i or 0)]

    # -- bounded reads for the dashboard (newest first; never the whole history) ----------
    def recent_orders(self, limit: int) -> list[OrderRow]:
        """The `limit` newest orders, newest first."""
        with self._read() as s:
            return list(s.exec(select(OrderRow).order_by(col(OrderRow.id).desc()).limit(limit)))

    def recent_bets(self, limit: int) -> list[BetRow]:
        """The `limit` newest bets, newest first."""
        with self._read() as s:
            return list(s.exec(select(BetRow).order_by(col(BetRow.id).desc()).limit(limit)))

    def recent_decisions(self, limit: int, reason: str | None = None) -> list[tuple[DecisionRow, str]]:
        """The `limit` newest decisions (with this reason code, when given), newest first, each
        with its signal's selection key ("" when the signal row is missing)."""
        with self._read() as s:
            q = (select(DecisionRow, SignalRow.selection)
                 .join(SignalRow, col(SignalRow.signal_id) == col(DecisionRow.signal_id), isouter=True)
                 .order_by(col(DecisionRow.id).desc()).limit(limit))
            if reason is not None:
                q = q.where(DecisionRow.reason == reason)
            return [(d, sel or "") for d, sel in s.exec(q)]

    def order_status_counts(self) -> dict[str, int]:
        """Orders per status (one grouped query on the status index)."""
        with self._read() as s:
            q = select(OrderRow.status, func.count()).group_by(OrderRow.status)
            return {status: n for status, n in s.exec(q)}

    def bets_awaiting_close(self) -> list[tuple[int, str, str, float, bool]]:
        """Open bets whose close was not looked for yet (`BetRow.closed_at` NULL): (bet_id,
        the order's selection key, bookmaker, placed price, True for a back and False for a
        lay), by bet_id (bot/market/closing.py)."""
        with self._read() as s:
            q = (
                sa_select(col(BetRow.bet_id), col(OrderRow.selection), col(BetRow.bookmaker), col(BetRow.placed_price),
                          col(OrderRow.back))
                .join(OrderRow, col(OrderRow.request_uuid) == col(BetRow.request_uuid))
                .where(col(BetRow.closed_at).is_(None))
                .where(col(BetRow.settlement_status) == SettlementStatus.UNSETTLED.value)
                .where(col(BetRow.bet_status).in_(OPEN_BET_STATUSES))
                .where(*self._own_orders())
                .order_by(col(BetRow.bet_id))
            )
            return [(int(b), str(sel), str(book), float(price), bool(back)) for b, sel, book, price, back in s.connection().execute(q)]

    def set_closing(self, closes: Sequence[tuple[int, float | None, float | None, float | None, datetime]]) -> None:
        """Store bets' closing lines: (bet_id, closing price, closing probability, CLV, kickoff),
        group-committed (not money: a crash before the commit has them looked for again at start)."""
        if not closes:
            return
        statement = _keyed_update(str(BetRow.__tablename__), "bet_id", _CLOSE_FIELDS)
        rows = [_keyed_params(b, dict(zip(_CLOSE_FIELDS, (price, prob, clv, _utc(at)), strict=True)))
                for b, price, prob, clv, at in closes]

        def op(s: Session) -> None:
            s.connection().execute(statement, rows)
        self._defer(op)


# Core statements on the tables (not the ORM classes): a queued row is a plain dict
_TABLES = SQLModel.metadata.tables
_SIGNALS = _TABLES[str(SignalRow.__tablename__)]
_INSERT_DECISION = insert(_TABLES[str(DecisionRow.__tablename__)])
_INSERT_EVENT = insert(_TABLES[str(EventRow.__tablename__)])
_INSERT_ORDER = insert(_TABLES[str(OrderRow.__tablename__)])
_BETS = _TABLES[str(BetRow.__tablename__)]
_SELECT_BET = _BETS.select().where(_BETS.c.bet_id == bindparam("key"))
_INSERT_BET = insert(_BETS)
_BET_FIELDS = tuple(c.name for c in _BETS.columns if not c.primary_key)  # BetRow's attributes too
_CLOSE_FIELDS = ("closing_price", "closing_probability", "clv", "closed_at")


def _open_orders(now: datetime) -> Any:
    """The open orders query (the one definition, see `Ledger.open_orders`), every instance's."""
    cutoff = now - PARTIAL_CLOSED_AFTER
    return (select(OrderRow)
            .where(col(OrderRow.status).in_(_NOT_FINAL))
            .where(or_(col(OrderRow.status) != OrderStatus.PARTIALLY_FILLED.value,
                       col(OrderRow.expires_at).is_(None), col(OrderRow.expires_at) > cutoff))
            .order_by(col(OrderRow.id)))


def _open_bets() -> Any:
    """The open bets query (`Ledger.open_bets`), every instance's."""
    return (select(BetRow)
            .where(col(BetRow.bet_status).in_(OPEN_BET_STATUSES))
            .where(BetRow.settlement_status == SettlementStatus.UNSETTLED.value)
            .order_by(col(BetRow.bet_id)))


def _serialise(s: Session) -> None:
    """Wait for the shared ledger's reservation lock, held until this transaction ends."""
    s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": RESERVE_LOCK})


def _environmental(exc: SQLAlchemyError) -> bool:
    """The database cannot write at all (locked, read-only, disk full, schema gone), as opposed
    to refusing one row (a constraint, a value it cannot store)."""
    return isinstance(exc, OperationalError)


def _utc(at: datetime) -> datetime:
    """SQLite returns naive datetimes; the ledger stores UTC."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _values(values: dict[str, Any] | Callable[[], dict[str, Any]]) -> dict[str, Any]:
    return values() if callable(values) else values


@functools.cache
def _keyed_update(table: str, key: str, fields: tuple[str, ...]) -> Executable:
    """UPDATE <table> SET <fields> WHERE <key> = :key, a Core statement prepared once per set of
    fields (the ORM's select-and-flush or bulk UPDATE cost several times as much per row); run
    it with `_keyed_params`, one dict per row for an executemany."""
    columns = _TABLES[table].c
    return update(_TABLES[table]).where(columns[key] == bindparam("key")).values(
        {name: bindparam(f"v_{name}") for name in fields})


def _keyed_params(key: Any, values: dict[str, Any]) -> dict[str, Any]:
    """The parameters of `_keyed_update` for one row ("v_" keeps them apart from column names)."""
    return {"key": key, **{f"v_{k}": v for k, v in values.items()}}


def _jsonable(value: Any) -> Any:
    """Make a payload storable as JSON without losing it: Decimal and datetime become text,
    unknown objects their repr (bad venue input is kept, never dropped)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return repr(value)
