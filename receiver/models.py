"""What is stored: inboxes, their expected secrets, captures and per-inbox counts."""

from __future__ import annotations

import json
from datetime import datetime
from urllib.parse import quote

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from .extensions import db

# 64-bit ids on PostgreSQL; SQLite only autoincrements a plain INTEGER primary key.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def _decoded(column: str):
    """A read-only view of a JSON text column, parsed once per object."""

    def getter(self):
        cache = self.__dict__.setdefault("_decoded", {})
        if column not in cache:
            cache[column] = json.loads(getattr(self, column) or "null")
        return cache[column]

    return property(getter)


class Inbox(db.Model):
    __tablename__ = "inbox"
    # SQLite: a deleted inbox's id is never given to a new one (workers cache
    # an inbox's id for a moment; a delivery must not land in another inbox).
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    # Answer mismatched or missing secrettokens with 401 (they are still recorded).
    enforce_secret: Mapped[bool] = mapped_column(Boolean, default=False)
    # None: the app-wide RECEIVER_INBOX_CAPACITY.
    capacity: Mapped[int | None] = mapped_column(Integer)
    # Captures older than this many days are purged; None keeps them.
    retention_days: Mapped[int | None] = mapped_column(Integer)
    # What senders are answered (default: 200 with a small JSON ack).
    response_status: Mapped[int] = mapped_column(Integer, default=200, server_default="200")
    response_content_type: Mapped[str | None] = mapped_column(String(200))
    response_body: Mapped[str | None] = mapped_column(Text)
    response_headers: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")
    response_delay_ms: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # "Fail the first N deliveries with status S, then succeed": N counts down.
    fail_remaining: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    fail_status: Mapped[int] = mapped_column(Integer, default=500, server_default="500")
    cors: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # Every new capture is also sent here (when forwarding is enabled by config).
    forward_url: Mapped[str | None] = mapped_column(Text)
    # Deletes, clears and purges of its captures so far: the live feed tells
    # open pages when it moves (trims at capacity do not move it).
    removals: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ExpectedSecret(db.Model):
    """A secrettoken an inbox accepts, kept only as a keyed hash."""

    __tablename__ = "expected_secret"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    inbox_id: Mapped[int] = mapped_column(ForeignKey("inbox.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(100))
    # When set, the secret only verifies deliveries whose `user` parameter is this.
    user: Mapped[str | None] = mapped_column(String(200))
    digest: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(DateTime)


class Capture(db.Model):
    """One request exactly as it arrived (the secrettoken masked), plus what was read from it."""

    __tablename__ = "capture"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    inbox_id: Mapped[int] = mapped_column(ForeignKey("inbox.id", ondelete="CASCADE"))
    received_at: Mapped[datetime] = mapped_column(DateTime)  # UTC, microseconds
    method: Mapped[str] = mapped_column(String(32))
    path: Mapped[str] = mapped_column(Text)  # full request path
    subpath: Mapped[str] = mapped_column(Text)  # after /hooks/<inbox>/
    query_string: Mapped[bytes] = mapped_column(LargeBinary)
    headers: Mapped[str] = mapped_column(Text)  # JSON list of [name, value]
    body: Mapped[bytes] = mapped_column(LargeBinary)
    content_type: Mapped[str] = mapped_column(Text)
    content_length: Mapped[int] = mapped_column(Integer)
    remote_addr: Mapped[str] = mapped_column(String(64))
    # JSON list of [source, name, value] in the platform's reading order.
    params: Mapped[str] = mapped_column(Text)
    # JSON object: parse notes, multipart part descriptions, findings.
    details: Mapped[str] = mapped_column(Text)
    event_type: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(200))
    user: Mapped[str] = mapped_column(String(200))
    verdict: Mapped[str] = mapped_column(String(16))
    secret_label: Mapped[str | None] = mapped_column(String(100))
    secret_fingerprint: Mapped[str | None] = mapped_column(String(40))
    rejected: Mapped[bool] = mapped_column(Boolean, default=False)
    # The status the sender was answered (custom responses, simulated failures, 401).
    answered_status: Mapped[int] = mapped_column(Integer, default=200, server_default="200")
    finding_count: Mapped[int] = mapped_column(Integer, default=0)
    # Same event, code, timestamp and uniqueid/couponnumber: a likely redelivery.
    dedupe_key: Mapped[str | None] = mapped_column(String(64))
    duplicate_of: Mapped[int | None] = mapped_column(BigId)

    header_list = _decoded("headers")
    param_list = _decoded("params")
    detail = _decoded("details")

    @property
    def raw_path(self) -> str:
        """The path exactly as the request line had it, percent-encoding kept."""
        return self.detail.get("raw_path") or quote(self.path)

    def header(self, name: str) -> str:
        """The first value of a header, by case-insensitive name; "" when absent."""
        name = name.lower()
        return next((value for header, value in self.header_list if header.lower() == name), "")

    __table_args__ = (
        Index("ix_capture_inbox_newest", "inbox_id", "id"),
        Index("ix_capture_inbox_event", "inbox_id", "event_type", "id"),
        Index("ix_capture_inbox_dedupe", "inbox_id", "dedupe_key", "id"),
        # SQLite: never hand out an id again after the newest captures are
        # deleted (pages, API cursors and the live feed follow ids).
        {"sqlite_autoincrement": True},
    )


class RelayAttempt(db.Model):
    """One outgoing request made from a capture: a forward or a replay."""

    __tablename__ = "relay_attempt"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    capture_id: Mapped[int] = mapped_column(
        ForeignKey("capture.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))  # "forward" or "replay"
    target: Mapped[str] = mapped_column(Text)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    started_at: Mapped[datetime] = mapped_column(DateTime)
    status: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    response_headers: Mapped[str] = mapped_column(Text, default="[]")
    response_body: Mapped[bytes] = mapped_column(LargeBinary, default=b"")  # truncated


class ApiToken(db.Model):
    """A bearer token for API clients, kept only as a keyed hash."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    label: Mapped[str] = mapped_column(String(100))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(16))  # the token's first characters
    created_at: Mapped[datetime] = mapped_column(DateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime)


class CaptureCount(db.Model):
    """Captures per inbox, event type and verdict, kept up to date on every write.

    The dashboard's counts read these few rows instead of scanning captures.
    """

    __tablename__ = "capture_count"

    inbox_id: Mapped[int] = mapped_column(
        ForeignKey("inbox.id", ondelete="CASCADE"), primary_key=True
    )
    event_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    verdict: Mapped[str] = mapped_column(String(16), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)


class LoginFailure(db.Model):
    """A failed dashboard login, by client address: counted across every
    worker and app server of the database, and dropped once out of the window."""

    __tablename__ = "login_failure"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(DateTime)
