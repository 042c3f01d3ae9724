"""Schema version 4: each order names the bot instance that placed it (`orders.instance`), so
several instances can share one ledger (docs/operations.md, "Several instances"): each recovers,
reconciles and counts its own orders, while the global limits count everyone's. Earlier orders get "" (any
instance's: a ledger had one instance before)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("instance", sa.String(), nullable=False, server_default=""))


def downgrade() -> None:
    raise NotImplementedError("the ledger is never downgraded: restore a backup instead")
