"""Storage: inboxes and captures read back for pages and the API, deletes and
purges that keep the per-inbox counts right, and the inbox settings snapshot
the capture path uses. Captures themselves are written by receiver/writer.py.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Text, cast, delete, func, or_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import load_only

from .extensions import db
from .models import Capture, CaptureCount, ExpectedSecret, Inbox
from .verification import Expected

DEFAULT_INBOX = "default"
# Readable, URL-safe inbox names: `acme-prod`. The pattern is also the forms'
# `pattern` attribute, which browsers read with the v flag: its '-' is escaped.
SLUG_PATTERN = r"[a-z0-9][a-z0-9_\-]{0,63}"
SLUG = re.compile(rf"^{SLUG_PATTERN}$")

captures = Capture.__table__
counts = CaptureCount.__table__
inboxes = Inbox.__table__


def utcnow() -> datetime:
    """Naive UTC with microseconds: what every DateTime column holds."""
    return datetime.now(UTC).replace(tzinfo=None)


MAX_ID = 2**63 - 1  # capture ids are 64-bit on PostgreSQL
MAX_SMALL_ID = 2**31 - 1  # other tables' ids are 32-bit there


def as_id(text: str | None) -> int | None:
    """A capture id or cursor from text a client sent; None unless it is one."""
    if text and text.isascii() and text.isdigit() and int(text) <= MAX_ID:
        return int(text)
    return None


def find_inbox(slug: str) -> Inbox | None:
    if "\x00" in slug:
        return None  # no inbox has one in its name (and PostgreSQL could not look)
    return db.session.execute(select(Inbox).where(Inbox.slug == slug)).scalar_one_or_none()


def create_inbox(slug: str) -> Inbox:
    inbox = Inbox(slug=slug, created_at=utcnow(), enforce_secret=False)
    db.session.add(inbox)
    db.session.commit()
    return inbox


def ensure_default_inbox() -> None:
    """A newcomer has a URL to copy at once."""
    if find_inbox(DEFAULT_INBOX) is None:
        create_inbox(DEFAULT_INBOX)


def expected_secrets(inbox_id: int) -> list[Expected]:
    rows = db.session.execute(
        select(ExpectedSecret.label, ExpectedSecret.digest, ExpectedSecret.user)
        .where(ExpectedSecret.inbox_id == inbox_id)
        .order_by(ExpectedSecret.id)
    )
    return [Expected(label=label, digest=digest, user=user) for label, digest, user in rows]


@dataclass(frozen=True)
class InboxConfig:
    """What the capture path needs of an inbox: a plain snapshot, cheap to keep."""

    id: int
    slug: str
    enforce_secret: bool
    capacity: int | None
    retention_days: int | None
    response_status: int
    response_content_type: str | None
    response_body: str | None
    response_headers: tuple[tuple[str, str], ...]
    response_delay_ms: int
    fail_remaining: int
    fail_status: int
    cors: bool
    forward_url: str | None
    expected: tuple[Expected, ...]


_configs: dict[str, tuple[float, InboxConfig]] = {}
_configs_lock = threading.Lock()


def inbox_config(slug: str, max_age: float) -> InboxConfig | None:
    """An inbox's settings and expected secrets, from this process's cache when
    younger than `max_age` seconds. A change made in this process applies at
    once (see forget_inboxes); one made in another worker within `max_age`."""
    now = time.monotonic()
    cached = _configs.get(slug)
    if cached is not None and now - cached[0] < max_age:
        return cached[1]
    inbox = find_inbox(slug)
    if inbox is None:
        return None
    config = InboxConfig(
        id=inbox.id,
        slug=inbox.slug,
        enforce_secret=inbox.enforce_secret,
        capacity=inbox.capacity,
        retention_days=inbox.retention_days,
        response_status=inbox.response_status,
        response_content_type=inbox.response_content_type,
        response_body=inbox.response_body,
        response_headers=tuple(tuple(pair) for pair in json.loads(inbox.response_headers or "[]")),
        response_delay_ms=inbox.response_delay_ms,
        fail_remaining=inbox.fail_remaining,
        fail_status=inbox.fail_status,
        cors=inbox.cors,
        forward_url=inbox.forward_url,
        expected=tuple(expected_secrets(inbox.id)),
    )
    db.session.rollback()  # end the read; nothing on this path holds a transaction open
    if max_age > 0:
        with _configs_lock:
            _configs[slug] = (now, config)
    return config


def inbox_exists(inbox_id: int) -> bool:
    """Whether the inbox is still there (a cached one may have been deleted since)."""
    found = db.session.execute(select(Inbox.id).where(Inbox.id == inbox_id)).first()
    db.session.rollback()
    return found is not None


def forget_inboxes() -> None:
    """Drop cached inbox settings after a change."""
    with _configs_lock:
        _configs.clear()


def take_failure(inbox_id: int) -> bool:
    """Count down an inbox's "fail the first N" rule; True if this delivery fails."""
    result = db.session.execute(
        update(Inbox)
        .where(Inbox.id == inbox_id, Inbox.fail_remaining > 0)
        .values(fail_remaining=Inbox.fail_remaining - 1)
    )
    db.session.commit()
    return result.rowcount == 1


def _add_count(inbox_id: int, event_type: str, verdict: str, delta: int) -> None:
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        stmt = postgresql.insert(counts)
    elif dialect == "sqlite":
        stmt = sqlite.insert(counts)
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise RuntimeError(f"unsupported database {dialect}")
    stmt = stmt.values(inbox_id=inbox_id, event_type=event_type, verdict=verdict, n=delta)
    stmt = stmt.on_conflict_do_update(
        index_elements=[counts.c.inbox_id, counts.c.event_type, counts.c.verdict],
        set_={"n": counts.c.n + delta},
    )
    db.session.execute(stmt)


def _delete_rows(inbox_id: int, rows) -> int:
    if not rows:
        return 0
    return _delete_where(inbox_id, captures.c.id.in_([row.id for row in rows]))


def _delete_where(inbox_id: int, condition) -> int:
    """Delete captures and move the counts by what was really deleted: a capture
    someone else deleted first (a double click, a purge racing a trim) is not
    counted twice."""
    gone = db.session.execute(
        delete(captures)
        .where(captures.c.inbox_id == inbox_id, condition)
        .returning(captures.c.event_type, captures.c.verdict)
    ).all()
    for (event_type, verdict), n in Counter(tuple(row) for row in gone).items():
        _add_count(inbox_id, event_type, verdict, -n)
    db.session.execute(delete(counts).where(counts.c.inbox_id == inbox_id, counts.c.n <= 0))
    if gone:  # open pages of the inbox drop these rows (see live.py)
        db.session.execute(
            update(inboxes)
            .where(inboxes.c.id == inbox_id)
            .values(removals=inboxes.c.removals + 1)
        )
    return len(gone)


_last_purge: dict[int, float] = {}
PURGE_EVERY_SECONDS = 60


def purge_due(inbox_id: int, retention_days: int) -> None:
    """Apply an inbox's retention now and then as captures arrive (at most once a
    minute per inbox and process), so it holds without cron too."""
    now = time.monotonic()
    if now - _last_purge.get(inbox_id, -PURGE_EVERY_SECONDS) < PURGE_EVERY_SECONDS:
        return
    _last_purge[inbox_id] = now
    purge_before(inbox_id, utcnow() - timedelta(days=retention_days))


def purge_before(inbox_id: int, cutoff: datetime) -> int:
    """Delete an inbox's captures received before `cutoff`, in batches; the count."""
    purged = 0
    while True:
        rows = db.session.execute(
            select(captures.c.id, captures.c.event_type, captures.c.verdict)
            .where(captures.c.inbox_id == inbox_id, captures.c.received_at < cutoff)
            .order_by(captures.c.id)
            .limit(1000)
        ).all()
        if not rows:
            return purged
        purged += _delete_rows(inbox_id, rows)
        db.session.commit()


def delete_capture(capture: Capture) -> None:
    _delete_rows(capture.inbox_id, [capture])
    db.session.commit()


def clear_inbox(inbox_id: int) -> int:
    n = _delete_where(inbox_id, true())
    db.session.commit()
    return n


def count_rows(inbox_id: int) -> list[tuple[str, str, int]]:
    """(event type, verdict, captures) for an inbox, from the kept counts."""
    rows = db.session.execute(
        select(counts.c.event_type, counts.c.verdict, counts.c.n).where(
            counts.c.inbox_id == inbox_id, counts.c.n > 0
        )
    )
    return [(event_type, verdict, int(n)) for event_type, verdict, n in rows]


def inbox_totals() -> dict[int, int]:
    rows = db.session.execute(
        select(counts.c.inbox_id, func.sum(counts.c.n)).group_by(counts.c.inbox_id)
    )
    return {inbox_id: int(n) for inbox_id, n in rows}


PAGE_SIZE = 50
# What a list row shows; bodies and headers stay in the database.
LIST_COLUMNS = (
    "id",
    "received_at",
    "method",
    "event_type",
    "code",
    "user",
    "subpath",
    "verdict",
    "secret_label",
    "content_length",
    "rejected",
    "answered_status",
    "finding_count",
    "duplicate_of",
)


def list_captures(
    inbox_id: int,
    *,
    before: int | None = None,
    after: int | None = None,
    event: str = "",
    verdict: str = "",
    method: str = "",
    q: str = "",
    limit: int = PAGE_SIZE,
    oldest_first: bool = False,
) -> list[Capture]:
    """Newest first, by id cursor (`before` for older pages, `after` for new
    arrivals): never OFFSET, so deep pages cost what the first one does."""
    stmt = (
        select(Capture)
        .options(load_only(*(getattr(Capture, name) for name in LIST_COLUMNS)))
        .where(Capture.inbox_id == inbox_id)
    )
    if before is not None:
        stmt = stmt.where(Capture.id < before)
    if after is not None:
        stmt = stmt.where(Capture.id > after)
    if event:
        stmt = stmt.where(Capture.event_type == event)
    if verdict:
        stmt = stmt.where(Capture.verdict == verdict)
    if method:
        stmt = stmt.where(Capture.method == method.upper())
    if q:
        stmt = stmt.where(_matches(q))
    stmt = stmt.order_by(Capture.id if oldest_first else Capture.id.desc()).limit(limit)
    return list(db.session.execute(stmt).scalars())


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _matches(q: str):
    """Text search over parameters, path and body, case-insensitive.

    Parameters are stored as JSON, and JSON bodies escape quotes, backslashes
    and control characters: text as the user reads it (`say "hi"`) is looked
    for in the parameters in that escaped form only (a bare `"` would match
    every one), and in the body in both forms.
    """
    pattern = _like(q)
    escaped = json.dumps(q, ensure_ascii=False)[1:-1]
    sqlite = db.session.get_bind().dialect.name == "sqlite"
    # bytea has no text operators; 'escape' encoding reads any bytes as text.
    body = cast(Capture.body, Text) if sqlite else func.encode(Capture.body, "escape")

    def like(column, pattern: str):
        if sqlite and not q.isascii():
            # SQLite's LIKE folds ASCII letters only: José is found as josé
            # through Python's case folding (receiver._tune_database). The body
            # goes in as bytes: as text, one that is not UTF-8 cannot reach Python.
            folded = func.receiver_fold(Capture.body if column is body else column)
            return folded.like(pattern.casefold(), escape="\\")
        return column.ilike(pattern, escape="\\")

    matches = [
        like(Capture.params, _like(escaped)),
        like(Capture.path, pattern),
        like(body, pattern),
    ]
    if escaped != q:
        matches.append(like(body, _like(escaped)))
    if sqlite:
        # SQLite's text cast stops at a NUL byte; find text after one too (exact case).
        matches.append(func.instr(Capture.body, q.encode()) > 0)
    elif not q.isascii():
        # 'escape' encoding writes bytes beyond ASCII as \ooo: such text is found
        # in a body by its UTF-8 bytes (exact case), as SQLite's instr does.
        matches.append(Capture.body.op("LIKE")(_like(q).encode()))
    return or_(*matches)


def existing_ids(inbox_id: int, ids: set[int]) -> set[int]:
    """Those of `ids` that are captures of the inbox still."""
    found: set[int] = set()
    asked = sorted(ids)
    for start in range(0, len(asked), 500):
        found.update(
            db.session.execute(
                select(captures.c.id).where(
                    captures.c.inbox_id == inbox_id,
                    captures.c.id.in_(asked[start : start + 500]),
                )
            ).scalars()
        )
    return found


# The Method filter offers the methods seen among this many newest captures.
RECENT_METHODS_OF = 500


def recent_methods(inbox_id: int, last: int = RECENT_METHODS_OF) -> list[str]:
    """The distinct methods of an inbox's newest `last` captures, sorted: read
    through the (inbox_id, id) index, so at a bounded cost however many captures
    the inbox holds (a DISTINCT over all of them would read every one, and an
    index for it would cost every delivery a write)."""
    newest = (
        select(Capture.method)
        .where(Capture.inbox_id == inbox_id)
        .order_by(Capture.id.desc())
        .limit(last)
        .subquery()
    )
    return sorted(db.session.execute(select(newest.c.method).distinct()).scalars())


def newest_id(inbox_id: int) -> int:
    return db.session.execute(
        select(func.coalesce(func.max(captures.c.id), 0)).where(captures.c.inbox_id == inbox_id)
    ).scalar()
