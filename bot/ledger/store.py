"""The ledger: one SQLite file in WAL mode, written by the event loop only (sync calls, each one
transaction). Orders are keyed by `request_uuid`, committed BEFORE the placement request leaves
(docs/architecture.md, Invariants > Exactly-once placement); bets are the fills; settlements carry
the realised PnL. Tools that only read (`bot report`) open it with `read_only=True`.

An OPEN order is one `open_orders()` returns: its status is not final, except a PARTIALLY_FILLED
order more than `PARTIAL_CLOSED_AFTER` past its expiry. Everything that needs open orders (risk,
reconciliation, status, report) asks `open_orders()`, so there is one definition.

Returned rows are detached copies: reading their fields is fine, mutating them changes nothing.
Money is Decimal throughout; times are UTC-aware.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, inspect, or_
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, SQLModel, col, create_engine, select

from bot.clock import Clock, WallClock
from bot.config.secrets import mask
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
# A bet can still win or lose money: ABP /positions counts PLACED and CONFIRMED
# (docs/reference/abp.md §6.8); a PENDING bet awaits the bookmaker and may still be placed, so
# exposure counts it too.
PARTIAL_CLOSED_AFTER = timedelta(hours=1)
OPEN_BET_STATUSES = (BetStatus.PENDING.value, BetStatus.PLACED.value, BetStatus.CONFIRMED.value)
_IN_CHUNK = 500  # SQLite host parameters per IN (...) query, well under its limit


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit is on disk before we send the request it guards (exactly-once placement).
    cur.execute("PRAGMA synchronous=FULL")
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


def _unavailable(path: Path, exc: BaseException) -> LedgerUnavailable:
    """`exc` (SQLite's or the file system's refusal) as one line naming `path` and the fix."""
    orig = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps the sqlite3 error
    why = " ".join(str(orig).split()) or type(orig).__name__
    low = why.lower()
    if "not a database" in low or "malformed" in low or "file is encrypted" in low:
        fix = (f"move {path.name} aside or `bot run --fresh` (a new ledger, the old file kept beside it), "
               "or point state_dir at the right folder")
    elif "locked" in low or "busy" in low:
        fix = "another process holds it for writing: stop it, or give this bot its own state_dir"
    elif "readonly" in low or "read-only" in low or "permission" in low or "unable to open" in low:
        fix = f"make {path.parent} and {path.name} writable, or point state_dir at a writable folder"
    else:
        fix = "check the file and its folder, or point state_dir elsewhere"
    return LedgerUnavailable(f"ledger error: {path}: {why}; fix: {fix}")


class Ledger:
    """SQLite ledger of signals, decisions, orders, bets, settlements, balances, events, state.

    Args:
        path: the database file (parent directories are created).
        clock: stamps `append_event`, `set_state` and row updates, and is the `now` of
            `open_orders` (default wall clock).
        read_only: open an existing file without creating, migrating or writing anything
            (SQLite refuses writes on this connection).

    Raises:
        LedgerSchemaError: the file was written by a newer schema version.
        FileNotFoundError: `read_only` and the file does not exist.
        LedgerUnavailable: the file is not a SQLite database, or SQLite refuses it (locked by
            another writer beyond the busy timeout, read-only): one line naming file and fix.
            A writable ledger takes the write lock once at open, so a ledger another process
            keeps locked is refused here rather than failing every later write.
    """

    def __init__(self, path: Path, clock: Clock | None = None, *, read_only: bool = False) -> None:
        path = Path(path)
        self.path = path
        self._clock = clock or WallClock()
        try:
            self._open(path, read_only=read_only)
        except (SQLAlchemyError, OSError) as exc:
            engine = getattr(self, "_engine", None)
            if engine is not None:
                engine.dispose()
            if isinstance(exc, FileNotFoundError) and read_only:
                raise
            raise _unavailable(path, exc) from None

    def _open(self, path: Path, *, read_only: bool) -> None:
        if read_only:
            if not path.is_file():
                raise FileNotFoundError(f"no ledger at {path}")
            self._engine: Engine = create_engine(f"sqlite:///file:{path.resolve()}?mode=ro&uri=true")
            event.listen(self._engine, "connect", _read_only_pragmas)
            with self._engine.connect() as conn:
                self.schema_version = current_version(conn) or 0
            if self.schema_version > SCHEMA_VERSION:
                self.close()
                raise LedgerSchemaError(f"ledger schema version {self.schema_version} is newer than this "
                                        f"bot's {SCHEMA_VERSION}; upgrade the bot")
            if self.schema_version < SCHEMA_VERSION:  # its tables lack columns this bot reads
                self.close()
                raise LedgerSchemaError(f"ledger error: {path}: schema version {self.schema_version} is older than "
                                        f"this bot's {SCHEMA_VERSION}; fix: run `bot risk status` once (it opens "
                                        "the ledger writable and migrates it), or start the bot")
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        self._engine = create_engine(f"sqlite:///{path}")
        event.listen(self._engine, "connect", _sqlite_pragmas)
        fresh = not inspect(self._engine).has_table(OrderRow.__tablename__)
        SQLModel.metadata.create_all(self._engine)
        self.schema_version = migrate(self._engine, fresh=fresh)
        with self._engine.connect() as conn:  # the write lock, once: waits busy_timeout, then refuses
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            conn.exec_driver_sql("ROLLBACK")

    def close(self) -> None:
        self._engine.dispose()

    def _session(self) -> Session:
        return Session(self._engine, expire_on_commit=False)

    def _now(self) -> datetime:
        return self._clock.now()

    # -- signals and decisions -------------------------------------------------------------

    def record_signal(self, signal: Signal) -> None:
        """Store a signal; a second call with the same `signal_id` is a no-op."""
        with self._session() as s:
            if s.exec(select(SignalRow.id).where(SignalRow.signal_id == signal.signal_id)).first():
                return
            sel = signal.selection
            s.add(
                SignalRow(
                    signal_id=signal.signal_id,
                    strategy=signal.strategy,
                    selection=sel.key,
                    sport=sel.fixture.sport,
                    fixture=str(sel.fixture),
                    market=str(sel.market),
                    outcome=sel.outcome,
                    side=signal.side.value,
                    stake=signal.stake,
                    price=signal.price,
                    min_price=signal.min_price,
                    edge=signal.edge,
                    bookmakers=",".join(signal.bookmakers),
                    reason=signal.reason,
                    tag=signal.tag,
                    group=signal.group,
                    created_at=signal.created_at,
                )
            )
            s.commit()

    def record_decision(self, decision: Decision) -> None:
        """Store a risk decision (and its signal, if not stored yet)."""
        self.record_signal(decision.signal)
        with self._session() as s:
            s.add(
                DecisionRow(
                    signal_id=decision.signal.signal_id,
                    strategy=decision.signal.strategy,
                    verdict=decision.verdict.value,
                    reason=decision.reason,
                    requested_stake=decision.signal.stake,
                    approved_stake=decision.stake,
                    details=_jsonable(decision.details),
                    at=decision.at or self._now(),
                )
            )
            s.commit()

    def decisions(self, signal_id: str | None = None) -> list[DecisionRow]:
        with self._session() as s:
            q = select(DecisionRow).order_by(col(DecisionRow.id))
            if signal_id is not None:
                q = q.where(DecisionRow.signal_id == signal_id)
            return list(s.exec(q))

    def decision_counts(self) -> list[tuple[str, str | None, int]]:
        """(verdict, reason code, decisions) for every pair that occurs."""
        with self._session() as s:
            q = (select(DecisionRow.verdict, col(DecisionRow.reason), func.count())
                 .group_by(DecisionRow.verdict, col(DecisionRow.reason)))
            return [(verdict, reason, n) for verdict, reason, n in s.exec(q)]

    def signal_counts(self) -> dict[str, int]:
        """Signals per strategy."""
        with self._session() as s:
            return dict(s.exec(select(SignalRow.strategy, func.count()).group_by(SignalRow.strategy)).all())

    def signals(self, strategy: str | None = None) -> list[SignalRow]:
        with self._session() as s:
            q = select(SignalRow).order_by(col(SignalRow.id))
            if strategy is not None:
                q = q.where(SignalRow.strategy == strategy)
            return list(s.exec(q))

    def acted_signals(self, since: datetime) -> list[tuple[tuple[str, str, str, str], float, datetime, str]]:
        """Signals created at or after `since` that became orders, oldest first, as
        ((strategy, selection key, side, bookmakers), price, created_at, signal_id): what the
        risk manager restores for DUPLICATE_SIGNAL (bot/risk/checks.py `ApprovalLog`)."""
        with self._session() as s:
            q = (select(SignalRow).where(col(SignalRow.signal_id).in_(select(OrderRow.signal_id)))
                 .where(col(SignalRow.created_at) >= since).order_by(col(SignalRow.id)))
            return [((r.strategy, r.selection, r.side, r.bookmakers), r.price, r.created_at, r.signal_id)
                    for r in s.exec(q) if r.created_at is not None]

    # -- key/value state and the event log -------------------------------------------------

    def get_state(self, key: str) -> dict | None:
        with self._session() as s:
            row = s.get(StateRow, key)
            return None if row is None else dict(row.value)

    def set_state(self, key: str, value: dict) -> None:
        with self._session() as s:
            row = s.get(StateRow, key)
            if row is None:
                s.add(StateRow(key=key, value=_jsonable(value), updated_at=self._now()))
            else:
                row.value = _jsonable(value)
                row.updated_at = self._now()
                s.add(row)
            s.commit()

    def append_event(self, kind: str, payload: dict, request_uuid: str | None = None) -> None:
        """Append to the execution event log (raw wire data is kept as given, made JSON-safe,
        with every configured secret and credential query parameter masked by
        bot.config.secrets.mask: docs/architecture.md, "Invariants > Secrets never leave")."""
        with self._session() as s:
            s.add(
                EventRow(
                    at=self._now(), kind=kind, request_uuid=request_uuid, payload=mask(_jsonable(payload))
                )
            )
            s.commit()

    def events(self, kind: str | None = None, request_uuid: str | None = None) -> list[EventRow]:
        with self._session() as s:
            q = select(EventRow).order_by(col(EventRow.id))
            if kind is not None:
                q = q.where(EventRow.kind == kind)
            if request_uuid is not None:
                q = q.where(EventRow.request_uuid == request_uuid)
            return list(s.exec(q))

    # -- orders ----------------------------------------------------------------------------

    def add_orders(self, rows: Iterable[OrderRow]) -> None:
        """Insert order rows in ONE committed transaction (the INTENT commit before sending).

        Raises:
            sqlalchemy.exc.IntegrityError: a `request_uuid` already exists (nothing is written).
        """
        now = self._now()
        with self._session() as s:
            for row in rows:
                row.created_at = row.created_at or now
                row.updated_at = now
                s.add(row)
            s.commit()

    def get_order(self, request_uuid: str) -> OrderRow | None:
        with self._session() as s:
            return s.exec(select(OrderRow).where(OrderRow.request_uuid == request_uuid)).first()

    def get_order_by_order_id(self, order_id: int) -> OrderRow | None:
        """The order with ABP's `orderId` (set once the venue answered)."""
        with self._session() as s:
            return s.exec(select(OrderRow).where(OrderRow.order_id == order_id)).first()

    def update_order(self, request_uuid: str, **fields: Any) -> OrderRow:
        """Set fields of one order and commit; returns the updated row.

        Raises:
            KeyError: no order with this `request_uuid`.
        """
        with self._session() as s:
            row = s.exec(select(OrderRow).where(OrderRow.request_uuid == request_uuid)).first()
            if row is None:
                raise KeyError(request_uuid)
            for name, value in fields.items():
                setattr(row, name, value)
            row.updated_at = self._now()
            s.add(row)
            s.commit()
            return row

    def open_orders(self) -> list[OrderRow]:
        """The open orders (the one definition, see the module docstring): status not final
        (INTENT, SENT, UNKNOWN, PENDING, PROCESSING, PARTIALLY_FILLED), except PARTIALLY_FILLED
        orders more than `PARTIAL_CLOSED_AFTER` past their expiry: ABP stops filling at
        `expiresAt` (docs/reference/abp.md §8.3), so they can change no more, and start-up
        reconciliation stays bounded on a bot that runs for weeks."""
        cutoff = self._now() - PARTIAL_CLOSED_AFTER
        with self._session() as s:
            q = (
                select(OrderRow)
                .where(col(OrderRow.status).not_in(_FINAL))
                .where(or_(col(OrderRow.status) != OrderStatus.PARTIALLY_FILLED.value,
                           col(OrderRow.expires_at).is_(None), col(OrderRow.expires_at) > cutoff))
                .order_by(col(OrderRow.id))
            )
            return list(s.exec(q))

    def orders_by_uuid(self, request_uuids: Collection[str]) -> dict[str, OrderRow]:
        """The orders with these `request_uuid`s (missing ones are absent from the result)."""
        wanted = sorted(request_uuids)
        found: dict[str, OrderRow] = {}
        with self._session() as s:
            for i in range(0, len(wanted), _IN_CHUNK):
                q = select(OrderRow).where(col(OrderRow.request_uuid).in_(wanted[i:i + _IN_CHUNK]))
                found.update((o.request_uuid, o) for o in s.exec(q))
        return found

    def orders(self, strategy: str | None = None) -> list[OrderRow]:
        with self._session() as s:
            q = select(OrderRow).order_by(col(OrderRow.id))
            if strategy is not None:
                q = q.where(OrderRow.strategy == strategy)
            return list(s.exec(q))

    # -- runs ------------------------------------------------------------------------------

    def add_run(self, row: RunRow) -> None:
        with self._session() as s:
            s.add(row)
            s.commit()

    def update_run(self, run_id: str, **fields: Any) -> None:
        """Set `fields` on the run (e.g. last_event_seq, outcome, ended_at)."""
        with self._session() as s:
            row = s.exec(select(RunRow).where(RunRow.run_id == run_id)).one()
            for name, value in fields.items():
                setattr(row, name, value)
            s.add(row)
            s.commit()

    def runs(self, source: str | None = None) -> list[RunRow]:
        """Runs in start order, optionally of one `source`."""
        with self._session() as s:
            q = select(RunRow).order_by(col(RunRow.id))
            if source is not None:
                q = q.where(RunRow.source == source)
            return list(s.exec(q))

    # -- bets, settlements, balances -------------------------------------------------------

    def upsert_bet(self, bet: BetRow) -> tuple[BetRow, BetRow | None]:
        """Insert or update a bet by `bet_id`; returns (stored row, previous copy or None).

        Fields left None on `bet` (placed_at, settled_at, settlement_amount, venue_*) keep their
        value; a bet without `venue_*` is taken as placed in its `placed_currency`.
        """
        with self._session() as s:
            row = s.exec(select(BetRow).where(BetRow.bet_id == bet.bet_id)).first()
            previous = None if row is None else BetRow.model_validate(row.model_dump())
            if row is None:
                row = bet
            else:
                for name, value in bet.model_dump(exclude={"id"}).items():
                    if value is not None:
                        setattr(row, name, value)
            row.venue_currency = row.venue_currency or row.placed_currency
            if row.venue_currency == row.placed_currency:  # same currency: the venue's amounts are ours
                row.venue_stake = row.placed_stake if row.venue_stake is None else row.venue_stake
                row.venue_amount = row.settlement_amount if row.venue_amount is None else row.venue_amount
            row.updated_at = self._now()
            s.add(row)
            s.commit()
            return row, previous

    def bets(self, request_uuid: str | None = None) -> list[BetRow]:
        with self._session() as s:
            q = select(BetRow).order_by(col(BetRow.bet_id))
            if request_uuid is not None:
                q = q.where(BetRow.request_uuid == request_uuid)
            return list(s.exec(q))

    def open_bets(self) -> list[BetRow]:
        """Bets PENDING, PLACED or CONFIRMED and still UNSETTLED (see OPEN_BET_STATUSES)."""
        with self._session() as s:
            q = (
                select(BetRow)
                .where(col(BetRow.bet_status).in_(OPEN_BET_STATUSES))
                .where(BetRow.settlement_status == SettlementStatus.UNSETTLED.value)
                .order_by(col(BetRow.bet_id))
            )
            return list(s.exec(q))

    def add_settlement(self, row: SettlementRow) -> bool:
        """Store a settlement once per `bet_id`; returns False if it was already stored. Without
        `venue_*` it is taken as settled in its own `currency`."""
        with self._session() as s:
            if s.exec(select(SettlementRow.id).where(SettlementRow.bet_id == row.bet_id)).first():
                return False
            row.venue_currency = row.venue_currency or row.currency
            row.venue_stake = row.stake if row.venue_stake is None else row.venue_stake
            row.venue_amount = row.amount if row.venue_amount is None else row.venue_amount
            s.add(row)
            s.commit()
            return True

    def settlements(self) -> list[SettlementRow]:
        with self._session() as s:
            return list(s.exec(select(SettlementRow).order_by(col(SettlementRow.id))))

    def settled_pnl(self, since: datetime | None = None, strategy: str | None = None) -> Decimal:
        """Sum of settlement PnL (amount - stake) settled at or after `since`, exact Decimal."""
        with self._session() as s:
            q = select(col(SettlementRow.pnl))
            if since is not None:
                q = q.where(col(SettlementRow.at) >= since)
            if strategy is not None:
                q = q.where(SettlementRow.strategy == strategy)
            return sum(s.exec(q), Decimal(0))

    def record_balance(
        self, bookmaker: str, balance: Decimal, currency: str = "USD", username: str = ""
    ) -> None:
        with self._session() as s:
            s.add(
                BalanceRow(
                    bookmaker=bookmaker,
                    username=username,
                    currency=currency,
                    balance=balance,
                    at=self._now(),
                )
            )
            s.commit()

    def balances(self) -> list[BalanceRow]:
        """Latest balance per (bookmaker, username)."""
        with self._session() as s:
            latest = (
                select(func.max(BalanceRow.id))
                .group_by(BalanceRow.bookmaker, BalanceRow.username)
                .scalar_subquery()
            )
            q = select(BalanceRow).where(col(BalanceRow.id).in_(latest)).order_by(col(BalanceRow.id))
            return list(s.exec(q))


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
