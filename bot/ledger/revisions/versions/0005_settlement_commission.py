"""Schema version 5: a settlement carries the exchange commission charged on it
(`settlements.commission`, included in its `pnl`; bot/execution/commission.py). Earlier
settlements paid none ("0"). (The index on `orders.fixture` that finds a market's bets comes
from the model, bot/ledger/migrations.py `ensure_indexes`.)"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("settlements", sa.Column("commission", sa.String(), nullable=False, server_default="0"))


def downgrade() -> None:
    raise NotImplementedError("the ledger is never downgraded: restore a backup instead")
