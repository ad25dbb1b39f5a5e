"""likely-duplicate lookup index ends with id

The lookup for a capture's first likely duplicate, `min(id)` among captures
with the same inbox and dedupe key, runs with every delivery. With `id` in the
index it reads one index entry. Without it PostgreSQL could cache a plan made
while the table was empty that walks the primary key instead, scanning the
whole inbox whenever no duplicate exists (about 2 ms per delivery at 10,000
captures, growing with the inbox).

Revision ID: 0003_dedupe_index
Revises: 0002_settings
Create Date: 2026-11-27 22:40:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0003_dedupe_index'
down_revision = '0002_settings'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('capture', schema=None) as batch_op:
        batch_op.drop_index('ix_capture_inbox_dedupe')
        batch_op.create_index('ix_capture_inbox_dedupe', ['inbox_id', 'dedupe_key', 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('capture', schema=None) as batch_op:
        batch_op.drop_index('ix_capture_inbox_dedupe')
        batch_op.create_index('ix_capture_inbox_dedupe', ['inbox_id', 'dedupe_key'], unique=False)
