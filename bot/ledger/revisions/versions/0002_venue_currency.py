"""Schema version 2: bets and settlements keep the venue's original amounts beside the
bot-currency ones (docs/reference/abp.md §11). Existing rows were stored unconverted, so they are
filled in as same-currency: the venue's amounts are the stored ones, in the bet's
`placed_currency` (USD for a settlement whose bet is missing)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for column in ("venue_currency", "venue_stake", "venue_amount"):
        op.add_column("bets", sa.Column(column, sa.String(), nullable=True))
    op.add_column("settlements", sa.Column("currency", sa.String(), nullable=False, server_default="USD"))
    for column in ("venue_currency", "venue_stake", "venue_amount"):
        op.add_column("settlements", sa.Column(column, sa.String(), nullable=True))
    op.execute("UPDATE bets SET venue_currency = placed_currency, venue_stake = placed_stake, "
               "venue_amount = settlement_amount")
    op.execute("UPDATE settlements SET currency = COALESCE((SELECT b.placed_currency FROM bets b "
               "WHERE b.bet_id = settlements.bet_id), 'USD')")
    op.execute("UPDATE settlements SET venue_currency = currency, venue_stake = stake, venue_amount = amount")


def downgrade() -> None:
    raise NotImplementedError("the ledger is never downgraded: restore a backup instead")
