"""Schema version 1: the ledger as the first bot created it (tests/data/ledger/schema_v1.sql).

A new database is created whole at the newest version (`SQLModel.metadata.create_all`, then
stamped), so this revision never runs: it is where older ledgers' histories start.
"""

from __future__ import annotations

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to do: a version-1 ledger already has these tables."""


def downgrade() -> None:
    raise NotImplementedError("the ledger is never downgraded: restore a backup instead")
