"""Live feed: a Server-Sent Events stream of "new capture, id N" for one inbox.

The stream reads a database cursor, so a capture stored by any worker (or any
app server sharing the database) reaches every open page; nothing is kept in
one process's memory. It honours Last-Event-ID, so a reconnecting page is told
at once about what arrived while it was away, sends heartbeats so proxies keep
the connection, and ends after a bounded time; the browser reconnects.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from sqlalchemy import Engine, func, select

from .models import Capture

POLL_SECONDS = 0.25
RETRY_MS = 1000

captures = Capture.__table__


def newest(engine: Engine, inbox_id: int, after: int) -> int | None:
    with engine.connect() as conn:
        return conn.execute(
            select(func.max(captures.c.id)).where(
                captures.c.inbox_id == inbox_id, captures.c.id > after
            )
        ).scalar()


def events(
    engine: Engine,
    inbox_id: int,
    cursor: int,
    *,
    lifetime: float,
    heartbeat: float,
    poll: float = POLL_SECONDS,
) -> Iterator[str]:
    """SSE text: an event `capture` with the newest id each time captures arrive.

    One event can stand for several captures: the page fetches every row after
    the id it last rendered, so none is missed however the events are grouped.
    """
    yield f"retry: {RETRY_MS}\n: connected\n\n"
    started = last_sent = time.monotonic()
    while True:
        now = time.monotonic()
        if now - started >= lifetime:
            return
        found = newest(engine, inbox_id, cursor)
        if found is not None:
            cursor = found
            last_sent = now
            yield f"id: {cursor}\nevent: capture\ndata: {cursor}\n\n"
        elif now - last_sent >= heartbeat:
            last_sent = now
            yield ": heartbeat\n\n"
        time.sleep(poll)
