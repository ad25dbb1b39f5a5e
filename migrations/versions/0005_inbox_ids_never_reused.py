"""inbox ids are never handed out twice (SQLite AUTOINCREMENT)

Deleting the newest inbox let the next inbox created take its id. Workers keep
an inbox's settings, its id among them, for up to a second, so deliveries to
the deleted inbox that arrived in that second were stored in the new one. With
AUTOINCREMENT an id is never given twice, and such a delivery finds no inbox
(it is answered 404). The table is rebuilt as in 0004, rows, ids, indexes and
the captures and secrets pointing at it kept. PostgreSQL's sequences never go
back; nothing changes there.

Revision ID: 0005_inbox_ids_never_reused
Revises: 0004_capture_ids_never_reused
Create Date: 2026-12-02 03:00:00.000000

"""

import importlib.util
from pathlib import Path

# revision identifiers, used by Alembic.
revision = "0005_inbox_ids_never_reused"
down_revision = "0004_capture_ids_never_reused"
branch_labels = None
depends_on = None


def _rebuild(autoincrement: bool) -> None:
    # The rebuild is 0004's, loaded from its file (revision files are not a package).
    path = Path(__file__).with_name("0004_capture_ids_never_reused.py")
    spec = importlib.util.spec_from_file_location("_migration_0004", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.rebuild_sqlite_table("inbox", autoincrement)


def upgrade():
    _rebuild(autoincrement=True)


def downgrade():
    _rebuild(autoincrement=False)
