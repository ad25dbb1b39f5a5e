"""capture ids are never handed out twice (SQLite AUTOINCREMENT)

SQLite gives a plain INTEGER PRIMARY KEY the highest id in use plus one, so
deleting the newest captures (or clearing an inbox) let the next capture take
an id a page, an API client or the live feed had already seen: a link then
showed another capture, and an open dashboard, which follows ids upward, never
showed the new one. AUTOINCREMENT remembers the highest id ever given.
SQLite cannot add it to a table in place: the table is rebuilt, rows, ids
and indexes kept. PostgreSQL's sequences never go back; nothing changes there.

Revision ID: 0004_capture_ids_never_reused
Revises: 0003_dedupe_index
Create Date: 2026-12-01 21:10:00.000000

"""

from alembic import op


# revision identifiers, used by Alembic.
revision = "0004_capture_ids_never_reused"
down_revision = "0003_dedupe_index"
branch_labels = None
depends_on = None


def _rebuild_capture(autoincrement: bool) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    # Rebuilding drops the old table. With foreign keys on, that would first
    # delete every row pointing at a capture (relay attempts cascade); the
    # setting only changes outside a transaction.
    dbapi = bind.connection.dbapi_connection
    if dbapi.in_transaction:
        dbapi.commit()
    op.execute("PRAGMA foreign_keys=OFF")
    if op.get_bind().exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError("could not turn foreign keys off to rebuild the capture table")
    with op.batch_alter_table(
        "capture", recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
    ):
        pass
    problems = op.get_bind().exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if problems:
        raise RuntimeError(f"foreign key problems after rebuilding capture: {problems[:5]}")


def upgrade():
    _rebuild_capture(autoincrement=True)


def downgrade():
    _rebuild_capture(autoincrement=False)
