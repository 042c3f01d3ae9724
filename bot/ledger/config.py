"""Config of where the ledger lives (`ledger:` in config.yaml).

Unset, the ledger is the SQLite file `<state_dir>/bot.db`, one instance's. `url` selects a
database instead: `postgresql+psycopg://user:password@host:5432/dbname` for a ledger several bot
instances share, with one set of global limits (bot/risk/shared.py; docs/operations.md,
"Several instances"). The URL may carry a password, so it is a secret (env `BOT_LEDGER__URL`):
masked in every log line, message and event.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_core import PydanticCustomError

from bot.config.base import Section

_SCHEMES = ("postgresql+psycopg", "sqlite")


class LedgerConfig(Section):
    url: SecretStr | None = Field(
        None, description="database URL: postgresql+psycopg://user:password@host:5432/dbname (shared by "
        "several instances) or sqlite:///path/to/bot.db; unset = <state_dir>/bot.db")

    @field_validator("url")
    @classmethod
    def _known_database(cls, url: SecretStr | None) -> SecretStr | None:
        if url is None or not url.get_secret_value().strip():
            return None
        from sqlalchemy.engine import make_url  # here: reading the config needs no SQLAlchemy otherwise
        from sqlalchemy.exc import ArgumentError

        value = url.get_secret_value().strip()
        if value.startswith("postgresql://"):  # the usual spelling: psycopg 3 is the driver
            value = "postgresql+psycopg://" + value.removeprefix("postgresql://")
        try:
            parsed = make_url(value)
        except ArgumentError:
            raise PydanticCustomError("url", "not a database URL; write postgresql+psycopg://user:password@host:5432/"
                                      "dbname or sqlite:///path/to/bot.db") from None
        if parsed.drivername not in _SCHEMES:
            raise PydanticCustomError("url", "{driver} is not supported; use postgresql+psycopg:// or sqlite:///",
                                      {"driver": parsed.drivername})
        if parsed.drivername == "sqlite" and not parsed.database:
            raise PydanticCustomError("url", "sqlite:/// needs a file path (sqlite:///state/bot.db)")
        return SecretStr(value)
