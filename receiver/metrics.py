"""Prometheus metrics, correct across gunicorn workers.

Under gunicorn, gunicorn.conf.py sets PROMETHEUS_MULTIPROC_DIR before any
worker starts, so every worker writes its samples to shared files and
/metrics reads them all (prometheus_client's multiprocess mode). Without it
(tests, `flask run`) the process's own registry is used.
"""

from __future__ import annotations

import os
import time

from flask import Flask, Response
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


AREAS = {"hooks": "hooks", "api": "api", "healthz": "ops", "readyz": "ops", "metrics": "ops"}


def area(path: str) -> str:
    """The part of the app a path belongs to, from its first segment: what a
    blueprint's URL prefix would say, known before any routing."""
    first = path[1:].partition("/")[0]
    if first in AREAS:
        return AREAS[first]
    return "other" if first == "static" else "pages"


class Timer:
    """Times every request at the WSGI layer, around everything Flask does
    (one call per request, instead of a before- and a teardown hook)."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        try:
            return self.wsgi_app(environ, start_response)
        finally:
            LATENCY.labels(area(environ.get("PATH_INFO", ""))).observe(
                time.perf_counter() - started
            )


def exposition() -> Response:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    app.wsgi_app = Timer(app.wsgi_app)
