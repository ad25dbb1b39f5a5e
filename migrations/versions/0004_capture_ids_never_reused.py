"""capture ids are never handed out twice (SQLite AUTOINCREMENT)

SQLite gives a plain INTEGER PRIMARY KEY the highest id in use plus one, so
deleting the newest captures (or clearing an inbox) let the next capture take
an id a page, an API client or the live feed had already seen: a link then
showed another capture, and an open dashboard, which follows ids upward, never
showed the new one. AUTOINCREMENT remembers the highest id ever given (from
this upgrade on: the counter starts at the highest id still stored).
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


def rebuild_sqlite_table(table: str, autoincrement: bool) -> None:
    """Rebuild `table` with or without AUTOINCREMENT (SQLite only), rows, ids,
    indexes and the rows pointing at it kept. Migration 0005 uses it too."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    # Rebuilding drops the old table. With foreign keys on, that would first
    # delete every row pointing at it (relay attempts cascade from a capture). The
    # setting only changes outside a transaction; the rebuild then runs in one
    # of its own, so a failure leaves the old table as it was.
    dbapi = bind.connection.dbapi_connection
    if dbapi.in_transaction:
        dbapi.commit()
    dbapi.execute("PRAGMA foreign_keys=OFF")
    try:
        if dbapi.execute("PRAGMA foreign_keys").fetchone()[0]:
            raise RuntimeError(f"could not turn foreign keys off to rebuild the {table} table")
        # Rows that already pointed nowhere (deleted by hand) are not ours to judge.
        before = set(dbapi.execute("PRAGMA foreign_key_check").fetchall())
        dbapi.execute("BEGIN")
        try:
            op.execute(f"DROP TABLE IF EXISTS _alembic_tmp_{table}")  # an earlier failed run
            with op.batch_alter_table(
                table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
            ):
                pass
            after = set(dbapi.execute("PRAGMA foreign_key_check").fetchall())
            if after - before:
                raise RuntimeError(
                    f"rebuilding {table} broke foreign keys: {sorted(after - before)[:5]}"
                )
        except BaseException:
            dbapi.rollback()
            raise
        dbapi.commit()
    finally:
        dbapi.execute("PRAGMA foreign_keys=ON")


def upgrade():
    rebuild_sqlite_table("capture", autoincrement=True)


def downgrade():
    rebuild_sqlite_table("capture", autoincrement=False)
