"""Settings, read from the environment with defaults that suit one machine.

Every setting is documented in the README's "Configuration" table.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

MiB = 1024 * 1024


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise RuntimeError(f"{name} must be a whole number, got {raw!r}") from None


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise RuntimeError(f"{name} must be true or false, got {raw!r}")


def _list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def from_environment(instance_path: str) -> dict:
    """The app's settings from the environment; unset values get the defaults."""
    database_url = os.environ.get("DATABASE_URL", "").strip()
    if not database_url:
        database_url = "sqlite:///" + str(Path(instance_path) / "receiver.sqlite3")
    elif database_url.startswith("postgres://"):
        # Heroku-style URLs name no driver; psycopg 3 is the one installed.
        database_url = "postgresql+psycopg://" + database_url[len("postgres://") :]
    elif database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url[len("postgresql://") :]

    return {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": os.environ.get("SECRET_KEY") or None,
        # Werkzeug enforces this while reading the body, chunked bodies included.
        "MAX_CONTENT_LENGTH": _int("RECEIVER_MAX_BODY_BYTES", 10 * MiB),
        "RECEIVER_INBOX_CAPACITY": _int("RECEIVER_INBOX_CAPACITY", 10_000),
        "RECEIVER_TRUSTED_PROXIES": _int("RECEIVER_TRUSTED_PROXIES", 0),
        "RECEIVER_AUTO_CREATE_INBOXES": _bool("RECEIVER_AUTO_CREATE_INBOXES", False),
        "RECEIVER_STALE_AFTER_SECONDS": _int("RECEIVER_STALE_AFTER_SECONDS", 300),
        "RECEIVER_FUTURE_SKEW_SECONDS": _int("RECEIVER_FUTURE_SKEW_SECONDS", 60),
        # Empty, like every other setting, means the default.
        "RECEIVER_SQLITE_SYNCHRONOUS": (
            os.environ.get("RECEIVER_SQLITE_SYNCHRONOUS", "").strip() or "NORMAL"
        ).upper(),
        "RECEIVER_LOG_CAPTURES": _bool("RECEIVER_LOG_CAPTURES", True),
        # How long a worker may reuse an inbox's settings before reading them again.
        "RECEIVER_SETTINGS_CACHE_SECONDS": float(
            os.environ.get("RECEIVER_SETTINGS_CACHE_SECONDS", "1") or 1
        ),
        "RECEIVER_STREAM_SECONDS": _int("RECEIVER_STREAM_SECONDS", 55),
        "RECEIVER_STREAM_HEARTBEAT_SECONDS": _int("RECEIVER_STREAM_HEARTBEAT_SECONDS", 15),
        # Live streams per worker; keep it below RECEIVER_THREADS so deliveries
        # always find a free thread.
        "RECEIVER_MAX_STREAMS": _int(
            "RECEIVER_MAX_STREAMS", max(1, int(os.environ.get("RECEIVER_THREADS", "64")) - 8)
        ),
        # Dashboard and API login; unset: only loopback clients may use them.
        "RECEIVER_ADMIN_PASSWORD": os.environ.get("RECEIVER_ADMIN_PASSWORD") or None,
        # Server-side requests (replay, forwarding) are off until enabled, and
        # then only to these hosts or networks.
        "RECEIVER_OUTBOUND_ENABLED": _bool("RECEIVER_OUTBOUND_ENABLED", False),
        "RECEIVER_OUTBOUND_ALLOW": _list("RECEIVER_OUTBOUND_ALLOW", ["127.0.0.0/8", "::1"]),
        "RECEIVER_FORWARD_TIMEOUT_SECONDS": _int("RECEIVER_FORWARD_TIMEOUT_SECONDS", 10),
        "RECEIVER_FORWARD_RETRIES": _int("RECEIVER_FORWARD_RETRIES", 4),
    }


def instance_secret_key(instance_path: str) -> str:
    """A random key kept in the instance folder, made on first use.

    Sessions, CSRF tokens and the keyed hashes of expected secrets depend on it,
    so it must survive restarts and be the same for every worker.
    """
    path = Path(instance_path) / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    key = secrets.token_hex(32)
    # Write a private temp file, then link it into place: the link is atomic, so
    # when several workers start at once every one reads the first one's key.
    tmp = path.with_name(f".secret_key.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    try:
        os.link(tmp, path)
    except FileExistsError:
        key = path.read_text().strip()
    finally:
        tmp.unlink()
    return key
