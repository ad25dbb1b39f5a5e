"""What is stored: inboxes, their expected secrets, captures and per-inbox counts."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
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

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    # Answer mismatched or missing secrettokens with 401 (they are still recorded).
    enforce_secret: Mapped[bool] = mapped_column(Boolean, default=False)
    # None: the app-wide RECEIVER_INBOX_CAPACITY.
    capacity: Mapped[int | None] = mapped_column(Integer)


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
    finding_count: Mapped[int] = mapped_column(Integer, default=0)
    # Same event, code, timestamp and uniqueid/couponnumber: a likely redelivery.
    dedupe_key: Mapped[str | None] = mapped_column(String(64))
    duplicate_of: Mapped[int | None] = mapped_column(BigId)

    header_list = _decoded("headers")
    param_list = _decoded("params")
    detail = _decoded("details")

    __table_args__ = (
        Index("ix_capture_inbox_newest", "inbox_id", "id"),
        Index("ix_capture_inbox_event", "inbox_id", "event_type", "id"),
        Index("ix_capture_inbox_dedupe", "inbox_id", "dedupe_key"),
    )


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
