"""failed logins are counted in the database, across workers and servers

Five failed logins from one address in five minutes lock it out for the rest
of them. Each worker counted its own, so two workers let ten through, and
more servers more. A small table, trimmed of what is out of the window on
every failure.

Revision ID: 0007_login_failures
Revises: 0006_inbox_removals
Create Date: 2026-12-02 08:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0007_login_failures"
down_revision = "0006_inbox_removals"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "login_failure",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_login_failure_address", "login_failure", ["address"])


def downgrade():
    op.drop_index("ix_login_failure_address", table_name="login_failure")
    op.drop_table("login_failure")
