"""Fixtures: an app on a fresh database per test, made by the real migrations.

SQLite by default: the schema is migrated once per session into a template
file that each test copies. With TEST_DATABASE_URL set (PostgreSQL), the
schema is migrated once and every test starts from emptied tables.
"""

from __future__ import annotations

import os
import shutil

import pytest
from sqlalchemy import text

from receiver import create_app
from receiver.cli import setup_database
from receiver.extensions import db

SECRET_KEY = "test-secret-key-for-hashes"
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
TABLES = ("capture_count", "capture", "expected_secret", "inbox")


def make_app(database_url: str, **overrides):
    config = {
        "TESTING": True,
        "SECRET_KEY": SECRET_KEY,
        "SQLALCHEMY_DATABASE_URI": database_url,
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
            db.engine.dispose()
        return TEST_DATABASE_URL
    path = tmp_path / "receiver.sqlite3"
    shutil.copy(template_database, path)
    return f"sqlite:///{path}"


@pytest.fixture
def app_config():
    """Per-test overrides of the app's settings; parametrize or override to change."""
    return {}


@pytest.fixture
def app(database_url, app_config):
    app = make_app(database_url, **app_config)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


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
