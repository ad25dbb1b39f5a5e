"""The group-commit writer on its own: who leads, who waits, and that no waiter is forgotten."""

from __future__ import annotations

import threading
import time
import types
from dataclasses import dataclass, field

from receiver import writer


class _Connection:
    def rollback(self):
        pass

    def close(self):
        pass


def _writer(monkeypatch, store_seconds: float) -> writer.CaptureWriter:
    engine = types.SimpleNamespace(
        dialect=types.SimpleNamespace(
            name="sqlite", dbapi=types.SimpleNamespace(IntegrityError=KeyError, DataError=KeyError)
        ),
        url=types.SimpleNamespace(database=":memory:"),
        raw_connection=_Connection,
    )
    capture_writer = writer.CaptureWriter(engine)
    ids = iter(range(1, 1000))

    def store(_connection, batch):
        time.sleep(store_seconds)  # a commit that takes a while
        for job in batch:
            job.capture_id = next(ids)
            job.row["stored_as"] = job.capture_id

    monkeypatch.setattr(capture_writer, "_store", store)
    return capture_writer


def test_a_waiter_whose_capture_is_committed_while_it_is_woken_is_not_forgotten(monkeypatch):
    # W waits behind leader L. When L lets go it wakes W to lead next, but
    # newcomer Z takes the lock first and commits W's capture while W is
    # paused (by the scheduler) between looking and waiting again. W must
    # return at once, not sit out the timeout for a wake-up that already came.
    class PausedSignal(writer._Signal):
        __slots__ = ("waits",)

        def __init__(self):
            super().__init__()
            self.waits = 0

        def wait(self, timeout):
            self.waits += 1
            w = threading.current_thread().name == "W"
            if w and self.waits == 2:
                # W has looked (not done) and found the lock taken, and is
                # paused before it waits: Z's wake-up comes in between and
                # must still be there when W waits.
                time.sleep(0.15)
            woken = super().wait(timeout)
            if w and self.waits == 1:
                time.sleep(0.05)  # woken to lead, but Z takes the lock first
            return woken

    @dataclass
    class Job(writer._Job):
        wake: writer._Signal = field(default_factory=PausedSignal)

    monkeypatch.setattr(writer, "_Job", Job)
    monkeypatch.setattr(writer, "BATCH_MAX", 1)
    monkeypatch.setattr(writer, "WAIT_SECONDS", 3)
    capture_writer = _writer(monkeypatch, store_seconds=0.1)
    rows = {name: {"name": name} for name in "LWZ"}
    took: dict[str, float] = {}
    answered: dict[str, int] = {}

    def deliver(name: str, after: float) -> None:
        time.sleep(after)
        started = time.monotonic()
        answered[name] = capture_writer.save(rows[name], 10)
        took[name] = time.monotonic() - started

    threads = [
        threading.Thread(target=deliver, args=(name, after), name=name)
        for name, after in (("L", 0), ("W", 0.02), ("Z", 0.12))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert took["W"] < 2, took
    # Each request is answered with the id its own capture was stored under.
    assert {name: rows[name]["stored_as"] for name in rows} == answered
    assert len(set(answered.values())) == 3


def test_many_waiters_each_get_their_own_id(monkeypatch):
    capture_writer = _writer(monkeypatch, store_seconds=0.002)
    rows = [{"n": n} for n in range(200)]
    answered: dict[int, int] = {}

    def deliver(n: int) -> None:
        answered[n] = capture_writer.save(rows[n], 10)

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {n: row["stored_as"] for n, row in enumerate(rows)} == answered
    assert len(set(answered.values())) == 200
