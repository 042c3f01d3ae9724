"""Schema version 3: bets keep their closing line (bot/market/closing.py). Bets placed before it
have none: their columns stay NULL and the research report counts them as without a close."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for column in ("closing_price", "closing_probability", "clv"):
        op.add_column("bets", sa.Column(column, sa.Float(), nullable=True))
    op.add_column("bets", sa.Column("closed_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("the ledger is never downgraded: restore a backup instead")
