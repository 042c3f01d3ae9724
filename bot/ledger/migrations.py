"""Schema versioning for the ledger: a fresh database is created at `SCHEMA_VERSION`; an older
one is brought forward by running each registered step in order, each in its own transaction.

A step is `MIGRATIONS[n]`: it upgrades a database at version n-1 to version n (ALTER TABLE,
back-fills). New tables need no step: `SQLModel.metadata.create_all` adds them. Indexes need no
version either: after the steps, every index the models declare that the file lacks is created
(`ensure_indexes`), so an index added to a model reaches existing ledgers on their next writable
open, and a ledger that only gained indexes still opens read-only with an older bot.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, func, insert, inspect, select, text
from sqlmodel import SQLModel

from bot.ledger.models import SCHEMA_VERSION, SchemaVersionRow

Migration = Callable[[Connection], None]


def _venue_currency_columns(conn: Connection) -> None:
    """Version 2: bets and settlements keep the venue's original amounts beside the bot-currency
    ones (docs/reference/abp.md §11). Existing rows were stored unconverted, so they are filled
    in as same-currency: the venue's amounts are the stored ones, in the bet's `placed_currency`
    (USD for a settlement whose bet is missing)."""
    for table, column, kind in (
        ("bets", "venue_currency", "VARCHAR"), ("bets", "venue_stake", "VARCHAR"),
        ("bets", "venue_amount", "VARCHAR"), ("settlements", "currency", "VARCHAR NOT NULL DEFAULT 'USD'"),
        ("settlements", "venue_currency", "VARCHAR"), ("settlements", "venue_stake", "VARCHAR"),
        ("settlements", "venue_amount", "VARCHAR"),
    ):
        conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {kind}"))
    conn.execute(text("UPDATE bets SET venue_currency = placed_currency, venue_stake = placed_stake, "
                      "venue_amount = settlement_amount"))
    conn.execute(text("UPDATE settlements SET currency = COALESCE((SELECT b.placed_currency FROM bets b "
                      "WHERE b.bet_id = settlements.bet_id), 'USD')"))
    conn.execute(text("UPDATE settlements SET venue_currency = currency, venue_stake = stake, venue_amount = amount"))


def _closing_line_columns(conn: Connection) -> None:
    """Version 3: bets keep their closing line (bot/market/closing.py). Bets placed before it
    have none: their columns stay NULL and the research report counts them as without a close."""
    for column, kind in (("closing_price", "FLOAT"), ("closing_probability", "FLOAT"), ("clv", "FLOAT"),
                         ("closed_at", "DATETIME")):
        conn.execute(text(f"ALTER TABLE bets ADD COLUMN {column} {kind}"))


# version -> step upgrading from version-1.
MIGRATIONS: dict[int, Migration] = {2: _venue_currency_columns, 3: _closing_line_columns}


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
    with engine.begin() as conn:
        ensure_indexes(conn)
    return target


def ensure_indexes(conn: Connection) -> list[str]:
    """Create every index the models declare (bot/ledger/models.py) that the database lacks;
    returns their names. Tables the database lacks are skipped (`create_all` makes them whole)."""
    inspector = inspect(conn)
    tables = set(inspector.get_table_names())
    created = []
    for table in SQLModel.metadata.sorted_tables:
        if table.name not in tables:
            continue
        present = {ix["name"] for ix in inspector.get_indexes(table.name)}
        for index in sorted(table.indexes, key=lambda ix: str(ix.name)):
            if index.name not in present:
                index.create(conn)
                created.append(str(index.name))
    return created


def _stamp(conn: Connection, version: int) -> None:
    conn.execute(
        insert(SchemaVersionRow).values(version=version, applied_at=datetime.now(UTC))
    )
