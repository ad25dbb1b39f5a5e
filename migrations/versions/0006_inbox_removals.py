"""inboxes count removals, so open dashboards learn of them

Each delete, clear or retention purge of an inbox's captures adds one to
inbox.removals in its own transaction. The live feed watches the number and
tells open pages, which then drop the rows that are gone. A plain column add:
the SQLite table keeps its AUTOINCREMENT (migration 0005).

Revision ID: 0006_inbox_removals
Revises: 0005_inbox_ids_never_reused
Create Date: 2026-12-02 06:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0006_inbox_removals"
down_revision = "0005_inbox_ids_never_reused"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column(
        "inbox", sa.Column("removals", sa.Integer(), server_default="0", nullable=False)
    )


def downgrade():
    # Not batch mode: a rebuilt SQLite table would lose its AUTOINCREMENT.
    op.drop_column("inbox", "removals")
