"""Replay and forwarding: a capture sent on to another URL, every attempt recorded.

Both send the capture as it was stored: same method, headers without the hop-by-hop
ones, the exact body bytes. What was stored has the secrettoken masked; a replay can
put a key the user types back in its place, for that one request, and nothing
recorded keeps that key. Both go through outbound.py's rules (SSRF).

Forwarding happens in a background thread per process, so a sender's capture is
answered as fast as without it; failed attempts are retried with growing pauses.
"""

from __future__ import annotations

import base64
import heapq
import itertools
import json
import logging
import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

from flask import Flask, current_app
from sqlalchemy import select
from werkzeug.http import parse_options_header

from . import outbound
from .capture import JSON_TYPES, encode, read_body, recode_text
from .documents import iso
from .extensions import db
from .models import Capture, Inbox, RelayAttempt
from .present import NOT_REPLAYED
from .storage import utcnow
from .verification import Redactor

FORWARD, REPLAY = "forward", "replay"
# Sent with every forwarded request; a capture that arrived with it is not forwarded
# again, so two inboxes forwarding to each other cannot loop.
FORWARDED_HEADER = "X-Receiver-Forwarded"
# Pause before the 2nd, 3rd, ... attempt of a forward; the last repeats if there are more.
BACKOFF_SECONDS = [0.5, 1, 2, 4]
# What verification.mask() leaves where a secrettoken was.
MASK = re.compile(r"\[secrettoken:[0-9a-f]{8}\]")
MASK_BYTES = re.compile(MASK.pattern.encode())
FORM_TYPE = "application/x-www-form-urlencoded"

log = logging.getLogger("receiver.relay")


@dataclass
class Outgoing:
    """The request a capture becomes when it is sent on."""

    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes


def outgoing(
    capture: Capture, target: str, *, with_subpath: bool, secret: str | None = None
) -> Outgoing:
    """The capture as a request to `target` (plus its sub-path when asked), with its query.

    With a `secret`, every masked secrettoken is replaced by it, spelled for where it
    stands: percent-encoded in the URL and form bodies, escaped in JSON, as is elsewhere.
    """
    if secret and any(ord(c) < 32 or ord(c) == 127 for c in secret):
        raise ValueError("The key must not contain control characters.")
    parts = urlsplit(target)
    path = parts.path
    if with_subpath and capture.subpath:
        path = path.rstrip("/") + "/" + _quoted_path(capture.subpath, secret)
    captured_query = capture.query_string.decode("latin-1")
    if secret:
        captured_query = _unmask(captured_query, quote(secret, safe=""))
    query = "&".join(q for q in (parts.query, captured_query) if q)
    headers = [
        (name, _unmask(value, secret) if secret else value)
        for name, value in capture.header_list
        if name.lower() not in NOT_REPLAYED
    ]
    body = _body_with_secret(capture, secret) if secret else capture.body
    url = urlunsplit(parts._replace(path=path, query=query))
    return Outgoing(capture.method, url, headers, body)


def _unmask(text: str, secret: str) -> str:
    # A function, not a template: a key's backslashes are not group references.
    return MASK.sub(lambda _mask: secret, text)


def _quoted_path(subpath: str, secret: str | None) -> str:
    """The stored (decoded) sub-path, percent-encoded again; a key stays one segment.

    `.` and `..` segments are encoded too: a sender's `../../api/...` must not
    climb out of the target URL once a client library resolves dot segments.
    """
    pieces = (_quoted_segments(piece) for piece in MASK.split(subpath))
    if not secret:
        return next(pieces)
    return quote(secret, safe="").join(pieces)


def _quoted_segments(path: str) -> str:
    return "/".join(
        segment.replace(".", "%2E") if segment in (".", "..") else quote(segment, safe="")
        for segment in path.split("/")
    )


def _body_with_secret(capture: Capture, secret: str) -> bytes:
    mimetype = parse_options_header(capture.content_type)[0].lower()
    if mimetype == FORM_TYPE:
        spelled = quote(secret, safe="")
    elif mimetype in JSON_TYPES or mimetype.endswith("+json"):
        spelled = json.dumps(secret)[1:-1]
    else:
        spelled = secret
    encoding = capture.header("content-encoding")
    # A compressed body is unmasked in its decoded form, then compressed again.
    body = read_body(capture.body, capture.content_type, encoding, 20 * len(capture.body) + 1024)
    if body.wide_encoding:  # UTF-16 or UTF-32 JSON, masked as text in its own encoding
        unmasked = recode_text(
            body.decoded, body.wide_encoding, lambda text: MASK.sub(lambda _mask: spelled, text)
        )
        if unmasked is body.decoded:
            return capture.body
    elif not MASK_BYTES.search(body.decoded):
        return capture.body
    else:
        unmasked = MASK_BYTES.sub(lambda _mask: spelled.encode(), body.decoded)
    if body.decoded is capture.body:
        return unmasked
    return encode(unmasked, encoding)


# --- replay ---


def replay(
    capture: Capture, target: str, *, with_subpath: bool = False, secret: str | None = None
) -> RelayAttempt:
    """Send the capture to `target` now and record the attempt; returns it.

    Raises outbound.Refused (nothing sent, nothing recorded) when the target may not be
    reached, ValueError for an unusable key. `secret` replaces the masked secrettoken in
    this request only: the recorded attempt never contains it, even if the target echoes it.
    """
    config = current_app.config
    request = outgoing(capture, target, with_subpath=with_subpath, secret=secret)
    started_at = utcnow()
    outcome, hide = _send(request, config, secret)
    return _record(capture.id, REPLAY, hide.text(request.url), 1, started_at, outcome, hide)


def _send(request: Outgoing, config: Mapping, secret: str | None):
    """Send an outgoing request; with it, the Redactor that hides `secret` in
    whatever is recorded of it (the URL, an echo in the answer)."""
    hide = Redactor(config["SECRET_KEY"], [secret] if secret else [])
    # Read a little past the limit, so a key cut at the limit is still found and masked.
    margin = 12 * len(secret.encode()) if secret else 0
    outcome = outbound.send(
        request.method,
        request.url,
        request.headers,
        request.body,
        config,
        timeout=config["RECEIVER_FORWARD_TIMEOUT_SECONDS"],
        body_limit=outbound.MAX_RESPONSE_BYTES + margin,
    )
    return outcome, hide


def _record(
    capture_id: int,
    kind: str,
    target: str,
    attempt: int,
    started_at,
    outcome: outbound.Outcome,
    hide: Redactor | None = None,
) -> RelayAttempt:
    """Store one attempt; `hide` masks a typed key wherever the target echoed it."""
    hide = hide or Redactor("", [])
    row = RelayAttempt(
        capture_id=capture_id,
        kind=kind,
        target=target,
        attempt=attempt,
        started_at=started_at,
        status=outcome.status,
        latency_ms=outcome.latency_ms,
        error=hide.text(outcome.error) if outcome.error else None,
        response_headers=json.dumps([[hide.text(n), hide.text(v)] for n, v in outcome.headers]),
        response_body=hide.data(outcome.body)[: outbound.MAX_RESPONSE_BYTES],
    )
    db.session.add(row)
    db.session.commit()
    return row


def attempts(capture_id: int, kind: str | None = None) -> list[RelayAttempt]:
    """A capture's forward log and replays, oldest first."""
    query = select(RelayAttempt).where(RelayAttempt.capture_id == capture_id)
    if kind is not None:
        query = query.where(RelayAttempt.kind == kind)
    return list(db.session.execute(query.order_by(RelayAttempt.id)).scalars())


def attempt_document(attempt: RelayAttempt) -> dict:
    """An attempt as JSON, for the API."""
    body = attempt.response_body or b""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    return {
        "id": attempt.id,
        "capture_id": attempt.capture_id,
        "kind": attempt.kind,
        "target": attempt.target,
        "attempt": attempt.attempt,
        "started_at": iso(attempt.started_at),
        "status": attempt.status,
        "latency_ms": attempt.latency_ms,
        "error": attempt.error,
        "response_headers": json.loads(attempt.response_headers or "[]"),
        "response_body_base64": base64.b64encode(body).decode("ascii"),
        "response_body_text": text,
        "response_body_truncated": len(body) >= outbound.MAX_RESPONSE_BYTES,
    }


# --- forwarding ---


def forward_later(app: Flask, capture_id: int, secret: str | None = None) -> None:
    """Forward a just-committed capture to its inbox's forward_url, in the background.

    `secret` is the secrettoken the delivery carried: it rides along in memory
    only, so the receiver forwarded to can check it as the platform's would.
    """
    _forwarder().put((app, capture_id, 1, secret))


def drain(timeout: float = 10.0) -> bool:
    """Wait until every queued forward (retries included) is done; False on timeout."""
    worker = _worker
    return True if worker is None else worker.drain(timeout)


def forward_once(
    app: Flask, capture_id: int, attempt: int, secret: str | None = None
) -> float | None:
    """Make one forwarding attempt; returns the pause before the next, or None when done."""
    with app.app_context():
        try:
            return _forward(capture_id, attempt, app.config, secret)
        finally:
            db.session.remove()


def _forward(
    capture_id: int, attempt: int, config: Mapping, secret: str | None = None
) -> float | None:
    capture = db.session.get(Capture, capture_id)
    if capture is None:  # deleted meanwhile
        return None
    inbox = db.session.get(Inbox, capture.inbox_id)
    if inbox is None or not inbox.forward_url:
        return None
    if attempt == 1 and (_arrived_forwarded(capture) or attempts(capture_id, FORWARD)):
        return None
    request = outgoing(capture, inbox.forward_url, with_subpath=True, secret=secret)
    request.headers.append((FORWARDED_HEADER, "1"))
    started_at = utcnow()
    # The delivery's own key goes out with the forward; none of it is kept.
    hide = Redactor(config["SECRET_KEY"], [secret] if secret else [])
    try:
        outcome, hide = _send(request, config, secret)
        again = _worth_retrying(outcome) and attempt <= config["RECEIVER_FORWARD_RETRIES"]
    except outbound.Refused as refusal:
        outcome, again = outbound.Outcome(None, error=str(refusal)), False
    _record(capture_id, FORWARD, hide.text(request.url), attempt, started_at, outcome, hide)
    return BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS)) - 1] if again else None


def _arrived_forwarded(capture: Capture) -> bool:
    return any(name.lower() == FORWARDED_HEADER.lower() for name, _ in capture.header_list)


def _worth_retrying(outcome: outbound.Outcome) -> bool:
    """No answer, a server error or "too many requests" may pass; anything else won't."""
    return outcome.status is None or outcome.status >= 500 or outcome.status == 429


class _Forwarder:
    """One daemon thread working through forwarding attempts in order of when they are due."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, tuple]] = []
        self._order = itertools.count()
        self._busy = 0
        self._changed = threading.Condition()
        threading.Thread(target=self._run, name="receiver-forwarder", daemon=True).start()

    def put(self, job: tuple, delay: float = 0.0) -> None:
        with self._changed:
            heapq.heappush(self._due, (time.monotonic() + delay, next(self._order), job))
            self._changed.notify_all()

    def drain(self, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: not self._due and not self._busy, timeout)

    def _next(self) -> tuple:
        with self._changed:
            while True:
                wait = self._due[0][0] - time.monotonic() if self._due else None
                if wait is not None and wait <= 0:
                    self._busy += 1
                    return heapq.heappop(self._due)[2]
                self._changed.wait(wait)

    def _run(self) -> None:
        while True:
            app, capture_id, attempt, secret = self._next()
            try:
                pause = forward_once(app, capture_id, attempt, secret)
                if pause is not None:
                    self.put((app, capture_id, attempt + 1, secret), pause)
            except Exception:
                log.exception("Forwarding capture %s failed (attempt %s)", capture_id, attempt)
            finally:
                with self._changed:
                    self._busy -= 1
                    self._changed.notify_all()


_worker: _Forwarder | None = None
_worker_lock = threading.Lock()


def _forwarder() -> _Forwarder:
    global _worker
    with _worker_lock:
        if _worker is None:
            _worker = _Forwarder()
        return _worker


def _after_fork() -> None:
    """A forked worker process has no forwarding thread: it starts its own on first use."""
    global _worker, _worker_lock
    _worker = None
    _worker_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork)
