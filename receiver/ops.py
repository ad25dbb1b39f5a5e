"""Operating endpoints: liveness and readiness for load balancers."""

from __future__ import annotations

import contextlib

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from . import metrics
from .errors import error_response, outage_log
from .extensions import db
from .writer import writer_for

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz():
    """The process is up and answering."""
    return jsonify(ok=True)


@bp.get("/readyz")
def readyz():
    """The database answers and can take captures: ready for traffic."""
    postgres = db.engine.dialect.name == "postgresql"
    try:
        # A standby (after a failover, say) answers but cannot write.
        read_only = db.session.execute(
            text("SELECT pg_is_in_recovery() OR current_setting('transaction_read_only') = 'on'")
            if postgres
            else text("SELECT 0")
        ).scalar()
    except Exception as exc:  # any driver error means "not ready"
        with contextlib.suppress(Exception):
            db.session.rollback()
        # Load balancers ask every few seconds: said once in a while.
        outage_log("readiness").error("readiness check: database unreachable", exc)
        # The details (host, user) go to the log, not to whoever asks.
        return error_response(503, "database_unavailable", "The database is unreachable.")
    problem = writer_for(current_app, db.engine).readiness_problem()
    if read_only:
        problem = "the database is read-only (a standby, or set read-only)"
    if problem is not None:
        outage_log("readiness").error("readiness check", problem)
        return error_response(503, "storage_unavailable", "The database cannot store captures now.")
    return jsonify(ok=True)


@bp.get("/metrics")
def prometheus():
    """Prometheus metrics; guarded like the API (it names inboxes)."""
    return metrics.exposition()
