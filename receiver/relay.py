"""Replay and forwarding: a capture sent on to another URL, every attempt recorded.

A replay sends the capture as it was stored: same method, headers without the
hop-by-hop ones, the exact body bytes, with the secrettoken masked or a key the
user types put back in its place, for that one request. A forward sends the
delivery as it arrived (`Arrived`, held in memory only), keys and all; given only
the keys, it sends the stored capture with each key put back where its own mask
is. Nothing recorded keeps a key. Both go through outbound.py's rules (SSRF).

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, quote_from_bytes, unquote, urlsplit, urlunsplit

from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.http import parse_options_header

from . import outbound
from .capture import JSON_TYPES, URL_SAFE, encode, read_body, recode_text
from .documents import iso
from .extensions import db
from .models import Capture, Inbox, RelayAttempt
from .present import NOT_REPLAYED
from .storage import utcnow
from .verification import Redactor, mask

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

# The key a mask stands for, or None when it is not known (the mask is then sent as is).
Keys = Callable[[str], "str | None"]


class Unsendable(ValueError):
    """The request cannot be made: a key cannot be written where its mask stands."""


class InvalidKey(ValueError):
    """A key given for a replay that no request can carry."""


def typed_key(secret: str | None) -> Keys | None:
    """A key a person gives for a replay: it goes wherever a secrettoken was masked."""
    return (lambda _mask: secret) if secret else None


def received_keys(signing_key: str, secrets: list[str]) -> Keys | None:
    """The keys a delivery carried: each goes back where its own mask is."""
    by_mask = {mask(signing_key, secret): secret for secret in secrets}
    return by_mask.get if by_mask else None


@dataclass(frozen=True)
class Arrived:
    """A delivery as it arrived, keys and all, held in memory only while it is
    forwarded: the forward then carries the very bytes the sender sent (a key in
    the spelling it came in), not the stored capture with its keys put back."""

    query: bytes
    headers: list[tuple[str, str]]
    body: bytes


@dataclass
class Outgoing:
    """The request a capture becomes when it is sent on."""

    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes


def outgoing(
    capture: Capture, target: str, *, with_subpath: bool, keys: Keys | None = None
) -> Outgoing:
    """The capture as a request to `target` (plus its sub-path when asked), with its query.

    With `keys`, each masked secrettoken whose key is known is replaced by it, spelled
    for where it stands: percent-encoded in the URL and form bodies, escaped in JSON,
    as is elsewhere. Raises Unsendable when a key cannot be written into its header.
    """
    url = outgoing_url(capture, target, with_subpath=with_subpath, keys=keys)
    headers = [
        (name, _unmask(value, keys, _header_value) if keys else value)
        for name, value in capture.header_list
        if name.lower() not in NOT_REPLAYED
    ]
    body = _body_with_keys(capture, keys) if keys else capture.body
    return Outgoing(capture.method, url, headers, body)


def outgoing_url(
    capture: Capture,
    target: str,
    *,
    with_subpath: bool,
    keys: Keys | None = None,
    query: bytes | None = None,
) -> str:
    """The URL part of outgoing(): without `keys`, as it is recorded. `query`: the
    query string as it arrived, keys and all, instead of the stored one."""
    parts = urlsplit(target)
    path = parts.path
    sent = _sent_subpath(capture)
    if with_subpath and sent:
        path = path.rstrip("/") + "/" + _quoted_path(sent, keys)
    # Raw bytes outside printable ASCII (a pasted `?name=José`) go out percent-encoded.
    captured_query = quote_from_bytes(
        capture.query_string if query is None else query, safe=URL_SAFE
    )
    if keys and query is None:
        captured_query = _unmask(captured_query, keys, lambda key: quote(key, safe=""))
    query = "&".join(q for q in (parts.query, captured_query) if q)
    # The target's own fragment is not sent; a `#` left in the URL is the capture's.
    return urlunsplit(parts._replace(path=path, query=query, fragment=""))


def _unmask(text: str, keys: Keys, spell: Callable[[str], str]) -> str:
    """`text` with each mask whose key is known replaced by the key, as `spell` writes it."""
    restore = _restoring(keys, spell)
    return MASK.sub(lambda found: restore(found.group()), text)


def _unmask_bytes(data: bytes, keys: Keys, spell: Callable[[str], str]) -> bytes:
    restore = _restoring(keys, spell)
    return MASK_BYTES.sub(lambda found: restore(found.group().decode()).encode(), data)


def _restoring(keys: Keys, spell: Callable[[str], str]) -> Callable[[str], str]:
    # Replacements are made by a function, not a template: a key's backslashes are
    # not group references.
    def restore(masked: str) -> str:
        key = keys(masked)
        return masked if key is None else spell(key)

    return restore


def _header_value(key: str) -> str:
    """A key as a header carries it: on one line, as its UTF-8 bytes (headers are
    sent as Latin-1 text, and were read that way when the delivery arrived)."""
    if any(ord(c) < 32 or ord(c) == 127 for c in key):
        raise Unsendable("The key cannot be sent in a header: it contains a control character.")
    return key.encode("utf-8").decode("latin-1")


def _sent_subpath(capture: Capture) -> str:
    """The sub-path as the sender wrote it, percent-encoding kept (`a%2Fb;x=1`),
    from the stored raw path: the decoded one has lost what `%2F` was. When the
    raw path does not end in the sub-path as stored (a proxy's prefix, an old
    capture without one), the stored sub-path is used."""
    if "raw_path" not in capture.detail:
        return capture.subpath
    pieces = capture.raw_path.split("/", 3)
    sent = pieces[3] if len(pieces) > 3 else ""
    return sent if unquote(sent) == capture.subpath else capture.subpath


# What a path segment keeps as it is: printable ASCII but what would end the path.
_PATH_SAFE = URL_SAFE.replace("?", "").replace("#", "")


def _quoted_path(subpath: str, keys: Keys | None) -> str:
    """A sub-path as sent, its escapes kept and anything else a URL cannot hold
    percent-encoded; a key put back stays one segment.

    `.` and `..` segments are encoded, keys put back included: a sender's
    `../../api/...` must not climb out of the target URL once a client
    library or server resolves dot segments.
    """
    pieces, last = [], 0
    for found in MASK.finditer(subpath):
        key = keys(found.group()) if keys else None
        pieces.append(quote(subpath[last : found.start()], safe=_PATH_SAFE))
        pieces.append(quote(found.group() if key is None else key, safe=""))
        last = found.end()
    pieces.append(quote(subpath[last:], safe=_PATH_SAFE))
    return "/".join(
        segment.replace(".", "%2E") if segment in (".", "..") else segment
        for segment in "".join(pieces).split("/")
    )


def _body_with_keys(capture: Capture, keys: Keys) -> bytes:
    spell = _spelling_in_body(capture.content_type)
    encoding = capture.header("content-encoding")
    # A compressed body is unmasked in its decoded form, then compressed again.
    body = read_body(capture.body, capture.content_type, encoding, 20 * len(capture.body) + 1024)
    if body.wide_encoding:  # UTF-16 or UTF-32 JSON, masked as text in its own encoding
        unmasked = recode_text(
            body.decoded, body.wide_encoding, lambda text: _unmask(text, keys, spell)
        )
    elif not MASK_BYTES.search(body.decoded):
        return capture.body
    else:
        unmasked = _unmask_bytes(body.decoded, keys, spell)
    if unmasked == body.decoded:  # no mask with a known key
        return capture.body
    if body.decoded is capture.body:
        return unmasked
    return encode(unmasked, encoding)


def _spelling_in_body(content_type: str) -> Callable[[str], str]:
    mimetype = parse_options_header(content_type)[0].lower()
    if mimetype == FORM_TYPE:
        return lambda key: quote(key, safe="")
    if mimetype in JSON_TYPES or mimetype.endswith("+json"):
        return lambda key: json.dumps(key)[1:-1]
    return str


# --- replay ---


def replay(
    capture: Capture, target: str, *, with_subpath: bool = False, secret: str | None = None
) -> RelayAttempt:
    """Send the capture to `target` now and record the attempt; returns it.

    Raises outbound.Refused (nothing sent, nothing recorded) when the target may not be
    reached, InvalidKey for a key with control characters. `secret` replaces every
    masked secrettoken in this request only: the recorded attempt never contains it, even
    if the target echoes it.
    """
    if secret and any(ord(c) < 32 or ord(c) == 127 for c in secret):
        # Refused here, so a typed key can stand anywhere a mask is (never Unsendable).
        raise InvalidKey("The key must not contain control characters.")
    config = current_app.config
    secrets = [secret] if secret else []
    hide = Redactor(config["SECRET_KEY"], secrets)
    started_at = utcnow()
    request = outgoing(capture, target, with_subpath=with_subpath, keys=typed_key(secret))
    outcome = _send(request, config, secrets)
    return _record(capture.id, REPLAY, hide.text(request.url), 1, started_at, outcome, hide)


def _send(request: Outgoing, config: Mapping, secrets: list[str]) -> outbound.Outcome:
    """Send an outgoing request that may carry `secrets`."""
    # Read a little past the limit, so a key cut at the limit is still found and masked.
    margin = 12 * max((len(secret.encode()) for secret in secrets), default=0)
    outcome = outbound.send(
        request.method,
        request.url,
        request.headers,
        request.body,
        config,
        timeout=config["RECEIVER_FORWARD_TIMEOUT_SECONDS"],
        body_limit=outbound.MAX_RESPONSE_BYTES + margin,
    )
    return outcome


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
        target=_without_password(target),
        attempt=attempt,
        started_at=started_at,
        status=outcome.status,
        latency_ms=outcome.latency_ms,
        error=hide.text(outcome.error) if outcome.error else None,
        response_headers=json.dumps([[hide.text(n), hide.text(v)] for n, v in outcome.headers]),
        response_body=hide.data(outcome.body)[: outbound.MAX_RESPONSE_BYTES],
    )
    db.session.add(row)
    try:
        db.session.commit()
    except IntegrityError:  # the capture was deleted (or trimmed) meanwhile
        db.session.rollback()
        log.info("capture %s is gone; its %s attempt was not recorded", capture_id, kind)
    return row


def _without_password(url: str) -> str:
    """A target as recorded and shown: a password in it (user:pass@host) left out."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


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


def forward_later(
    app: Flask, capture_id: int, secrets: list[str] | None = None, arrived: Arrived | None = None
) -> None:
    """Forward a just-committed capture to its inbox's forward_url, in the background.

    `secrets` are the secrettoken values the delivery carried: they ride along in
    memory only, so the receiver forwarded to can check them as the platform's would.
    With `arrived`, the delivery's own bytes are sent; else the stored capture, each
    key put back where its own mask is.
    """
    refused = _forwarder().put((app, capture_id, 1, (list(secrets or []), arrived)))
    if refused:
        _record_not_sent(app, capture_id, 1, refused)


def _record_not_sent(app: Flask, capture_id: int, attempt: int, reason: str) -> None:
    """Record on its capture that a forward attempt was not made, and why."""
    with app.app_context():
        try:
            target = _forward_target(capture_id)
            _record(
                capture_id, FORWARD, target, attempt, utcnow(), outbound.Outcome(None, error=reason)
            )
        except Exception:  # the capture is stored and answered; this note is not worth a 500
            log.exception("could not record that capture %s was not forwarded", capture_id)
        finally:
            db.session.remove()


def drain(timeout: float = 10.0) -> bool:
    """Wait until every queued forward (retries included) is done; False on timeout."""
    worker = _worker
    return True if worker is None else worker.drain(timeout)


STOPPED = (
    "Not sent: the server stopped before this attempt. A forward carries the delivery "
    "as it arrived, key and all, which is held in memory only, never stored."
)


def stop(timeout: float) -> int:
    """At a worker's exit: queued forwards get up to `timeout` seconds to go out;
    each one still waiting is then recorded as not sent. Returns how many."""
    worker = _worker
    if worker is None:
        return 0
    worker.drain(timeout)
    # From here on nothing is queued: a retry that an attempt still under way
    # asks for is recorded as not sent, as is anything left in the queue.
    left = worker.take_queued(stopping=True)
    for app, capture_id, attempt, _keys in left:
        _record_not_sent(app, capture_id, attempt, STOPPED)
    return len(left)


def _forward_target(capture_id: int) -> str:
    capture = db.session.get(Capture, capture_id)
    inbox = capture and db.session.get(Inbox, capture.inbox_id)
    if not capture or not inbox or not inbox.forward_url:
        return ""
    return outgoing_url(capture, inbox.forward_url, with_subpath=True)


def forward_once(
    app: Flask,
    capture_id: int,
    attempt: int,
    secrets: list[str] | None = None,
    arrived: Arrived | None = None,
) -> float | None:
    """Make one forwarding attempt; returns the pause before the next, or None when done."""
    with app.app_context():
        try:
            return _forward(capture_id, attempt, app.config, secrets or [], arrived)
        finally:
            db.session.remove()


def _forward(
    capture_id: int, attempt: int, config: Mapping, secrets: list[str], arrived: Arrived | None
) -> float | None:
    capture = db.session.get(Capture, capture_id)
    if capture is None:  # deleted meanwhile
        return None
    inbox = db.session.get(Inbox, capture.inbox_id)
    if inbox is None or not inbox.forward_url:
        return None
    if attempt == 1 and attempts(capture_id, FORWARD):
        return None  # forwarded already
    if attempt == 1 and _arrived_forwarded(capture):
        url = outgoing_url(capture, inbox.forward_url, with_subpath=True)
        outcome = outbound.Outcome(None, error=NOT_AGAIN)
        _record(capture_id, FORWARD, url, attempt, utcnow(), outcome)
        return None
    started_at = utcnow()
    # The delivery's own keys go out with the forward; none of them is kept.
    hide = Redactor(config["SECRET_KEY"], secrets)
    keys = received_keys(config["SECRET_KEY"], secrets)
    try:
        if arrived is None:
            request = outgoing(capture, inbox.forward_url, with_subpath=True, keys=keys)
        else:
            request = Outgoing(
                capture.method,
                outgoing_url(
                    capture, inbox.forward_url, with_subpath=True, keys=keys, query=arrived.query
                ),
                [(n, v) for n, v in arrived.headers if n.lower() not in NOT_REPLAYED],
                arrived.body,
            )
    except Unsendable as problem:  # not retried: the same request would fail the same way
        url = outgoing_url(capture, inbox.forward_url, with_subpath=True)
        outcome, again = outbound.Outcome(None, error=str(problem)), False
    else:
        url = request.url
        request.headers.append((FORWARDED_HEADER, "1"))
        # No transaction (nor pooled connection) held while the target answers.
        db.session.rollback()
        try:
            outcome = _send(request, config, secrets)
            again = _worth_retrying(outcome) and attempt <= config["RECEIVER_FORWARD_RETRIES"]
        except outbound.Refused as refusal:
            outcome, again = outbound.Outcome(None, error=str(refusal)), False
    _record(capture_id, FORWARD, hide.text(url), attempt, started_at, outcome, hide)
    return BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS)) - 1] if again else None


NOT_AGAIN = (
    f"Not forwarded: the delivery came with {FORWARDED_HEADER}, so it is a forward "
    "itself; forwarding it again could loop between two receivers."
)


def _arrived_forwarded(capture: Capture) -> bool:
    return any(name.lower() == FORWARDED_HEADER.lower() for name, _ in capture.header_list)


def _worth_retrying(outcome: outbound.Outcome) -> bool:
    """No answer, a server error or "too many requests" may pass; anything else won't."""
    return outcome.status is None or outcome.status >= 500 or outcome.status == 429


# Forwarding threads per process: one slow target holds one of them, not every
# forward of every inbox behind it.
FORWARD_THREADS = 4
# The deliveries a worker holds for forwarding live in memory only; past this
# many bytes of them (a target down, a flood of large bodies), a new forward is
# recorded as not sent instead of growing the worker without end.
FORWARD_HELD_BYTES = 64 * 1024 * 1024
FULL = (
    f"Not sent: this worker already holds {FORWARD_HELD_BYTES // (1024 * 1024)} MiB of "
    "deliveries waiting to be forwarded (the target is slow or down)."
)


def _held_size(arrived: Arrived | None) -> int:
    if arrived is None:
        return 0
    return len(arrived.body) + len(arrived.query) + sum(len(n) + len(v) for n, v in arrived.headers)


class _Forwarder:
    """Daemon threads working through forwarding attempts in order of when they are due."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, tuple]] = []
        self._order = itertools.count()
        self._busy = 0
        # Captures with a forward queued or under way, and the bytes each holds:
        # a second request to forward one is dropped (each is forwarded once,
        # whichever thread runs it).
        self._claimed: dict[int, int] = {}
        self._held = 0
        self._stopping = False
        self._changed = threading.Condition()
        for n in range(FORWARD_THREADS):
            threading.Thread(target=self._run, name=f"receiver-forwarder-{n}", daemon=True).start()

    def put(self, job: tuple, delay: float = 0.0) -> str | None:
        """Queue a job; or say why it is not queued (FULL: a first attempt would
        hold more than FORWARD_HELD_BYTES; STOPPED: the worker is stopping)."""
        _app, capture_id, attempt, (_secrets, arrived) = job
        with self._changed:
            if self._stopping:
                if attempt > 1:
                    self._release(capture_id)
                return STOPPED
            if attempt == 1:
                if capture_id in self._claimed:
                    return None
                size = _held_size(arrived)
                if self._held and self._held + size > FORWARD_HELD_BYTES:
                    return FULL
                self._claimed[capture_id] = size
                self._held += size
            heapq.heappush(self._due, (time.monotonic() + delay, next(self._order), job))
            self._changed.notify_all()
            return None

    def _release(self, capture_id: int) -> None:
        self._held -= self._claimed.pop(capture_id, 0)

    def drain(self, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: not self._due and not self._busy, timeout)

    def take_queued(self, *, stopping: bool = False) -> list[tuple]:
        """Every job not yet started, taken off the queue; with `stopping`, no
        job is queued any more."""
        with self._changed:
            self._stopping = self._stopping or stopping
            jobs = [job for _due, _order, job in self._due]
            self._due.clear()
            for _app, capture_id, _attempt, _keys in jobs:
                self._release(capture_id)
            self._changed.notify_all()
            return jobs

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
            app, capture_id, attempt, (secrets, arrived) = self._next()
            again = False
            try:
                pause = forward_once(app, capture_id, attempt, secrets, arrived)
                if pause is not None:
                    refused = self.put((app, capture_id, attempt + 1, (secrets, arrived)), pause)
                    if refused:
                        _record_not_sent(app, capture_id, attempt + 1, refused)
                    else:
                        again = True
            except Exception:
                log.exception("Forwarding capture %s failed (attempt %s)", capture_id, attempt)
            finally:
                with self._changed:
                    if not again:
                        self._release(capture_id)
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
