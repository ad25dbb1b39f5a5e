"""Live feed: a Server-Sent Events stream of "new capture, id N" for one inbox,
and of "captures were removed" when some are deleted, cleared or purged.

Arrivals are read from the database, so a capture stored by any worker (or any
app server sharing the database) reaches every open page; nothing is passed
in one process's memory from writer to reader. Each worker runs one watcher
thread that asks the database for the newest capture id per inbox a few
times a second, and each inbox's count of removals (storage moves it with
every delete, clear and purge), and wakes the streams waiting on those
inboxes; a stream then tells its page, which fetches the new rows itself or
asks which of the rows it shows are gone. Trims at an inbox's capacity are
not announced: they take the oldest rows, far down the list, at every write.

A stream honours Last-Event-ID, `<newest id>.<removals>` (a reconnecting
page is told at once about what arrived or went while it was away), sends
heartbeats, notices a closed tab
within a second, ends after a bounded time (the browser reconnects) or when
its worker is stopping, and the number of streams per worker is capped so
open dashboards never take the threads that deliveries need.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

from flask import Flask
from sqlalchemy import Engine, func, select

from .models import Capture, Inbox

POLL_SECONDS = 0.25
CHECK_SECONDS = 1.0
RETRY_MS = 1000

captures = Capture.__table__
inboxes = Inbox.__table__


class Watcher:
    """One per worker: the newest capture id and the removals count of each
    inbox, kept current."""

    def __init__(self, engine: Engine, poll: float = POLL_SECONDS):
        self._engine = engine
        self._poll = poll
        self._newest: dict[int, int] = {}
        self._seen = 0
        self._removals: dict[int, int] = {}
        self._vanished: set[int] = set()  # inboxes deleted (ids are never reused)
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def newest(self, inbox_id: int, after: int) -> int | None:
        """The newest capture id of an inbox when it is above `after`, straight
        from the database (for catching up when a stream starts)."""
        with self._engine.connect() as conn:
            return conn.execute(
                select(func.max(captures.c.id)).where(
                    captures.c.inbox_id == inbox_id, captures.c.id > after
                )
            ).scalar()

    def removals(self, inbox_id: int) -> int | None:
        """An inbox's removals count straight from the database; None if it is gone."""
        with self._engine.connect() as conn:
            return conn.execute(select(inboxes.c.removals).where(inboxes.c.id == inbox_id)).scalar()

    def wait(
        self, inbox_id: int, after: int, removals: int, timeout: float
    ) -> tuple[int | None, int | None]:
        """Block until the inbox has a capture above `after` or a removals count
        above `removals`, or `timeout` passes: (the newest id if above `after`,
        else None; the removals count, None once the inbox is deleted)."""
        self.start()

        def now() -> int | None:
            if inbox_id in self._vanished:
                return None
            # Counts only grow; this one's last look may be older than the
            # caller's (or before the inbox was made).
            return max(self._removals.get(inbox_id, removals), removals)

        with self._changed:
            self._changed.wait_for(
                lambda: self._newest.get(inbox_id, 0) > after or now() != removals, timeout
            )
            found = self._newest.get(inbox_id, 0)
            count = now()
        return (found if found > after else None), count

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def start(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                with self._engine.connect() as conn:
                    self._seen = conn.execute(select(func.max(captures.c.id))).scalar() or 0
                    self._removals = _removal_counts(conn)
                self._thread = threading.Thread(target=self._run, name="live-watcher", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._poll):
            try:
                with self._engine.connect() as conn:
                    rows = conn.execute(
                        select(captures.c.inbox_id, func.max(captures.c.id))
                        .where(captures.c.id > self._seen)
                        .group_by(captures.c.inbox_id)
                    ).all()
                    removals = _removal_counts(conn)
            except Exception:  # the database is away for a moment; try again
                continue
            if rows or removals != self._removals:
                with self._changed:
                    for inbox_id, newest in rows:
                        self._newest[inbox_id] = max(newest, self._newest.get(inbox_id, 0))
                        self._seen = max(self._seen, newest)
                    self._vanished |= self._removals.keys() - removals.keys()
                    self._removals = removals
                    self._changed.notify_all()


def _removal_counts(conn) -> dict[int, int]:
    return dict(conn.execute(select(inboxes.c.id, inboxes.c.removals)).all())


def watcher_for(app: Flask, engine: Engine) -> Watcher:
    watcher = app.extensions.get("receiver.watcher")
    if watcher is None:
        watcher = app.extensions.setdefault("receiver.watcher", Watcher(engine))
    return watcher


def slots_for(app: Flask) -> StreamSlots:
    slots = app.extensions.get("receiver.stream_slots")
    if slots is None:
        slots = app.extensions.setdefault(
            "receiver.stream_slots", StreamSlots(app.config["RECEIVER_MAX_STREAMS"])
        )
    return slots


class StreamSlots:
    """A per-worker cap on open streams, so deliveries always find a thread."""

    def __init__(self, limit: int):
        self._slots = threading.BoundedSemaphore(limit)

    def take(self) -> bool:
        return self._slots.acquire(blocking=False)

    def give_back(self) -> None:
        self._slots.release()


def client_gone(environ) -> Callable[[], bool]:
    """A check that the browser has closed the connection (gunicorn only)."""
    sock = environ.get("gunicorn.socket")

    def gone() -> bool:
        if sock is None:
            return False
        try:
            return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True

    return gone


# Set by gunicorn.conf.py in each worker, so streams end when it stops.
worker = None


def stopping() -> bool:
    return worker is not None and not worker.alive


def unavailable(reason: str, retry_ms: int) -> str:
    """The whole of a stream that cannot be served now (`database` away, or
    the worker `busy` with open pages): an `unavailable` event, and the
    delay before the browser asks again. Answered 200, so that the browser's
    EventSource reconnects by itself after that delay: a 5xx closes it, and
    the page's script would then wait ever longer (up to a minute) between
    tries, long after the database is back."""
    return f"retry: {retry_ms}\nevent: unavailable\ndata: {reason}\n\n"


def events(
    watcher: Watcher,
    inbox_id: int,
    cursor: int,
    removals: int | None = None,
    *,
    lifetime: float,
    heartbeat: float,
    gone: Callable[[], bool] = lambda: False,
) -> Iterator[str]:
    """SSE text: an event `capture` with the newest id each time captures
    arrive, and an event `removed` with the inbox's removals count each time
    some are deleted (`removals` is the count the page last knew; None: now).

    One event can stand for several captures: the page fetches every row after
    the id it last rendered, so none is missed however the events are grouped.
    Each event's id carries both numbers, for a reconnecting page. When the
    inbox itself is deleted, a last `removed` event ends the stream.
    """
    yield f"retry: {RETRY_MS}\n: connected\n\n"
    started = last_sent = time.monotonic()
    # The watcher first, then the catch-up reads: a change committed between
    # the two is seen by one of them.
    watcher.start()
    found = watcher.newest(inbox_id, cursor)
    count = watcher.removals(inbox_id)
    if removals is None:
        removals = count
    while True:
        if found is not None:
            cursor = found
            last_sent = time.monotonic()
            yield f"id: {cursor}.{removals}\nevent: capture\ndata: {cursor}\n\n"
        if count != removals:
            last_sent = time.monotonic()
            if count is None:  # the inbox is deleted
                yield "event: removed\ndata: inbox\n\n"
                return
            removals = count
            yield f"id: {cursor}.{removals}\nevent: removed\ndata: {removals}\n\n"
        now = time.monotonic()
        if now - started >= lifetime or gone() or stopping():
            return
        if now - last_sent >= heartbeat:
            last_sent = now
            yield ": heartbeat\n\n"
        wait = min(CHECK_SECONDS, max(0.0, started + lifetime - now))
        found, count = watcher.wait(inbox_id, cursor, removals, wait)
