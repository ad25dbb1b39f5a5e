"""Prometheus metrics, correct across gunicorn workers.

Under gunicorn, gunicorn.conf.py sets PROMETHEUS_MULTIPROC_DIR before any
worker starts, so every worker writes its samples to shared files and
/metrics reads them all (prometheus_client's multiprocess mode). Without it
(tests, `flask run`) the process's own registry is used.
"""

from __future__ import annotations

import os
import time

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from . import catalog

CAPTURES = Counter(
    "receiver_captures_total",
    "Captures stored, by inbox, event type and secret verdict.",
    ["inbox", "event_type", "verdict"],
)
REJECTED = Counter(
    "receiver_rejected_requests_total",
    "Requests to capture URLs answered with an error, by reason.",
    ["reason"],
)
LATENCY = Histogram(
    "receiver_request_seconds",
    "Time to answer a request, by part of the app.",
    ["area"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)


def event_label(event_type: str) -> str:
    """Senders name event types freely; only known ones become label values,
    so a sender cannot grow the metrics without bound."""
    if event_type in catalog.EVENTS or event_type == catalog.UNKNOWN:
        return event_type
    return "other"


def captured(inbox: str, event_type: str, verdict: str) -> None:
    CAPTURES.labels(inbox, event_label(event_type), verdict).inc()


def rejected(reason: str) -> None:
    REJECTED.labels(reason).inc()


def _area() -> str:
    blueprint = request.blueprint or ""
    return blueprint if blueprint in ("hooks", "api", "pages", "ops") else "other"


def exposition() -> Response:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    @app.before_request
    def _start_clock():
        g.metrics_started = time.perf_counter()

    @app.teardown_request
    def _observe(_exc):
        started = g.pop("metrics_started", None)
        if started is not None:
            LATENCY.labels(_area()).observe(time.perf_counter() - started)
