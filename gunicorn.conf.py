"""gunicorn settings: `gunicorn -c gunicorn.conf.py wsgi:app`.

Threaded workers (gthread), because the dashboard's live stream holds a
connection open; a sync worker would be pinned by every open tab. Every value
can be overridden from the environment.
"""

import os

from receiver import wire

bind = os.environ.get("RECEIVER_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("RECEIVER_WORKERS", "2"))
worker_class = os.environ.get("RECEIVER_WORKER_CLASS", "gthread")
threads = int(os.environ.get("RECEIVER_THREADS", "16"))
# Live streams end themselves after RECEIVER_STREAM_SECONDS; this only
# bounds a stuck request.
timeout = int(os.environ.get("RECEIVER_TIMEOUT", "120"))
graceful_timeout = int(os.environ.get("RECEIVER_GRACEFUL_TIMEOUT", "30"))
keepalive = int(os.environ.get("RECEIVER_KEEPALIVE", "5"))
accesslog = os.environ.get("RECEIVER_ACCESS_LOG", "-")
errorlog = "-"
loglevel = os.environ.get("RECEIVER_LOG_LEVEL", "info")
# Without a proxy in front, gunicorn itself must not trust forwarded headers;
# the app applies RECEIVER_TRUSTED_PROXIES.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

wire.install()


def on_starting(server):
    """Upgrade the schema and create the default inbox once, before workers fork."""
    from receiver import create_app
    from receiver.cli import setup_database
    from receiver.extensions import db

    app = create_app()
    with app.app_context():
        setup_database()
        host, _, port = bind.rpartition(":")
        base = f"http://{host}:{port}"
        server.log.info("Capture URL: %s/hooks/default", base)
        server.log.info("Dashboard:   %s/", base)
        # Workers open their own connections; none may inherit the master's.
        db.engine.dispose()
