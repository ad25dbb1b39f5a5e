"""Storage's write path for captures: group commit on one connection per process.

A delivery is acknowledged only once its capture is committed. Rather than
one transaction per request, request threads hand their rows to a writer
thread that stores everything waiting in one transaction: while it commits
one batch the next one gathers, so under load many captures share a commit,
and at rest a capture is written at once. Statements go straight to the
database driver: on this path the ORM's per-statement work costs more than
the database itself (see docs/performance.md).

Per batch, in one transaction: each capture is inserted (its likely-duplicate
link found first), the per-inbox counts move by what was added, and inboxes
over capacity drop their oldest captures.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from flask import Flask
from sqlalchemy import Engine

log = logging.getLogger("receiver.writer")

BATCH_MAX = 128
WAIT_SECONDS = 60

COLUMNS = (
    "inbox_id",
    "received_at",
    "method",
    "path",
    "subpath",
    "query_string",
    "headers",
    "body",
    "content_type",
    "content_length",
    "remote_addr",
    "params",
    "details",
    "event_type",
    "code",
    "user",
    "verdict",
    "secret_label",
    "secret_fingerprint",
    "rejected",
    "answered_status",
    "finding_count",
    "dedupe_key",
    "duplicate_of",
)


class StorageUnavailable(Exception):
    """The capture could not be committed (the database refused or timed out)."""


@dataclass
class _Job:
    row: dict
    capacity: int
    done: threading.Event = field(default_factory=threading.Event)
    capture_id: int | None = None
    error: BaseException | None = None


class _Dialect:
    """The few SQL differences between SQLite and PostgreSQL on this path."""

    def __init__(self, name: str):
        self.name = name
        self.postgres = name == "postgresql"
        columns = ", ".join(f'"{c}"' for c in COLUMNS)
        marks = ", ".join("?" for _ in COLUMNS)
        insert = f"INSERT INTO capture ({columns}) VALUES ({marks})"
        self.insert = self.sql(insert + (" RETURNING id" if self.postgres else ""))
        self.first_duplicate = self.sql(
            "SELECT min(id) FROM capture WHERE inbox_id = ? AND dedupe_key = ?"
        )
        self.add_count = self.sql(
            "INSERT INTO capture_count (inbox_id, event_type, verdict, n) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (inbox_id, event_type, verdict) DO UPDATE SET n = capture_count.n + "
            "excluded.n"
        )
        self.total = self.sql("SELECT coalesce(sum(n), 0) FROM capture_count WHERE inbox_id = ?")
        self.oldest = self.sql(
            "SELECT id, event_type, verdict FROM capture WHERE inbox_id = ? ORDER BY id LIMIT ?"
        )
        self.drop_empty_counts = self.sql("DELETE FROM capture_count WHERE inbox_id = ? AND n <= 0")

    def sql(self, text: str) -> str:
        return text.replace("?", "%s") if self.postgres else text

    def value(self, name: str, value):
        if isinstance(value, datetime) and not self.postgres:
            # The text SQLAlchemy's SQLite DateTime reads and writes.
            return value.strftime("%Y-%m-%d %H:%M:%S.%f")
        return value


class CaptureWriter:
    def __init__(self, engine: Engine):
        self._engine = engine
        self._dialect = _Dialect(engine.dialect.name)
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def save(self, row: dict, capacity: int) -> int:
        """Store one capture; returns its id once the commit has returned."""
        job = _Job(row, capacity)
        self._start()
        self._queue.put(job)
        if not job.done.wait(WAIT_SECONDS):
            raise StorageUnavailable("the database did not commit in time")
        if job.error is not None:
            raise StorageUnavailable(str(job.error)) from job.error
        return job.capture_id

    def close(self) -> None:
        with self._lock:
            if self._thread is not None:
                self._queue.put(None)
                self._thread.join(timeout=10)
                self._thread = None

    def _start(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                # Started on first use, so in each gunicorn worker after its fork.
                self._thread = threading.Thread(
                    target=self._run, name="capture-writer", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        connection = None
        while True:
            job = self._queue.get()
            if job is None:
                break
            batch = [job]
            while len(batch) < BATCH_MAX:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(more)
            try:
                if connection is None:
                    connection = self._engine.raw_connection()
                self._store(connection, batch)
            except Exception:
                log.exception("storing a batch of %d captures failed", len(batch))
                connection = self._recover(connection, batch)
            for item in batch:
                item.done.set()
        if connection is not None:
            connection.close()

    def _recover(self, connection, batch: list[_Job]):
        """After a failed batch, store its captures one by one, so one bad
        capture (or a passing lock timeout) fails only itself."""
        try:
            connection.rollback()
        except Exception:
            connection.close()
            connection = self._engine.raw_connection()
        for item in batch:
            try:
                self._store(connection, [item])
            except Exception as exc:
                item.error = exc
                item.capture_id = None
                try:
                    connection.rollback()
                except Exception:
                    connection.close()
                    connection = self._engine.raw_connection()
        return connection

    def _store(self, connection, batch: list[_Job]) -> None:
        d = self._dialect
        cursor = connection.cursor()
        try:
            if not d.postgres:
                # Take the write lock before reading anything, so the reads
                # below can never see a snapshot another writer has moved past.
                cursor.execute("BEGIN IMMEDIATE")
            added: Counter[tuple[int, str, str]] = Counter()
            capacities: dict[int, int] = {}
            for job in batch:
                row = job.row
                if row.get("dedupe_key"):
                    cursor.execute(d.first_duplicate, (row["inbox_id"], row["dedupe_key"]))
                    row["duplicate_of"] = cursor.fetchone()[0]
                cursor.execute(d.insert, [d.value(c, row.get(c)) for c in COLUMNS])
                job.capture_id = cursor.fetchone()[0] if d.postgres else cursor.lastrowid
                added[(row["inbox_id"], row["event_type"], row["verdict"])] += 1
                capacities[row["inbox_id"]] = job.capacity
            for (inbox_id, event_type, verdict), n in added.items():
                cursor.execute(d.add_count, (inbox_id, event_type, verdict, n))
            for inbox_id, capacity in capacities.items():
                self._trim(cursor, inbox_id, capacity)
            connection.commit()
        finally:
            cursor.close()

    def _trim(self, cursor, inbox_id: int, capacity: int) -> None:
        d = self._dialect
        cursor.execute(d.total, (inbox_id,))
        excess = int(cursor.fetchone()[0]) - capacity
        if excess <= 0:
            return
        cursor.execute(d.oldest, (inbox_id, excess))
        oldest = cursor.fetchall()
        ids = [row[0] for row in oldest]
        marks = ", ".join("?" for _ in ids)
        cursor.execute(d.sql(f"DELETE FROM capture WHERE id IN ({marks})"), ids)
        for (event_type, verdict), n in Counter((r[1], r[2]) for r in oldest).items():
            cursor.execute(d.add_count, (inbox_id, event_type, verdict, -n))
        cursor.execute(d.drop_empty_counts, (inbox_id,))


def writer_for(app: Flask, engine: Engine) -> CaptureWriter:
    writer = app.extensions.get("receiver.writer")
    if writer is None:
        writer = app.extensions.setdefault("receiver.writer", CaptureWriter(engine))
    return writer
