"""Error answers: JSON for senders and API clients, a page for people."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time

from flask import Flask, current_app, jsonify, render_template, request
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import (
    HTTPException,
    InternalServerError,
    RequestEntityTooLarge,
    ServiceUnavailable,
)

from . import metrics
from .extensions import db

log = logging.getLogger("receiver")

JSON_PREFIXES = ("/hooks/", "/api/")


def error_response(status: int, code: str, message: str):
    response = jsonify(error={"code": code, "message": message})
    response.status_code = status
    return response


def wants_json() -> bool:
    if request.path.startswith(JSON_PREFIXES):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def _code(exc: HTTPException) -> str:
    return (exc.name or "error").lower().replace(" ", "_")


def handle_http_error(exc: HTTPException):
    if request.path.startswith("/hooks/") and exc.code in (413, 405, 400):
        metrics.rejected(_code(exc))
    if exc.code == 413 and current_app.config.get("MAX_CONTENT_LENGTH"):
        exc = RequestEntityTooLarge(
            f"The body is larger than this server's limit of "
            f"{current_app.config['MAX_CONTENT_LENGTH']:,} bytes (RECEIVER_MAX_BODY_BYTES); "
            "nothing was stored."
        )
    if wants_json():
        response = error_response(exc.code or 500, _code(exc), exc.description or exc.name)
        if exc.code == 405 and exc.valid_methods:
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response
    return render_template("error.html", error=exc), exc.code


def handle_unexpected(exc: Exception):
    # A failed transaction must not poison the next request on this session.
    with contextlib.suppress(Exception):
        db.session.rollback()
    # repr: a path cannot forge a log line with an encoded line break.
    log.exception("unhandled error on %s %r", request.method, request.path)
    return handle_http_error(InternalServerError())


class OutageLog:
    """Log lines for a failure that repeats with every request while the
    database is away: the first at once, then at most one every `seconds`,
    saying how many were left out; the reason's first line only (a driver's
    message may go on with the statement)."""

    def __init__(self, logger: logging.Logger, seconds: float = 5.0):
        self._logger = logger
        self._seconds = seconds
        self._lock = threading.Lock()
        self._last = -seconds
        self._left_out = 0

    def error(self, what: str, reason: object) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._last < self._seconds:
                self._left_out += 1
                return
            left_out, self._left_out, self._last = self._left_out, 0, now
        first_line = str(reason).strip().partition("\n")[0] or type(reason).__name__
        more = f" ({left_out} more like it since the last such line)" if left_out else ""
        self._logger.error("%s: %s%s", what, first_line, more)


def outage_log(name: str) -> OutageLog:
    """The app's OutageLog for one kind of failure."""
    logs = current_app.extensions.setdefault("receiver.outage_logs", {})
    return logs.get(name) or logs.setdefault(name, OutageLog(log))


DATABASE_RETRY_SECONDS = 5
# SQLite raises OperationalError for mistakes in a statement too ("no such
# table"): only these mean its file cannot be used just now.
_SQLITE_AWAY = (
    "unable to open database file",
    "disk i/o error",
    "database is locked",
    "readonly database",
    "database or disk is full",
    "is gone",  # the file moved or deleted under a running server
)


# PostgreSQL SQLSTATEs that mean the server cannot serve just now: its
# connection failed (08), it is out of resources (53), an operator or a crash
# stopped it (57P), or it is a read-only standby (25006).
_POSTGRES_AWAY = ("08", "53", "57P", "25006")


def database_is_away(exc: BaseException) -> bool:
    """The database refused, dropped or timed out the connection, or cannot
    write: nothing wrong with the request, and no bug to hide as a 503."""
    if isinstance(exc, sa_exc.InterfaceError | sa_exc.TimeoutError):
        return True
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    return exc.connection_invalidated or driver_error_is_away(exc.orig)


def driver_error_is_away(error: BaseException) -> bool:
    """`database_is_away` for an exception of the database driver itself."""
    if isinstance(error, sqlite3.Error):
        return isinstance(error, sqlite3.OperationalError) and any(
            sign in str(error).lower() for sign in _SQLITE_AWAY
        )
    state = getattr(error, "sqlstate", None)
    if state:
        return state.startswith(_POSTGRES_AWAY)
    # No SQLSTATE: the server was never reached (refused, timed out, no such
    # host), or the connection is closed.
    return any(c.__name__ in ("OperationalError", "InterfaceError") for c in type(error).__mro__)


def log_database_away(exc: sa_exc.SQLAlchemyError) -> None:
    outage_log("database").error(
        f"database unavailable on {request.method} {request.path}",
        getattr(exc, "orig", None) or exc,
    )


def handle_database_error(exc: sa_exc.SQLAlchemyError):
    """Pages and the API while the database is away: 503 with Retry-After, and
    one log line (the driver's reason, without the statement)."""
    if not database_is_away(exc):
        return handle_unexpected(exc)
    with contextlib.suppress(Exception):
        db.session.rollback()
    log_database_away(exc)
    message = "The database cannot be reached just now; try again in a few seconds."
    if wants_json():
        response = error_response(503, "database_unavailable", message)
    else:
        response = current_app.make_response(
            (render_template("error.html", error=ServiceUnavailable(message)), 503)
        )
    response.headers["Retry-After"] = str(DATABASE_RETRY_SECONDS)
    return response


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(sa_exc.SQLAlchemyError, handle_database_error)
    app.register_error_handler(Exception, handle_unexpected)
