"""Schema versioning for the ledger: a fresh database is created at `SCHEMA_VERSION`; an older
one is brought forward by running each registered step in order, each in its own transaction.

A step is `MIGRATIONS[n]`: it upgrades a database at version n-1 to version n (ALTER TABLE,
back-fills). New tables need no step: `SQLModel.metadata.create_all` adds them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, func, insert, select

from bot.ledger.models import SCHEMA_VERSION, SchemaVersionRow

Migration = Callable[[Connection], None]

# version -> step upgrading from version-1. Empty while the schema is at its first version.
MIGRATIONS: dict[int, Migration] = {}


class LedgerSchemaError(RuntimeError):
    """The database was written by a newer bot, or a migration step is missing."""


def current_version(conn: Connection) -> int | None:
    """Highest applied schema version, or None for a database never stamped."""
    return conn.execute(select(func.max(SchemaVersionRow.version))).scalar()


def migrate(
    engine: Engine,
    *,
    fresh: bool,
    target: int = SCHEMA_VERSION,
    migrations: Mapping[int, Migration] = MIGRATIONS,
) -> int:
    """Bring the database to `target`; return the version it is at afterwards.

    `fresh` is True when the tables were just created (stamped at `target`, no steps run).

    Raises:
        LedgerSchemaError: the database is newer than `target`, or a step is missing.
    """
    with engine.begin() as conn:
        version = current_version(conn)
        if version is None:
            version = target if fresh else 0
            _stamp(conn, version)
    if version > target:
        raise LedgerSchemaError(
            f"ledger schema version {version} is newer than this bot's {target}; upgrade the bot"
        )
    for step in range(version + 1, target + 1):
        if step not in migrations:
            raise LedgerSchemaError(f"no ledger migration to schema version {step}")
        with engine.begin() as conn:
            migrations[step](conn)
            _stamp(conn, step)
    return target


def _stamp(conn: Connection, version: int) -> None:
    conn.execute(
        insert(SchemaVersionRow).values(version=version, applied_at=datetime.now(UTC))
    )
