"""gunicorn settings: `gunicorn -c gunicorn.conf.py wsgi:app`.

Threaded workers (gthread), because the dashboard's live stream holds a
connection open; a sync worker would be pinned by every open tab. Every value
can be overridden from the environment.
"""

import os
import shutil
import tempfile

# Metrics from every worker are collected through files in this folder; it
# must be set before prometheus_client is first imported. A folder given in
# the environment is shared with whatever else is in it: only the metrics'
# own files there are cleared, and the folder itself is kept.
os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR",
    os.path.join(tempfile.gettempdir(), f"receiver-metrics-{os.getpid()}"),
)

import logging

from receiver import wire
from receiver.verification import HideSecretPairs

_OWN_METRICS_DIR = os.environ["PROMETHEUS_MULTIPROC_DIR"] == os.path.join(
    tempfile.gettempdir(), f"receiver-metrics-{os.getpid()}"
)

bind = os.environ.get("RECEIVER_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("RECEIVER_WORKERS", "2"))
worker_class = os.environ.get("RECEIVER_WORKER_CLASS", "gthread")
# Each open dashboard holds a thread for its live stream (at most
# RECEIVER_MAX_STREAMS, default threads - 8, per worker); the rest serve deliveries.
# Streams do not spread evenly over workers: with 64 threads, 50 dashboards fit
# even when one worker takes them all. Idle threads cost little here.
threads = int(os.environ.get("RECEIVER_THREADS", "64"))
# Live streams end themselves after RECEIVER_STREAM_SECONDS; this only
# bounds a stuck request.
timeout = int(os.environ.get("RECEIVER_TIMEOUT", "120"))
graceful_timeout = int(os.environ.get("RECEIVER_GRACEFUL_TIMEOUT", "30"))
keepalive = int(os.environ.get("RECEIVER_KEEPALIVE", "5"))
# A request line up to 8190 bytes (gunicorn's most; its default is 4094): some
# senders put a whole delivery in a GET query string. Longer lines, header
# fields over 8190 bytes and more than 100 headers are refused by gunicorn
# itself (414/431/400, plain text), before anything can be captured.
limit_request_line = int(os.environ.get("RECEIVER_LIMIT_REQUEST_LINE", "8190"))
# "-": stdout; a path: that file; empty: no access log.
accesslog = os.environ.get("RECEIVER_ACCESS_LOG", "-") or None
# One logfmt line per request: easy to read, easy to parse. No query string:
# a delivery's secrettoken may be in it, and logs must never show one.
access_log_format = (
    'at=access remote=%(h)s method=%(m)s path="%(U)s" status=%(s)s '
    'bytes=%(B)s duration_ms=%(M)s capture=%({x-capture-id}o)s agent="%(a)s"'
)
# Values in access log lines are escaped: a request path cannot forge a line.
logger_class = wire.access_logger_class()
errorlog = "-"
loglevel = os.environ.get("RECEIVER_LOG_LEVEL", "info")
# Without a proxy in front, gunicorn itself must not trust forwarded headers;
# the app applies RECEIVER_TRUSTED_PROXIES.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# gunicorn takes SCRIPT_NAME and PATH_INFO from headers of a trusted proxy;
# here a proxy's prefix comes as X-Forwarded-Prefix (RECEIVER_TRUSTED_PROXIES),
# and such headers from a sender are captured like any other.
forwarder_headers = ""
# gunicorn's control socket (for gunicornc) is one path per user by default, so
# a second instance on the machine takes it from the first. Off unless a path
# is given.
control_socket = os.environ.get("RECEIVER_CONTROL_SOCKET", "")
control_socket_disable = not control_socket

wire.install()
# gunicorn logs the request line of a request it refuses itself, query and all.
for _name in ("gunicorn.error", "gunicorn.access"):
    logging.getLogger(_name).addFilter(HideSecretPairs())


def _clear_metrics(folder: str) -> None:
    """Remove the samples of an earlier run (prometheus_client's *.db files)."""
    for name in os.listdir(folder):
        if name.endswith(".db"):
            os.remove(os.path.join(folder, name))


def on_starting(server):
    """Upgrade the schema and create the default inbox once, before workers fork."""
    metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(metrics_dir, exist_ok=True)
    _clear_metrics(metrics_dir)
    from receiver import create_app, storage
    from receiver.cli import setup_database
    from receiver.extensions import db

    app = create_app()
    with app.app_context():
        setup_database()
        host, _, port = bind.rpartition(":")
        base = f"http://{host}:{port}"
        if storage.find_inbox(storage.DEFAULT_INBOX) is not None:
            server.log.info("Capture URL: %s/hooks/%s", base, storage.DEFAULT_INBOX)
        server.log.info("Dashboard:   %s/", base)
        # Workers open their own connections; none may inherit the master's.
        db.engine.dispose()


def post_worker_init(worker):
    """Live streams watch this worker's state, to end when it is stopping."""
    from receiver import live

    live.worker = worker


def worker_exit(server, worker):
    """Forwards still queued get a moment to go out (within the graceful
    timeout); those left are recorded on their captures as not sent."""
    from receiver import relay

    # Within the graceful timeout, part of which the worker's own requests took.
    left = relay.stop(timeout=min(10, server.cfg.graceful_timeout / 3))
    if left:
        server.log.warning("%d forward(s) not sent: the worker stopped", left)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    if _OWN_METRICS_DIR:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    elif os.path.isdir(metrics_dir):
        _clear_metrics(metrics_dir)
