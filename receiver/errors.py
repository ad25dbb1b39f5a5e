"""Error answers: JSON for senders and API clients, a page for people."""

from __future__ import annotations

import logging

from flask import Flask, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError, RequestEntityTooLarge

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
    db.session.rollback()
    log.exception("unhandled error on %s %s", request.method, request.path)
    return handle_http_error(InternalServerError())


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(Exception, handle_unexpected)
