"""The intent commit on a SQLite ledger: the order rows' INSERT, prepared once, run on the raw
`sqlite3` connection in one transaction (docs/architecture.md, "Ledger writes and the hot path").

It is the one write between a signal and its placement request, so it skips what the ORM session
and Core execution cost per call (~0.7 ms of the ~1.2 ms an intent commit took on this project's
machine, bench/tick_to_order.py): no session, no statement compiled or looked up in a cache. The
values are converted by the columns' own SQLAlchemy bind processors, so a row stores exactly what
the Core INSERT (`Ledger` on PostgreSQL) stores, and a failure surfaces as the same
`sqlalchemy.exc` error.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError


class IntentInsert:
    """INSERT of whole rows of `table` (every column but the primary key) for sqlite3.

    `commit(conn, rows)` takes model instances whose attribute names are the column names
    (SQLModel's `OrderRow`)."""

    def __init__(self, table: Table, dialect: Dialect) -> None:
        columns = [c for c in table.columns if not c.primary_key]
        self.names = tuple(c.name for c in columns)
        quoted = ", ".join(f'"{n}"' for n in self.names)
        self.sql = f'INSERT INTO "{table.name}" ({quoted}) VALUES ({", ".join("?" * len(columns))})'
        processors: list[tuple[int, Callable[[Any], Any]]] = []
        for i, column in enumerate(columns):
            process = column.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                processors.append((i, process))
        self._processors = tuple(processors)

    def params(self, row: object) -> list[Any]:
        """The row's values in column order, as the database stores them."""
        values = [getattr(row, name) for name in self.names]
        for i, process in self._processors:
            values[i] = process(values[i])
        return values

    def commit(self, conn: sqlite3.Connection, rows: Sequence[object], *, durable: bool) -> None:
        """Insert `rows` and commit, fsync'd when `durable` (synchronous=FULL for this commit;
        the connection runs NORMAL otherwise: bot/ledger/store.py). Nothing is written on error.

        Raises:
            sqlalchemy.exc.IntegrityError: a unique column (request_uuid) already holds a value.
            sqlalchemy.exc.OperationalError: the database cannot write (locked, read-only, full).
            sqlalchemy.exc.DBAPIError: any other error of sqlite3, wrapped as SQLAlchemy does.
        """
        params = [self.params(row) for row in rows]
        if durable:
            conn.execute("PRAGMA synchronous=FULL")
        try:
            conn.executemany(self.sql, params)  # the module's implicit BEGIN makes one transaction
            conn.commit()
        except sqlite3.Error as exc:
            conn.rollback()
            raise DBAPIError.instance(self.sql, params, exc, sqlite3.Error) from exc
        finally:
            if durable:
                conn.execute("PRAGMA synchronous=NORMAL")
