"""Schema versions of the ledger, run by Alembic on SQLite and PostgreSQL alike.

Schema version N is Alembic revision "000N" (bot/ledger/revisions/versions/). A new database is
created whole at the newest version (`SQLModel.metadata.create_all`) and stamped; an older one is
upgraded revision by revision, all in one transaction (a failed step leaves it as it was). A
ledger from before Alembic keeps its version in a `schema_version` table: it is stamped at that
revision first, then upgraded.

Indexes need no revision: after the upgrade every index the models declare that the database
lacks is created (`ensure_indexes`), so an index added to a model reaches existing ledgers on
their next writable open, and a ledger that only gained indexes still opens read-only with an
older bot.

On PostgreSQL several instances may start at once: the whole step runs under a transaction-level
advisory lock, so one creates or upgrades and the others then find it done.
"""

from __future__ import annotations

from importlib.resources import files

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, inspect, text
from sqlmodel import SQLModel

from bot.ledger.models import SCHEMA_VERSION

MIGRATE_LOCK = 0x6C65_6467_6D69  # pg advisory lock key serialising schema changes ("ledgmi")


class LedgerSchemaError(RuntimeError):
    """The database was written by a newer bot, or holds tables without a schema version."""


def revision(version: int) -> str:
    """The Alembic revision id of schema version `version` ("0003" for 3)."""
    return f"{version:04d}"


def current_version(conn: Connection) -> int | None:
    """The schema version the database is at, or None for a database never stamped."""
    tables = set(inspect(conn).get_table_names())
    if "alembic_version" in tables:
        found = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        return None if found is None else int(found)
    if "schema_version" in tables:  # a ledger from before Alembic
        legacy = conn.execute(text("SELECT max(version) FROM schema_version")).scalar()
        return None if legacy is None else int(legacy)
    return None


def migrate(engine: Engine) -> int:
    """Create the tables, or bring them to `SCHEMA_VERSION`; returns the version afterwards.

    Raises:
        LedgerSchemaError: the database is newer than this bot, or has the ledger's tables but
            no schema version.
    """
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATE_LOCK})
        tables = set(inspect(conn).get_table_names())
        version = current_version(conn)
        config = _alembic(conn)
        if version is None:
            if "orders" in tables:
                raise LedgerSchemaError("ledger has tables but no schema version: it was not made by this bot")
            SQLModel.metadata.create_all(conn)
            command.stamp(config, revision(SCHEMA_VERSION))
        else:
            if version > SCHEMA_VERSION:
                raise LedgerSchemaError(
                    f"ledger schema version {version} is newer than this bot's {SCHEMA_VERSION}; upgrade the bot")
            if "alembic_version" not in tables:
                command.stamp(config, revision(version))
            command.upgrade(config, revision(SCHEMA_VERSION))
            SQLModel.metadata.create_all(conn)  # tables added since: created whole
        ensure_indexes(conn)
    return SCHEMA_VERSION


def _alembic(conn: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("bot.ledger") / "revisions"))
    config.attributes["connection"] = conn
    return config


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
