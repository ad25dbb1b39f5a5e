"""A self-hosted webhook receiver and inspector."""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

from flask import Flask
from sqlalchemy import event, make_url
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from . import config, writer
from .extensions import csrf, db, htmx, migrate

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = str(ROOT / "migrations")


def create_app(test_config: dict | None = None) -> Flask:
    # The SQLite file and secret_key live here; the default is `instance/`
    # beside the code, which a read-only install cannot write.
    instance = os.environ.get("RECEIVER_INSTANCE_PATH", "").strip()
    app = Flask(
        __name__,
        instance_relative_config=True,
        instance_path=os.path.abspath(instance) if instance else None,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_mapping(config.from_environment(app.instance_path))
    if test_config is not None:
        app.config.from_mapping(test_config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = config.instance_secret_key(app.instance_path)
        app.config["RECEIVER_SECRET_KEY_FILE"] = True  # this machine's own, not shared
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", _engine_options(app))
    # Sessions for the dashboard only; CSRF tokens do not expire with a page left open.
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)

    trusted = app.config["RECEIVER_TRUSTED_PROXIES"]
    if trusted > 0:
        # The client address comes from X-Forwarded-For through exactly this many proxies.
        app.wsgi_app = ProxyFix(
            app.wsgi_app, x_for=trusted, x_proto=trusted, x_host=trusted, x_prefix=trusted
        )

    # Ids in URLs are ASCII digits: `\d` would also take `１` or `١٠` as 1 and 10.
    app.url_map.converters["int"] = AsciiIntegerConverter

    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS)
    htmx.init_app(app)
    csrf.init_app(app)
    with app.app_context():
        _tune_database(app)
    _wire_logging()

    from . import access, api, cli, devtools, errors, hooks, metrics, ops, pages

    errors.init_app(app)
    metrics.init_app(app)
    cli.init_app(app)
    devtools.init_app(app)
    access.init_app(app)
    app.register_blueprint(hooks.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(ops.bp)
    return app


class AsciiIntegerConverter(IntegerConverter):
    regex = r"[0-9]+"


# libpq settings for PostgreSQL unless the URL (`?connect_timeout=10`) or, for the
# timeout, PGCONNECT_TIMEOUT gives its own:
# a host that does not answer is given up on in seconds, not after minutes of
# the system's TCP retries, and a peer gone without a word is noticed.
POSTGRESQL_CONNECT_DEFAULTS = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


def _engine_options(app: Flask) -> dict:
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("sqlite"):
        # Wait for the write lock instead of failing at once with "database is locked".
        return {"connect_args": {"timeout": 30}}
    url = make_url(uri)
    if url.get_driver_name() not in ("psycopg", "psycopg2"):  # libpq's keywords only
        return {"pool_pre_ping": True}
    defaults = {
        name: value
        for name, value in POSTGRESQL_CONNECT_DEFAULTS.items()
        if name not in url.query
        and not (name == "connect_timeout" and os.environ.get("PGCONNECT_TIMEOUT"))
    }
    return {"pool_pre_ping": True, "connect_args": defaults}


def _tune_database(app: Flask) -> None:
    engine = db.engine
    if engine.dialect.name != "sqlite":
        return
    synchronous = app.config["RECEIVER_SQLITE_SYNCHRONOUS"]
    if synchronous not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
        raise RuntimeError("RECEIVER_SQLITE_SYNCHRONOUS must be OFF, NORMAL, FULL or EXTRA")

    path = writer.database_file(engine)
    opened = False

    @event.listens_for(engine, "do_connect")
    def _never_anew(_dialect, _record, _cargs, _cparams):
        # SQLite makes a missing file anew, empty: after the database was
        # moved or deleted under a running server, its captures would go
        # there unseen (or fail on a schema-less file), and a worker started
        # meanwhile would make one. Once this process has had the file, or
        # it was set up (see writer.mark_set_up), refused instead.
        if path and not os.path.exists(path) and (opened or writer.was_set_up(path)):
            raise sqlite3.OperationalError(
                f"the database file {path} is gone (moved or deleted?); not made anew. "
                f"To start an empty one, also delete {writer.lock_file(path)}"
            )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record):
        nonlocal opened
        opened = True
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        # For searches with letters beyond ASCII, which SQLite's LIKE folds only in ASCII.
        dbapi_connection.create_function("receiver_fold", 1, _fold, deterministic=True)
        cursor.close()


def _fold(value):
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value.casefold() if isinstance(value, str) else value


def _wire_logging() -> None:
    """Capture log lines go wherever gunicorn's error log goes (stderr by default)."""
    logger = logging.getLogger("receiver")
    gunicorn_error = logging.getLogger("gunicorn.error")
    if gunicorn_error.handlers:
        logger.handlers = gunicorn_error.handlers
        logger.setLevel(logging.INFO)
        logger.propagate = False
    elif logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
