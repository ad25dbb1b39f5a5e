"""Storage's write path for captures: group commit on one connection per process.

A delivery is acknowledged only once its capture is committed. Rather than
one transaction per request, requests queue their rows and whichever request
gets the write lock stores everything queued in one transaction (it is the
"leader"). The others wait on their own job, not on the lock: the leader wakes
every job it committed, and on letting go wakes the first job still queued to
lead the next batch. While one batch commits the next one gathers, so under
load many captures share a commit, and at rest a capture is written at once.
No thread hands its writing to another: the GIL makes such hand-offs slower
than the writes themselves.

On SQLite, the worker processes also take turns through a file lock beside
the database, so a waiting writer wakes the moment the lock is free instead
of sleeping in SQLite's busy handler. On PostgreSQL, writers of every process
and app server take turns through a transaction-level advisory lock, so ids
are handed out in commit order and the live feed, which follows ids, never
misses a capture that commits late.

Statements go straight to the database driver: on this path the ORM's
per-statement work costs more than the database itself (docs/performance.md).
Per batch, in one transaction: each capture is inserted (its likely-duplicate
link found in the same statement; on PostgreSQL the whole batch in one round
trip), the per-inbox counts move by what was added, and inboxes over capacity
drop their oldest captures.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from flask import Flask
from sqlalchemy import Engine

from .errors import OutageLog, driver_error_is_away

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
)
RECEIVED_AT = COLUMNS.index("received_at")
# PostgreSQL advisory lock key shared by every capture writer ("receiver" in ASCII).
CAPTURE_WRITERS_LOCK = int.from_bytes(b"receiver", "big")


class StorageUnavailable(Exception):
    """The capture could not be committed (the database refused or timed out)."""


class _Signal:
    """A wake-up kept until its one waiter takes it: `set()` by any thread,
    `wait()` by the job's own. One lock and no condition, so it costs far less
    than a threading.Event on this path; setting it twice before it is taken
    wakes once."""

    __slots__ = ("_lock",)

    def __init__(self):
        self._lock = threading.Lock()
        self._lock.acquire()

    def set(self) -> None:
        with contextlib.suppress(RuntimeError):  # already set and not yet taken
            self._lock.release()

    def wait(self, timeout: float) -> bool:
        return self._lock.acquire(timeout=timeout)


@dataclass
class _Job:
    row: dict
    capacity: int
    done: bool = False
    capture_id: int | None = None
    error: BaseException | None = None
    # Set when the job is done, or when it is first in line to lead.
    wake: _Signal = field(default_factory=_Signal)


class _Dialect:
    """The few SQL differences between SQLite and PostgreSQL on this path."""

    def __init__(self, name: str):
        self.name = name
        self.postgres = name == "postgresql"
        columns = ", ".join(f'"{c}"' for c in COLUMNS)
        marks = ", ".join("?" for _ in COLUMNS)
        # A likely redelivery links to the first capture with its dedupe key,
        # found in the same statement (NULL when there is none, or no key).
        first_duplicate = "(SELECT min(id) FROM capture WHERE inbox_id = ? AND dedupe_key = ?)"
        insert = (
            f'INSERT INTO capture ({columns}, "duplicate_of") VALUES ({marks}, {first_duplicate})'
        )
        self.insert = self.sql(insert + (" RETURNING id" if self.postgres else ""))
        self.add_count = self.sql(
            "INSERT INTO capture_count (inbox_id, event_type, verdict, n) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (inbox_id, event_type, verdict) DO UPDATE SET n = capture_count.n + "
            "excluded.n"
        )
        self.total = self.sql("SELECT coalesce(sum(n), 0) FROM capture_count WHERE inbox_id = ?")
        self.drop_oldest = self.sql(
            "DELETE FROM capture WHERE inbox_id = ? AND id IN "
            "(SELECT id FROM capture WHERE inbox_id = ? ORDER BY id LIMIT ?) "
            "RETURNING event_type, verdict"
        )
        self.drop_empty_counts = self.sql("DELETE FROM capture_count WHERE inbox_id = ? AND n <= 0")

    def sql(self, text: str) -> str:
        return text.replace("?", "%s") if self.postgres else text

    def values(self, row: dict) -> list:
        """The insert's parameters for one capture."""
        values = [row.get(c) for c in COLUMNS]
        if not self.postgres:
            # The text SQLAlchemy's SQLite DateTime reads and writes.
            values[RECEIVED_AT] = row["received_at"].isoformat(" ", "microseconds")
        values += (row["inbox_id"], row.get("dedupe_key"))
        return values


class CaptureWriter:
    def __init__(self, engine: Engine):
        self._engine = engine
        self._dialect = _Dialect(engine.dialect.name)
        self._pending: list[_Job] = []
        self._pending_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._connection = None
        self._file_lock = _file_lock_for(engine)
        self._committing = False  # set from just before a commit is sent
        self._file = database_file(engine)  # SQLite: the path; None otherwise
        self._opened: tuple[int, int] | None = None  # the file the connection has open
        self._outage = OutageLog(log)

    def save(self, row: dict, capacity: int) -> int:
        """Store one capture; returns its id once the commit has returned."""
        job = _Job(row, capacity)
        with self._pending_lock:
            self._pending.append(job)
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            # A wake-up set while this thread was looking is kept until the
            # wait below takes it, so none can be missed.
            if job.done:
                break
            if self._write_lock.acquire(blocking=False):
                try:
                    self._lead(job)
                finally:
                    self._write_lock.release()
                    self._wake_next()
                break
            # Another request is writing. Its batch may hold this job (then the
            # job is woken done); when it lets go it wakes the first job still
            # waiting, which leads next. Waiters never queue on the write lock
            # itself, so a finished job costs no extra turn at it.
            if not job.wake.wait(max(0.0, deadline - time.monotonic())) and not job.done:
                with self._pending_lock:
                    gave_up = job in self._pending  # not taken by a leader: give up cleanly
                    if gave_up:
                        self._pending.remove(job)
                if gave_up:
                    self._wake_next()  # it may have been woken to lead: pass that on
                    raise StorageUnavailable("the database did not commit in time")
                deadline = time.monotonic() + WAIT_SECONDS  # taken: its batch is committing
        if job.error is not None or job.capture_id is None:
            raise StorageUnavailable(str(job.error or "not stored")) from job.error
        return job.capture_id

    def _lead(self, job: _Job) -> None:
        """Write batches of what is queued until this job is among the written."""
        while not job.done:
            with self._pending_lock:
                batch = self._pending[:BATCH_MAX]
                del self._pending[:BATCH_MAX]
            if not batch:  # pragma: no cover - a job not done is always queued
                return
            self._write(batch)

    def _wake_next(self) -> None:
        with self._pending_lock:
            if self._pending:
                self._pending[0].wake.set()

    def close(self) -> None:
        with self._write_lock:
            self._close_connection()

    def _write(self, batch: list[_Job]) -> None:
        """Store a batch; every job ends done, with an id only if it was committed."""
        for job in batch:
            job.capture_id = None
        try:
            with self._file_lock:
                self._connect()
                try:
                    self._store_on_a_live_connection(batch)
                except self._row_errors:
                    # Something in one capture: store them one by one, so it fails alone.
                    log.exception("a batch of %d captures failed; storing singly", len(batch))
                    self._recover(batch)
                except Exception as exc:
                    if self._database_away(exc):  # said once in a while, not per batch
                        self._outage.error("captures not stored", exc)
                    else:
                        log.exception("storing a batch of %d captures failed", len(batch))
                    self._fail(batch, exc)
                    self._rollback()
        except Exception as exc:  # no lock or no connection to be had
            self._outage.error("captures not stored", exc)
            for job in batch:  # those _recover committed one by one stay stored
                if job.capture_id is None:
                    job.error = job.error or exc
        finally:
            for job in batch:
                job.done = True
                job.wake.set()

    def readiness_problem(self) -> str | None:
        """Why captures cannot be stored now, as far as can be told without
        writing: the file problems below, or a SQLite file or folder this
        process cannot write. None on PostgreSQL (see ops.readyz)."""
        problem = self.file_problem()
        if problem is None and self._file is not None:
            folder = os.path.dirname(os.path.abspath(self._file))
            if not os.access(self._file, os.W_OK) or not os.access(folder, os.W_OK | os.X_OK):
                problem = f"the database file {self._file} or its folder is read-only"
        return problem

    def file_problem(self) -> str | None:
        """Why captures cannot go into the SQLite file at the database's path,
        when it was deleted, moved or replaced while this process had it open
        (an open connection would write on into the old file, and whatever it
        wrote would be lost); None when all is well, and on PostgreSQL."""
        if self._file is None:
            return None
        try:
            found = os.stat(self._file)
        except OSError as exc:
            return f"the database file {self._file} is gone ({exc.strerror}): moved or deleted?"
        if self._opened is not None and (found.st_dev, found.st_ino) != self._opened:
            return (
                f"the database file {self._file} was replaced by another file while open: "
                "restart the server to use it"
            )
        return None

    def _connect(self) -> None:
        """The connection to write on; on SQLite, first the check that the file
        at the path is the one it has open. A file gone is not made anew (SQLite
        would create an empty one), and one replaced is not written to: every
        connection of every worker still has the old one open, with its WAL,
        and a restored file written to that way can be corrupted. The batch
        fails (503) until the file is back, or the server restarted."""
        problem = self.file_problem()
        if problem is not None:
            raise StorageUnavailable(problem)
        if self._connection is None:
            found = os.stat(self._file) if self._file else None
            self._connection = self._engine.raw_connection()
            self._opened = (found.st_dev, found.st_ino) if found else None

    def _close_connection(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None
            self._opened = None

    def _store_on_a_live_connection(self, batch: list[_Job]) -> None:
        """Store a batch; when the connection turns out to have died while it
        was idle (the database restarted, a proxy or failover closed it), store
        it once more on a new one. Only when the loss came before the commit
        was sent: nothing of the batch can have been committed then."""
        self._committing = False
        try:
            self._store(self._connection, batch)
        except Exception as exc:
            if self._committing or not self._lost(exc):
                raise
            log.warning(
                "the database connection was lost (%s); storing %d capture(s) on a new one",
                type(exc).__name__,
                len(batch),
            )
            with contextlib.suppress(Exception):
                self._connection.invalidate(exc)  # the pool must not hand it out again
            self._connection = None
            self._connection = self._engine.raw_connection()
            for job in batch:
                job.capture_id = None
            self._store(self._connection, batch)

    def _lost(self, exc: BaseException) -> bool:
        """Whether the connection died under the batch: the driver says so, or
        it cannot even roll back (psycopg's pipeline, cut off mid-way, reports
        only that it "cannot exit pipeline mode")."""
        if self._engine.dialect.is_disconnect(exc, self._connection.dbapi_connection, None):
            return True
        try:
            self._connection.rollback()
        except Exception:
            return True
        return False

    def _database_away(self, exc: BaseException) -> bool:
        return driver_error_is_away(exc) or self._engine.dialect.is_disconnect(
            exc, getattr(self._connection, "dbapi_connection", None), None
        )

    @property
    def _row_errors(self) -> tuple[type[BaseException], ...]:
        dbapi = self._engine.dialect.dbapi
        return (dbapi.IntegrityError, dbapi.DataError)

    @staticmethod
    def _fail(batch: list[_Job], exc: BaseException) -> None:
        """The whole batch was rolled back: no capture of it is stored."""
        for job in batch:
            job.capture_id = None
            job.error = job.error or exc

    def _recover(self, batch: list[_Job]) -> None:
        for job in batch:
            job.capture_id = None
        for job in batch:
            self._rollback()
            try:
                self._store(self._connection, [job])
            except Exception as exc:
                job.capture_id = None
                job.error = exc
        self._rollback()

    def _rollback(self) -> None:
        if self._connection is None:
            return  # none to be had just now: the next batch asks again
        try:
            self._connection.rollback()
        except Exception:  # the connection itself is broken: the next batch opens another
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None
            self._connection = self._engine.raw_connection()

    def _store(self, connection, batch: list[_Job]) -> None:
        d = self._dialect
        cursor = connection.cursor()
        try:
            if d.postgres:
                # Writers of every process and app server take turns until
                # they commit, so ids are handed out in commit order: a live
                # stream that has seen id N can never miss a lower id that
                # commits later. (SQLite's write lock already does this.)
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", (CAPTURE_WRITERS_LOCK,))
            else:
                # Take the write lock before reading anything, so the reads
                # below can never see a snapshot another writer has moved past.
                cursor.execute("BEGIN IMMEDIATE")
            added: Counter[tuple[int, str, str]] = Counter()
            capacities: dict[int, int] = {}
            if d.postgres:
                # One round trip for the whole batch (psycopg pipelines executemany).
                cursor.executemany(d.insert, [d.values(job.row) for job in batch], returning=True)
                for job in batch:
                    job.capture_id = cursor.fetchone()[0]
                    cursor.nextset()
            else:
                for job in batch:
                    cursor.execute(d.insert, d.values(job.row))
                    job.capture_id = cursor.lastrowid
            for job in batch:
                row = job.row
                added[(row["inbox_id"], row["event_type"], row["verdict"])] += 1
                capacities[row["inbox_id"]] = job.capacity
            for (inbox_id, event_type, verdict), n in added.items():
                cursor.execute(d.add_count, (inbox_id, event_type, verdict, n))
            for inbox_id, capacity in capacities.items():
                self._trim(cursor, inbox_id, capacity)
            self._committing = True
            connection.commit()
            self._committing = False
        finally:
            cursor.close()

    def _trim(self, cursor, inbox_id: int, capacity: int) -> None:
        d = self._dialect
        cursor.execute(d.total, (inbox_id,))
        excess = int(cursor.fetchone()[0]) - capacity
        if excess <= 0:
            return
        cursor.execute(d.drop_oldest, (inbox_id, inbox_id, excess))
        # Counted from what was deleted, so a purge racing this trim cannot skew them.
        for (event_type, verdict), n in Counter(map(tuple, cursor.fetchall())).items():
            cursor.execute(d.add_count, (inbox_id, event_type, verdict, -n))
        cursor.execute(d.drop_empty_counts, (inbox_id,))


class _NoLock:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _FileLock:
    """An exclusive flock on a file beside the SQLite database, across processes."""

    def __init__(self, path: str):
        self._path = path
        self._fd: int | None = None

    def __enter__(self):
        if self._fd is None:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        return False


def database_file(engine: Engine) -> str | None:
    """The SQLite database's path; None for PostgreSQL, in memory, or a
    `file:` URI (whose path is SQLite's to read)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        return None
    return database


def lock_file(database: str) -> str:
    """Beside the database: the writers' lock, and the mark that it was set up."""
    return database + ".write-lock"


def mark_set_up(engine: Engine) -> None:
    """Mark a SQLite database as set up, so that a missing file is known to
    have been moved or deleted, not new (see receiver._tune_database)."""
    database = database_file(engine)
    if database:
        os.close(os.open(lock_file(database), os.O_RDWR | os.O_CREAT, 0o600))


def was_set_up(database: str) -> bool:
    return os.path.exists(lock_file(database))


def _file_lock_for(engine: Engine):
    database = database_file(engine)
    return _FileLock(lock_file(database)) if database else _NoLock()


def writer_for(app: Flask, engine: Engine) -> CaptureWriter:
    writer = app.extensions.get("receiver.writer")
    if writer is None:
        writer = app.extensions.setdefault("receiver.writer", CaptureWriter(engine))
    return writer
