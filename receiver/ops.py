"""Operating endpoints: liveness and readiness for load balancers."""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify
from sqlalchemy import text

from . import metrics
from .errors import error_response
from .extensions import db

log = logging.getLogger("receiver")

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz():
    """The process is up and answering."""
    return jsonify(ok=True)


@bp.get("/readyz")
def readyz():
    """The database answers: ready for traffic."""
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:  # any driver error means "not ready"
        db.session.rollback()
        log.exception("readiness check: database unreachable")
        # The details (host, user) go to the log, not to whoever asks.
        return error_response(503, "database_unavailable", "The database is unreachable.")
    return jsonify(ok=True)


@bp.get("/metrics")
def prometheus():
    """Prometheus metrics; guarded like the API (it names inboxes)."""
    return metrics.exposition()
