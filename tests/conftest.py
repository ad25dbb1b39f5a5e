"""Fixtures: an app on a fresh database per test, made by the real migrations.

SQLite by default: the schema is migrated once per session into a template
file that each test copies. With TEST_DATABASE_URL set (PostgreSQL), the
schema is migrated once and every test starts from emptied tables.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from receiver import create_app
from receiver.cli import setup_database
from receiver.extensions import db
from receiver.storage import ensure_default_inbox

SECRET_KEY = "test-secret-key-for-hashes"
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
# Every table of the schema (alembic's own aside), emptied between tests on PostgreSQL.
TABLES = tuple(table.name for table in db.metadata.sorted_tables)


def capture_row(inbox_id: int, **columns) -> dict:
    """A minimal capture's columns, as the capture path stores one (for writing
    captures straight into the database); `columns` overrides any of them."""
    row = {
        "inbox_id": inbox_id,
        "received_at": datetime.now(UTC).replace(tzinfo=None),
        "method": "POST",
        "path": "/hooks/default",
        "subpath": "",
        "query_string": b"",
        "headers": "[]",
        "body": b"",
        "content_type": "",
        "content_length": 0,
        "remote_addr": "127.0.0.1",
        "params": "[]",
        "details": '{"notes": {}, "parts": [], "findings": [], "json": false}',
        "event_type": "UNKNOWN",
        "code": "",
        "user": "",
        "verdict": "not_configured",
        "rejected": False,
        "answered_status": 200,
        "finding_count": 0,
    }
    row.update(columns)
    return row


def make_app(database_url: str, **overrides):
    config = {
        "TESTING": True,
        "SECRET_KEY": SECRET_KEY,
        "SQLALCHEMY_DATABASE_URI": database_url,
        # Tests change settings and deliver at once: no cached settings.
        "RECEIVER_SETTINGS_CACHE_SECONDS": 0,
    }
    config.update(overrides)
    return create_app(config)


@pytest.fixture(scope="session")
def template_database(tmp_path_factory):
    if TEST_DATABASE_URL:
        app = make_app(TEST_DATABASE_URL)
        with app.app_context():
            setup_database()
            db.engine.dispose()
        return TEST_DATABASE_URL
    path = tmp_path_factory.mktemp("template") / "receiver.sqlite3"
    app = make_app(f"sqlite:///{path}")
    with app.app_context():
        setup_database()
        db.engine.dispose()
    return path


@pytest.fixture
def database_url(template_database, tmp_path):
    if TEST_DATABASE_URL:
        app = make_app(TEST_DATABASE_URL)
        with app.app_context():
            db.session.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
            db.session.commit()
            setup_database()
            ensure_default_inbox()
            db.engine.dispose()
        return TEST_DATABASE_URL
    path = tmp_path / "receiver.sqlite3"
    shutil.copy(template_database, path)
    return f"sqlite:///{path}"


@pytest.fixture
def app_config():
    """Per-test overrides of the app's settings; parametrize or override to change."""
    return {}


def close_app(app) -> None:
    """Stop an app's threads and close its database connections."""
    for name in ("receiver.writer", "receiver.watcher"):
        if name in app.extensions:
            app.extensions[name].close()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def app(database_url, app_config):
    app = make_app(database_url, **app_config)
    yield app
    close_app(app)


@pytest.fixture
def another_app(database_url):
    """More apps on the test's database, as other gunicorn workers or a
    restarted server would be; each is closed after the test."""
    made = []

    def make(**overrides):
        made.append(make_app(database_url, **overrides))
        return made[-1]

    yield make
    for app in made:
        close_app(app)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def fetch(client):
    """Read a capture back through the API."""

    def fetch(capture_id):
        response = client.get(f"/api/captures/{capture_id}")
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    return fetch


class LiveServer:
    """gunicorn started the way the README starts it, on a free port."""

    def __init__(self, root, workdir, env=None, log_name="server.log"):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.database = workdir / "receiver.sqlite3"
        self.workdir = workdir
        self.log_path = workdir / log_name
        environment = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{self.database}",
            "SECRET_KEY": SECRET_KEY,
            "RECEIVER_BIND": f"127.0.0.1:{self.port}",
            "RECEIVER_STREAM_SECONDS": "20",
            **(env or {}),
        }
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
        self.process = subprocess.Popen(
            [gunicorn, "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=root,
            env=environment,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so kill() reaches the workers
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1):
                    break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("server did not start:\n" + self.log()) from None
                time.sleep(0.1)

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def kill(self):
        """SIGKILL the master and every worker at once, as a crash or power cut would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        if not self._log.closed:
            self._log.close()

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except Exception:
                self.process.kill()
                self.process.wait()
        if not self._log.closed:
            self._log.close()


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    server = LiveServer(ROOT, tmp_path_factory.mktemp("server"))
    yield server
    server.stop()
