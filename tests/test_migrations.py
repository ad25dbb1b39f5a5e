"""Schema upgrades: an existing database keeps everything it stored."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, TEST_DATABASE_URL, close_app, make_app
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, text

from receiver import inboxes, storage
from receiver.cli import setup_database
from receiver.storage import ensure_default_inbox

# The newest migration: revision ids are their file names.
LATEST = max(path.stem for path in (Path(ROOT) / "migrations" / "versions").glob("0*.py"))


def _at_0003(path, captures: int, setup=None):
    """An app on a database as migration 0003 left it, holding `captures`
    (and what `setup(client)` stores). The app speaks the newest schema, so
    the rows are stored at the head and the schema is then taken down."""
    app = make_app(f"sqlite:///{path}")
    with app.app_context():
        upgrade()
        ensure_default_inbox()
    client = app.test_client()
    for n in range(captures):
        assert (
            client.post("/hooks/default", data={"event": "LEAD_CREATED", "n": n}).status_code == 200
        )
    if setup is not None:
        setup(client)
    with app.app_context():
        downgrade(revision="0003_dedupe_index")
    with sqlite3.connect(path) as con:
        for table in ("capture", "inbox"):
            sql = con.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()
            assert "AUTOINCREMENT" not in sql[0]
    return app, client


def _add_relay_attempt(path, capture_id: int) -> None:
    with sqlite3.connect(path) as con:
        con.execute(
            "INSERT INTO relay_attempt (capture_id, kind, target, attempt, started_at, "
            "response_headers, response_body) VALUES (?, 'replay', 'http://x', 1, "
            "'2026-12-01 00:00:00', '[]', x'')",
            (capture_id,),
        )


def _ids(path) -> list[int]:
    with sqlite3.connect(path) as con:
        return [row[0] for row in con.execute("SELECT id FROM capture ORDER BY id")]


def test_upgrading_sqlite_to_autoincrement_ids_keeps_captures_and_their_relay_log(tmp_path):
    # A database as 0003 left it, with captures and a relay attempt pointing
    # at one; the upgrade rebuilds the capture table (foreign keys on).
    path = tmp_path / "old.sqlite3"
    app, client = _at_0003(path, captures=3)
    _add_relay_attempt(path, 2)
    with sqlite3.connect(path) as con:
        before = con.execute("SELECT id, body FROM capture ORDER BY id").fetchall()
    with app.app_context():
        upgrade()
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT id, body FROM capture ORDER BY id").fetchall() == before
        assert con.execute("SELECT capture_id FROM relay_attempt").fetchall() == [(2,)]
        indexes = {row[1] for row in con.execute("PRAGMA index_list(capture)")}
        assert {"ix_capture_inbox_newest", "ix_capture_inbox_event"} <= indexes
    # The newest capture deleted: its id is not handed out again.
    assert client.delete("/api/captures/3").status_code in (200, 204)
    new_id = client.post("/hooks/default", data={"event": "LEAD_CREATED"}).get_json()["id"]
    assert new_id == 4
    assert _ids(path) == [1, 2, 4]
    # And back down, all the same.
    with app.app_context():
        downgrade(revision="0003_dedupe_index")
    assert _ids(path) == [1, 2, 4]


def test_the_upgrade_leaves_foreign_keys_on_and_tolerates_rows_already_orphaned(tmp_path):
    path = tmp_path / "orphaned.sqlite3"
    app, _client = _at_0003(path, captures=1)
    # A relay attempt whose capture was deleted with foreign keys off (the
    # sqlite3 shell's default): already broken before the upgrade.
    _add_relay_attempt(path, 99)
    with app.app_context():
        upgrade()
        from receiver.extensions import db

        with db.engine.connect() as conn:  # the pooled connection the upgrade used
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    with sqlite3.connect(path) as con:
        tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master")}
        assert not {"_alembic_tmp_capture", "_alembic_tmp_inbox"} & tables
        version = con.execute("SELECT version_num FROM alembic_version").fetchone()[0]
        assert version == LATEST
        for table in ("capture", "inbox"):
            sql = con.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()
            assert "AUTOINCREMENT" in sql[0]


def test_upgrading_sqlite_keeps_inboxes_and_never_gives_a_deleted_inbox_id_again(tmp_path):
    path = tmp_path / "inboxes.sqlite3"
    key = "qrp_live_8f2K9xYz3Lm7Qw1R"

    def newest_inbox(client):
        assert client.post("/api/inboxes", json={"slug": "newest"}).status_code == 201
        secret = {"label": "prod", "secret": key}
        assert client.post("/api/inboxes/newest/secrets", json=secret).status_code == 201
        assert client.post("/hooks/newest", data={"secrettoken": key}).status_code == 200

    app, client = _at_0003(path, captures=2, setup=newest_inbox)
    with sqlite3.connect(path) as con:
        inboxes = con.execute("SELECT id, slug FROM inbox ORDER BY id").fetchall()
        owned = "SELECT inbox_id, count(*) FROM {} GROUP BY inbox_id ORDER BY inbox_id"
        tables = ("capture", "expected_secret")
        before = {table: con.execute(owned.format(table)).fetchall() for table in tables}
    with app.app_context():
        upgrade()
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT id, slug FROM inbox ORDER BY id").fetchall() == inboxes
        for table, rows in before.items():
            assert con.execute(owned.format(table)).fetchall() == rows
        indexes = {row[1] for row in con.execute("PRAGMA index_list(inbox)")}
        assert any("slug" in name or name.startswith("sqlite_autoindex") for name in indexes)
    newest_id = inboxes[-1][0]
    assert client.delete("/api/inboxes/newest").status_code == 204
    assert client.post("/api/inboxes", json={"slug": "next"}).status_code == 201
    with sqlite3.connect(path) as con:
        next_id = con.execute("SELECT id FROM inbox WHERE slug = 'next'").fetchone()[0]
    assert next_id == newest_id + 1
    # The slug stays unique after the rebuild.
    assert client.post("/api/inboxes", json={"slug": "next"}).status_code == 422


def test_downgrading_sqlite_to_the_first_schema_keeps_captures_and_secrets(tmp_path):
    path = tmp_path / "down.sqlite3"

    def secret(client):
        body = {"label": "prod", "secret": "qrp_live_down_0123456789"}
        assert client.post("/api/inboxes/default/secrets", json=body).status_code == 201

    app, _client = _at_0003(path, captures=3, setup=secret)
    owned = ("capture", "expected_secret", "capture_count")
    with sqlite3.connect(path) as con:
        before = {table: con.execute(f"SELECT count(*) FROM {table}").fetchone() for table in owned}
    assert before["capture"] == (3,)
    with app.app_context():
        downgrade(revision="0001_initial")
    with sqlite3.connect(path) as con:
        after = {table: con.execute(f"SELECT count(*) FROM {table}").fetchone() for table in owned}
        version = con.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    assert version == "0001_initial"
    assert after == before


def test_servers_starting_together_on_a_new_database_all_set_it_up(tmp_path):
    """Several app servers started at once on an empty database: one migrates,
    the others wait and find it done (they had raced to create the schema)."""
    admin = None
    if TEST_DATABASE_URL:
        fresh = f"setup_race_{os.getpid()}"
        admin = create_engine(TEST_DATABASE_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {fresh}"))
        url = f"{TEST_DATABASE_URL.rpartition('/')[0]}/{fresh}"
    else:
        url = f"sqlite:///{tmp_path / 'new.sqlite3'}"
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "k"}
    env.pop("TEST_DATABASE_URL", None)
    try:
        starts = [
            subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "wsgi", "setup"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for _ in range(3)
        ]
        outputs = [start.communicate(timeout=120)[0].decode() for start in starts]
        assert [start.returncode for start in starts] == [0, 0, 0], outputs
        engine = create_engine(url)
        with engine.connect() as connection:
            inboxes = connection.execute(text("SELECT slug FROM inbox")).scalars().all()
            version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        engine.dispose()
        assert inboxes == ["default"]
        assert version == LATEST
    finally:
        if admin is not None:
            with admin.connect() as connection:
                connection.execute(text(f"DROP DATABASE IF EXISTS {fresh} WITH (FORCE)"))
            admin.dispose()


def test_a_deleted_default_inbox_stays_deleted_after_a_restart(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.sqlite3'}"
    first = make_app(url)
    with first.app_context():
        setup_database()
        assert storage.find_inbox("default") is not None
        inboxes.remove(storage.find_inbox("default"))
    close_app(first)
    again = make_app(url)
    with again.app_context():
        setup_database()  # as every server start does
        assert storage.find_inbox("default") is None
    close_app(again)
