"""The capture endpoint: `/hooks/<inbox>` and `/hooks/<inbox>/<sub-path>`, any method.

A delivery goes through capture (read the bytes) → catalog (what event is
this, what is wrong with it) → verification (secrettoken verdict, then mask
it everywhere) → storage (one transaction) and is answered at once.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import time
from datetime import UTC, timedelta
from typing import AnyStr

from flask import Blueprint, Request, Response, current_app, request
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import WebsocketMismatch

from . import catalog, inboxes, metrics, relay, storage
from .capture import (
    STORED_VALUE_MAX,
    Body,
    Reading,
    encode,
    fired_webhook_lines,
    json_text,
    parse_pairs,
    read_request,
    recode_text,
    stored_value,
)
from .errors import database_is_away, error_response, handle_http_error, outage_log
from .extensions import csrf, db
from .verification import (
    MAX_RECEIVED_SECRETS,
    SECRET_PARAM,
    VERIFIED,
    NameScan,
    Redactor,
    TooManySecrets,
    Verdict,
    digest,
    is_secret_header,
    is_secret_name,
    names_secrettoken,
    quote_bare_masks,
    received_secrets,
    secrets_to_mask,
    verify,
)
from .writer import StorageUnavailable, writer_for

bp = Blueprint("hooks", __name__, url_prefix="/hooks")
csrf.exempt(bp)

log = logging.getLogger("receiver.hooks")

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]


# Slashes are part of what was sent: no redirect merges `//` (a sender would
# not follow it with its body). Paths the rules cannot express (`/hooks/a/`,
# `/hooks/a//x`) are captured by the 404 handler below.
_RULE = {"methods": METHODS, "provide_automatic_options": False, "merge_slashes": False}


@bp.route("/<inbox>", defaults={"rest": ""}, **_RULE)
@bp.route("/<inbox>/<path:rest>", **_RULE)
def capture(inbox: str, rest: str):
    # The real objects, not the context-local proxies: this is the hot path.
    app = current_app._get_current_object()
    req = request._get_current_object()
    try:
        return _capture(app, req, inbox, rest)
    finally:
        _hide_secrets_from_access_log(app, req)


def _hide_secrets_from_access_log(app, req: Request) -> None:
    """gunicorn's access log prints PATH_INFO and the User-Agent: mask any key
    the delivery carried in them, whatever the answer (a refused delivery's
    keys are those of its query string)."""
    environ = req.environ
    redactor = environ.get(_REDACTOR)
    if redactor is None:
        secrets = _keys_in_target(req)
        redactor = Redactor(app.config["SECRET_KEY"], secrets) if secrets else None
    if not redactor:
        return
    for name in ("PATH_INFO", "HTTP_USER_AGENT"):
        value = environ.get(name)
        if value:
            environ[name] = redactor.text(value)


def _keys_in_target(req: Request) -> list[str]:
    """The keys a refused request's path and query string carry (its body is unread)."""
    path = req.path.encode("utf-8", "surrogateescape")
    if not (names_secrettoken(req.query_string) or names_secrettoken(path)):
        return []
    query = [value for name, value in parse_pairs(req.query_string) if name == SECRET_PARAM]
    scan = NameScan()
    with contextlib.suppress(TooManySecrets):  # hide what was found so far
        scan.text(path, path=True)
        scan.text(req.query_string)
    return secrets_to_mask(received_secrets({SECRET_PARAM: query}) + scan.values)[
        :MAX_RECEIVED_SECRETS
    ]


_REDACTOR = "receiver.redactor"  # the delivery's masking, once it is read


def _capture(app, req: Request, inbox: str, rest: str):
    config = app.config
    try:
        box = storage.inbox_config(inbox, config["RECEIVER_SETTINGS_CACHE_SECONDS"])
    except SQLAlchemyError as exc:  # the database is away: the sender's retry may find it
        with contextlib.suppress(Exception):
            db.session.rollback()
        return _storage_unavailable(exc)
    if box is None:
        if config["RECEIVER_AUTO_CREATE_INBOXES"] and storage.SLUG.match(inbox):
            try:
                storage.create_inbox(inbox)
            except IntegrityError:  # a concurrent first delivery created it
                db.session.rollback()
            box = storage.inbox_config(inbox, 0)
        else:
            metrics.rejected("unknown_inbox")
            message = f"No inbox named {inbox!r}."
            if config["RECEIVER_AUTO_CREATE_INBOXES"]:
                rule = inboxes.SLUG_RULE
                message += f" Inboxes are made on first delivery only for names of {rule}."
            return error_response(404, "unknown_inbox", message)

    prepared = _prepare(req, rest, box, config)
    if isinstance(prepared, Response):
        return prepared
    row, log_text, hidden, verdict, arrived = prepared
    # A browser's CORS preflight is answered 204 (it carries no key and is no
    # delivery): it is neither rejected nor one of the deliveries set to fail.
    preflight = box.cors and _is_preflight(req)
    # Enforced, only a verified key passes: with no key expected yet, none
    # does (accepting all would leave the inbox open while it says enforcing).
    rejected = box.enforce_secret and verdict.verdict != VERIFIED and not preflight
    # "Fail the first N deliveries": counted down atomically, so concurrent
    # deliveries fail exactly N times between them.
    failing = (
        not (rejected or preflight) and box.fail_remaining > 0 and storage.take_failure(box.id)
    )
    row["rejected"] = rejected
    if preflight:
        row["answered_status"] = 204
    elif rejected:
        row["answered_status"] = 401
    else:
        row["answered_status"] = box.fail_status if failing else box.response_status
    try:
        capture_id = writer_for(app, db.engine).save(
            row, box.capacity or config["RECEIVER_INBOX_CAPACITY"]
        )
    except StorageUnavailable as exc:
        if _deleted_meanwhile(box):
            # Deleted in another worker since this one read its settings: gone
            # for good (404), or made again under the same name, which the
            # sender's retry reaches (503, below).
            storage.forget_inboxes()
            if storage.inbox_config(inbox, 0) is None:
                metrics.rejected("unknown_inbox")
                return error_response(404, "unknown_inbox", f"No inbox named {inbox!r}.")
        return _storage_unavailable(exc)

    metrics.captured(box.slug, row["event_type"], row["verdict"])
    if box.forward_url and config["RECEIVER_OUTBOUND_ENABLED"]:
        relay.forward_later(app, capture_id, hidden, arrived)
    if rejected:
        metrics.rejected("secret_rejected")
    if log_text:
        log.info(log_text)

    if box.retention_days:
        try:
            storage.purge_due(box.id, box.retention_days)
        except Exception:  # the capture is stored; retention catches up next time
            db.session.rollback()
            log.exception("retention purge of inbox %s failed", box.slug)
    response = answer(box, capture_id, req, rejected=rejected, failing=failing)
    if box.response_delay_ms and not (rejected or failing):
        time.sleep(box.response_delay_ms / 1000)
    return response


def _storage_unavailable(exc: Exception) -> Response:
    """503: the sender's retry may find the database back. A database error
    that is not an outage (a bug) is logged whole, at once."""
    metrics.rejected("storage_unavailable")
    if isinstance(exc, SQLAlchemyError) and not database_is_away(exc):
        log.error("capture not stored", exc_info=exc)
    else:
        outage_log("capture").error("capture not stored", exc)
    response = error_response(
        503, "storage_unavailable", "The capture could not be stored; send it again."
    )
    response.headers["Retry-After"] = "1"
    return response


def _deleted_meanwhile(box: storage.InboxConfig) -> bool:
    try:
        return not storage.inbox_exists(box.id)
    except Exception:  # the database is away: that is the answer to give
        with contextlib.suppress(Exception):
            db.session.rollback()
        return False


def _prepare(req: Request, rest: str, box: storage.InboxConfig, config):
    """Read, verify and mask a delivery into the row to store, with its log
    record, the values masked in it (the keys it carried), its verdict and,
    when it is to be forwarded, the bytes it arrived as; or the error to answer.

    Everything read from the request lives only in here, so a large body's
    parsed copies are gone before the row goes to the database.
    """
    reading = read_request(req, rest)
    values = reading.values()
    received = received_secrets(values)
    try:
        named = _named_elsewhere(reading)
    except TooManySecrets as problem:
        metrics.rejected("too_many_secrettokens")
        return error_response(400, "too_many_secrettokens", f"{problem}; nothing was stored.")
    hidden = secrets_to_mask(received + named, _json_naming_secrets(reading.body))
    if len(hidden) > MAX_RECEIVED_SECRETS:
        # Each distinct value must be masked everywhere before anything is kept;
        # no platform delivery carries more than one.
        metrics.rejected("too_many_secrettokens")
        return error_response(
            400,
            "too_many_secrettokens",
            f"More than {MAX_RECEIVED_SECRETS} different secrettoken values; nothing was stored.",
        )
    key = config["SECRET_KEY"]
    verdict = verify(key, values, list(box.expected))
    expected = received if verdict.verdict == VERIFIED else _keys_of(key, hidden, box.expected)
    redactor = req.environ[_REDACTOR] = Redactor(key, hidden, expected)
    row, params = build_row(reading, box.id, verdict, redactor, config)
    # One record, so lines from concurrent deliveries never interleave.
    log_text = "\n".join(fired_webhook_lines(params)) if config["RECEIVER_LOG_CAPTURES"] else ""
    arrived = None
    if box.forward_url and config["RECEIVER_OUTBOUND_ENABLED"]:
        # The forward sends these bytes, keys as sent; held in memory only.
        arrived = relay.Arrived(reading.query_string, reading.headers, reading.raw_body)
    return row, log_text, hidden, verdict, arrived


def _keys_of(key: str, values: list[str], expected) -> list[str]:
    """Those of a delivery's values that are keys the inbox expects, though it
    did not verify (a key kept for another user): masked as keys, everywhere,
    even when short and plain. Only for a delivery that did not verify."""
    digests = {item.digest for item in expected}
    if not digests:
        return []
    return [value for value in values if digest(key, value) in digests]


FILE_KEY_LINE_MIN = 8  # shorter lines of a file named secrettoken are not taken for keys
FILE_NAME_KEY_MIN = 12  # nor shorter file names


def _named_elsewhere(reading: Reading) -> list[str]:
    """Values under a secrettoken name of another kind (see verification's
    NameScan): parameters and headers so named, and what the scan finds in
    the path, the query string, header values, the body and the parameters'
    own text (JSON in a form field). Not verified; masked all the same."""
    scan = NameScan()
    for source, name, value in reading.params:
        if SECRET_PARAM in name.lower():
            # JSON names are looked up in the parsed document (secrets_to_mask).
            if source != "json" and name != SECRET_PARAM and is_secret_name(name):
                scan.add(value)
            if name != SECRET_PARAM:  # the plain name is counted where the text has it
                scan.text(name.encode("utf-8", "surrogatepass"))  # JSON sent as a form
        if SECRET_PARAM in value.lower():
            scan.text(value.encode("utf-8", "surrogatepass"))  # JSON in a form field
    for part in reading.body.parts:
        if part.filename is not None and is_secret_name(part.name):
            # A file under the name: each line long enough to be a key (a file
            # holds one, perhaps after a blank line or a title), and its name
            # if it is that long too (not key.txt).
            if len(part.filename) >= FILE_NAME_KEY_MIN:
                scan.add(part.filename)
            content = bytes(reading.body.files[part.index][: 64 * 1024])
            for line in content.decode("utf-8", "replace").splitlines():
                if len(line.strip()) >= FILE_KEY_LINE_MIN:
                    scan.add(line.strip())
    for name, value in reading.headers:
        if is_secret_header(name):
            scan.add(value)
        elif SECRET_PARAM in value.lower():
            scan.text(value.encode("latin-1", "replace"))
    scan.text(reading.raw_path.encode("utf-8", "replace"), path=True)
    if reading.path != reading.raw_path:  # the name or its slash percent-encoded
        scan.text(reading.path.encode("utf-8", "replace"), path=True)
    scan.text(reading.query_string)
    if not reading.body.wide_encoding:
        scan.text(reading.body.decoded)
    return scan.values


def _json_naming_secrets(body) -> object:
    """The JSON document, when it may hold a secrettoken below the top level
    (looking through all of a large one costs time); else None."""
    if not body.has_json or not isinstance(body.json, (dict, list)):
        return None
    data = body.decoded
    if body.wide_encoding or b"\\u" in data or names_secrettoken(data):
        return body.json
    return None


def answer(
    box: storage.InboxConfig, capture_id: int, req: Request, *, rejected: bool, failing: bool
) -> Response:
    """What the sender is told: 401 in enforce mode, a simulated failure, the
    inbox's custom response, or the default JSON acknowledgement."""
    if rejected:
        response = error_response(
            401, "secret_rejected", "The secrettoken is missing or not accepted by this inbox."
        )
    elif failing:
        response = error_response(
            box.fail_status, "simulated_failure", "This inbox is set to fail this delivery."
        )
    elif box.response_body is None and box.response_content_type is None:
        # What jsonify(ok=True, id=...) gives, without its per-call machinery.
        response = Response(
            b'{"id":%d,"ok":true}\n' % capture_id,
            status=box.response_status,
            mimetype="application/json",
        )
    else:
        # A value saved before its check existed is left out, not sent broken.
        content_type = box.response_content_type
        if not inboxes.sendable_content_type(content_type):
            content_type = None
        response = Response(
            box.response_body or "",
            status=box.response_status,
            content_type=content_type or "text/plain; charset=utf-8",
        )
    if not (rejected or failing):
        for name, value in box.response_headers:
            if inboxes.header_problem(name, value) is None:
                response.headers.add(name, value)
    response.headers["X-Capture-Id"] = str(capture_id)
    if box.cors:
        _allow_cross_origin(response, req)
    return response


def _is_preflight(request: Request) -> bool:
    return request.method == "OPTIONS" and bool(
        request.headers.get("Access-Control-Request-Method")
    )


def _allow_cross_origin(response: Response, request: Request) -> None:
    origin = request.headers.get("Origin")
    # An Allow-Origin among the inbox's own response headers is kept.
    response.headers.setdefault("Access-Control-Allow-Origin", origin or "*")
    response.headers["Access-Control-Expose-Headers"] = "X-Capture-Id"
    if origin:
        response.headers.add("Vary", "Origin")
    if _is_preflight(request):
        # A preflight: allow what was asked for, for a day.
        response.status_code = 204
        response.set_data(b"")
        # Any method is captured, PROPFIND and the like too: allow what was asked.
        response.headers["Access-Control-Allow-Methods"] = request.headers.get(
            "Access-Control-Request-Method"
        )
        asked = request.headers.get("Access-Control-Request-Headers")
        if asked:
            response.headers["Access-Control-Allow-Headers"] = asked
        response.headers["Access-Control-Max-Age"] = "86400"


@bp.app_errorhandler(NotFound)
def capture_any_slashes(exc: NotFound):
    """`/hooks/<inbox>/` and sub-paths that start with or are only slashes."""
    target = _slashed_target()
    if target is not None:
        return _capture_from_handler(*target)
    return handle_http_error(exc)


@bp.app_errorhandler(MethodNotAllowed)
def capture_unusual_method(exc: MethodNotAllowed):
    """Methods beyond the usual seven (PROPFIND, PURGE, ...) are captured too."""
    return _capture_rerouted(exc)


@bp.app_errorhandler(WebsocketMismatch)
def capture_websocket_upgrade(exc: WebsocketMismatch):
    """A request asking for a WebSocket (`Upgrade: websocket`) is captured like
    any other and answered as one: no rule here is a WebSocket rule, so the
    router refuses it with a 400."""
    return _capture_rerouted(exc)


def _capture_rerouted(exc: HTTPException):
    """The capture for a request to a capture URL that the router refused for
    its method or its WebSocket upgrade; else the error."""
    if request.path.startswith(bp.url_prefix + "/"):
        adapter = current_app.url_map.bind_to_environ(request.environ)
        try:
            endpoint, args = adapter.match(method="POST", websocket=False)
        except NotFound:
            target = _slashed_target()
            if target is not None:
                return _capture_from_handler(*target)
            endpoint, args = "", {}
        if endpoint == "hooks.capture":
            return _capture_from_handler(**args)
    return handle_http_error(exc)


def _capture_from_handler(inbox: str, rest: str):
    """capture() called from an error handler, where Flask handles no further
    error: a 413 or 400 from reading the body is answered here."""
    try:
        return capture(inbox, rest)
    except HTTPException as exc:
        return handle_http_error(exc)


def _slashed_target() -> tuple[str, str] | None:
    """(inbox, sub-path) of a capture URL the rules cannot express, if it is one."""
    path = request.path
    if not path.startswith(bp.url_prefix + "/"):
        return None
    inbox, slash, rest = path.removeprefix(bp.url_prefix + "/").partition("/")
    return (inbox, rest) if inbox and slash else None


def build_row(
    reading: Reading, inbox_id: int, verdict: Verdict, redactor: Redactor, config
) -> tuple[dict, list[tuple[str, str, str]]]:
    """The capture's columns, and its parameters as (source, name, value):
    everything read, with every received secret masked."""
    red_text, red_data = redactor.text, redactor.data
    params = [
        (source, red_text(name), redactor.named(name, value))
        for source, name, value in reading.params
    ]
    values: dict[str, list[str]] = {}
    for _source, name, value in params:
        values.setdefault(name, []).append(value)

    # Masked again after the catalog cleans the name: stripping control
    # characters could otherwise put a key back together.
    event_type = red_text(catalog.event_type(values, red_text(reading.subpath)))[:64]
    findings = catalog.check(
        event_type,
        values,
        received_at=reading.received_at.replace(tzinfo=UTC),
        stale_after=_seconds(config["RECEIVER_STALE_AFTER_SECONDS"]),
        future_skew=_seconds(config["RECEIVER_FUTURE_SKEW_SECONDS"]),
    )
    if verdict.hint:
        findings.append(catalog.Finding("error", "secret_slip", SECRET_PARAM, verdict.hint))
    body, body_notes = _redacted_body(reading, redactor)
    cut = sum(1 for _source, _name, value in params if len(value) > STORED_VALUE_MAX)
    if cut:
        how_many = "1 parameter value" if cut == 1 else f"{cut:,} parameter values"
        body_notes["params"] = (
            f"{how_many} longer than {STORED_VALUE_MAX:,} characters "
            f"{'is' if cut == 1 else 'are'} stored cut; the raw body holds "
            f"{'it' if cut == 1 else 'them'} whole."
        )
    # The parameter list keeps a bounded copy of each value: a body with one
    # huge field is not held (and stored) twice over.
    params = [(source, name, stored_value(value)) for source, name, value in params]
    details = {
        "notes": {
            topic: red_text(note) for topic, note in {**reading.body.notes, **body_notes}.items()
        },
        # Plain dicts: dataclasses.asdict deep-copies and is slow on this path.
        "parts": [
            {
                "index": part.index,
                "name": red_text(part.name),
                "filename": None if part.filename is None else red_text(part.filename),
                "content_type": red_text(part.content_type),
                # As stored: with a key masked (its length is no one's business).
                "size": redactor.data_size(reading.body.files[part.index]),
            }
            for part in reading.body.parts
        ],
        "findings": [
            {"level": f.level, "code": f.code, "param": f.param, "message": f.message}
            for f in findings
        ],
        "json": reading.body.has_json,
        "raw_path": red_text(reading.raw_path),
    }
    first = {name: vals[0] for name, vals in values.items()}
    row = {
        "inbox_id": inbox_id,
        "received_at": reading.received_at,
        "method": reading.method,
        "path": _column_text(red_text(reading.path)),
        "subpath": _column_text(red_text(reading.subpath)),
        "query_string": red_data(reading.query_string),
        "headers": json_text(
            [[red_text(n), _red_header(n, v, redactor)] for n, v in reading.headers]
        ),
        "body": body,
        "content_type": red_text(reading.content_type),
        "content_length": len(reading.raw_body),
        "remote_addr": reading.remote_addr,
        "params": json_text(params),
        "details": json_text(details),
        "event_type": event_type,
        "code": _column_text(first.get("code", "")[:200]),
        "user": _column_text(first.get("user", "")[:200]),
        "verdict": verdict.verdict,
        "secret_label": verdict.label,
        "secret_fingerprint": verdict.fingerprint,
        "finding_count": sum(1 for f in findings if f.level != "info"),
        "dedupe_key": _dedupe_key(event_type, first, params, verdict.accepted),
    }
    return row, params


def _column_text(value: str) -> str:
    """A text column's value with a NUL character shown as ␀: PostgreSQL's text
    cannot hold one. These columns are for lists and filters; the exact value
    is kept in the raw path, the parameters and the body."""
    return value.replace("\x00", "\u2400")


def _redacted_body(reading: Reading, redactor: Redactor) -> tuple[bytes, dict[str, str]]:
    """The raw body with secrets masked; a compressed body whose decoded form
    carried the secret is stored re-compressed from the masked text."""
    raw = reading.raw_body
    if not redactor:
        return raw, {}
    body = reading.body
    decoded = body.decoded
    notes: dict[str, str] = {}
    if decoded is raw or decoded == raw:
        return _masked(raw, body, redactor, notes), notes
    masked = _masked(decoded, body, redactor, notes)
    if masked == decoded and not body.decoded_partly:
        return redactor.data(raw), notes
    # Stored again from the decoded text. Compressed bytes that could not be
    # read might hold the key where only a determined reader finds it: not kept.
    data = encode(masked, reading.content_encoding) + redactor.data(body.after_coded)
    note = (
        "The delivery carried a secrettoken: the body is stored re-compressed from its "
        "decoded text, with the key masked"
    )
    if body.after_coded:
        note += ", followed by the bytes that came after the compressed data"
    if body.decoded_partly:
        note += (
            f"; only what could be decoded is kept ({len(raw):,} B were received), as the "
            "rest could not be checked for the key"
        )
    notes["redaction"] = note + "."
    return data, notes


def _masked(data: bytes, body: Body, redactor: Redactor, notes: dict[str, str]) -> bytes:
    """Bytes with every received secret masked. A UTF-16 or UTF-32 body is
    masked as text and written back in its own encoding: byte patterns only
    know the ASCII-based spellings. A JSON body stays valid JSON: a key sent
    as a number is masked as a string (noted)."""
    quoted = False

    def mended(document: AnyStr) -> AnyStr:
        nonlocal quoted
        document, quoted = quote_bare_masks(document)
        return document

    mend = body.has_json and redactor.may_stand_bare
    if body.wide_encoding:
        change = redactor.text
        if mend:
            change = lambda text: mended(redactor.text(text))  # noqa: E731
        masked = recode_text(data, body.wide_encoding, change)
    else:
        masked = redactor.data(data)
        if mend:
            masked = mended(masked)
    if quoted:
        notes["json_key"] = (
            "The delivery carried a secrettoken outside a JSON string (as a number, or "
            "true, false or null): it is stored masked as a string, so the body stays "
            "valid JSON."
        )
    return masked


def _red_header(name: str, value: str, redactor: Redactor) -> str:
    """A header's value with the keys received masked. `Authorization: Basic`
    credentials holding one are decoded, masked and encoded again, so they
    still read as credentials (the mask would otherwise stand in their base64)."""
    if name.lower() in ("authorization", "proxy-authorization") and redactor:
        scheme, _, credentials = value.partition(" ")
        if scheme.lower() == "basic" and credentials.strip():
            with contextlib.suppress(ValueError):  # not base64: masked as text, below
                decoded = base64.b64decode(credentials.strip(), validate=True).decode("latin-1")
                masked = redactor.text(decoded)
                if masked != decoded:
                    encoded = base64.b64encode(masked.encode("latin-1", "replace")).decode()
                    return f"{scheme} {encoded}"
    return redactor.named(name, value)


def _dedupe_key(event_type: str, first: dict[str, str], params, accepted: bool) -> str | None:
    """Same event, code and timestamp, and every other parameter the same too:
    a redelivery repeats the whole delivery. (Two scans of one code in the
    same second differ in `redirects`; two leads in `email`.) The key is left
    out: a redelivery may carry a rotated one. A delivery whose key is accepted
    (verified, or no key expected) is matched with accepted ones only, so a
    forgery sent first never makes the genuine delivery look like a repeat.
    (Their keys are set apart; the accepted one is the key earlier versions wrote.)"""
    if not first.get("timestamp") or event_type == catalog.UNKNOWN:
        return None
    parts = [event_type] if accepted else ["not accepted", event_type]
    for source, name, value in params:
        if name != SECRET_PARAM:
            parts += (source, name, value)
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _seconds(n: int) -> timedelta:
    return timedelta(seconds=n)
