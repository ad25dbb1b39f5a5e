"""The JSON API under /api: inboxes, their settings and secrets, captures, stats, exports.

Errors are `{"error": {"code": ..., "message": ...}}` with the matching status.
Who may call it is decided in receiver/access.py.
"""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import quote

from flask import Blueprint, Response, abort, request, stream_with_context, url_for
from sqlalchemy import func, select

from . import exports, inboxes, openapi, outbound, present, relay, storage
from .documents import capture_document, capture_summary, inbox_document, secret_document
from .errors import error_response
from .extensions import csrf, db
from .models import Capture, Inbox
from .verification import VERDICTS

bp = Blueprint("api", __name__, url_prefix="/api")
csrf.exempt(bp)

MAX_LIMIT = 500


@bp.errorhandler(inboxes.SettingsError)
def settings_error(exc: inboxes.SettingsError):
    return error_response(422, "invalid_setting", str(exc))


def _inbox(slug: str) -> Inbox:
    inbox = storage.find_inbox(slug)
    if inbox is None:
        abort(404, description=f"No inbox named {slug!r}.")
    return inbox


def _capture(capture_id: int) -> Capture:
    if capture_id > storage.MAX_ID:
        abort(404, description="No capture with that id.")
    return db.get_or_404(Capture, capture_id, description="No capture with that id.")


def _json_body(fields: set[str] | None = None) -> dict:
    """The request's JSON object; with `fields`, any other member is refused
    (a typo such as "usr" must not silently widen what is saved)."""
    data = request.get_json(silent=True)
    if data is None and request.get_data():
        abort(400, description="The body is not valid JSON; send a JSON object.")
    if data is None:
        return {}
    if not isinstance(data, dict):
        abort(400, description="The body must be a JSON object.")
    unknown = sorted(set(data) - fields) if fields is not None else []
    if unknown:
        raise inboxes.SettingsError(
            unknown[0], f"is not a field here (expected: {', '.join(sorted(fields))})"
        )
    try:
        json.dumps(data, ensure_ascii=False).encode()
    except UnicodeEncodeError:  # a lone surrogate such as "\ud800"
        abort(400, description="The body has text that is not valid Unicode.")
    return data


# Inboxes


@bp.get("/inboxes")
def list_inboxes():
    totals = storage.inbox_totals()
    rows = db.session.execute(select(Inbox).order_by(Inbox.slug)).scalars()
    return {"inboxes": [inbox_document(i, totals.get(i.id, 0)) for i in rows]}


@bp.post("/inboxes")
def create_inbox():
    data = _json_body()
    slug = data.pop("slug", None)
    if slug is not None and not isinstance(slug, str):
        raise inboxes.SettingsError("slug", "must be a string (empty for a random name)")
    inboxes.check(data)  # all settings checked before anything is created
    inbox = inboxes.create(slug)
    if data:
        inboxes.update(inbox, data)
    location = url_for("api.get_inbox", slug=inbox.slug)
    return inbox_document(inbox, 0), 201, {"Location": location}


@bp.get("/inboxes/<slug>")
def get_inbox(slug: str):
    return inbox_document(_inbox(slug))


@bp.patch("/inboxes/<slug>")
def update_inbox(slug: str):
    return inbox_document(inboxes.update(_inbox(slug), _json_body()))


@bp.delete("/inboxes/<slug>")
def delete_inbox(slug: str):
    inboxes.remove(_inbox(slug))
    return "", 204


@bp.post("/inboxes/<slug>/copy-config")
def copy_config(slug: str):
    """Copy this inbox's configuration to `to` (created when `create` is true)."""
    source = _inbox(slug)
    data = _json_body({"to", "create"})
    target_slug = data.get("to")
    if not isinstance(target_slug, str) or not target_slug:
        abort(400, description="Name the inbox to copy to as 'to'.")
    target = storage.find_inbox(target_slug)
    if target is None:
        if data.get("create") is not True:
            abort(404, description=f"No inbox named {target_slug!r} (send create: true).")
        target = inboxes.create(target_slug)
    return inbox_document(inboxes.copy_config(source, target))


@bp.post("/inboxes/<slug>/secrets")
def add_secret(slug: str):
    data = _json_body({"label", "secret", "user"})
    inbox = _inbox(slug)
    for name in ("label", "secret", "user"):
        if data.get(name) is not None and not isinstance(data[name], str):
            abort(400, description=f"'{name}' must be a string.")
    secret = inboxes.add_secret(
        inbox, data.get("label", ""), data.get("secret", ""), data.get("user")
    )
    return secret_document(secret), 201


@bp.delete("/inboxes/<slug>/secrets/<int:secret_id>")
def remove_secret(slug: str, secret_id: int):
    if not inboxes.remove_secret(_inbox(slug), secret_id):
        abort(404, description="This inbox has no secret with that id.")
    return "", 204


# Captures


def _limit() -> int:
    raw = request.args.get("limit", "50")
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_LIMIT:
        abort(400, description=f"limit must be a whole number from 1 to {MAX_LIMIT}.")
    return int(raw)


def _cursor(name: str) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    value = storage.as_id(raw)
    if value is None:
        abort(400, description=f"{name} must be a capture id.")
    return value


def _filters() -> dict[str, str]:
    verdict = request.args.get("verdict", "")
    if verdict and verdict not in VERDICTS:
        abort(400, description=f"verdict must be one of {', '.join(VERDICTS)}.")
    return {
        "event": request.args.get("event", ""),
        "verdict": verdict,
        "method": request.args.get("method", ""),
        "q": request.args.get("q", ""),
    }


@bp.get("/inboxes/<slug>/captures")
def list_captures(slug: str):
    """Newest first; pass `next_before` back as `before` for the next page."""
    inbox = _inbox(slug)
    limit = _limit()
    rows = storage.list_captures(
        inbox.id, before=_cursor("before"), after=_cursor("after"), limit=limit, **_filters()
    )
    return {
        "captures": [capture_summary(c) for c in rows],
        "next_before": rows[-1].id if len(rows) == limit else None,
    }


@bp.delete("/inboxes/<slug>/captures")
def clear_captures(slug: str):
    return {"deleted": storage.clear_inbox(_inbox(slug).id)}


@bp.get("/captures/<int:capture_id>")
def get_capture(capture_id: int):
    capture = _capture(capture_id)
    return capture_document(capture, db.session.get(Inbox, capture.inbox_id))


@bp.delete("/captures/<int:capture_id>")
def delete_capture(capture_id: int):
    storage.delete_capture(_capture(capture_id))
    return "", 204


def _attachment(data: bytes, content_type: str, filename: str) -> Response:
    """Captured bytes as a download, with the content type they came with (as
    received, no charset added), never rendered by the browser."""
    if not content_type or not inboxes.sendable_header_value(content_type):
        content_type = "application/octet-stream"
    response = Response(data, content_type=content_type)
    response.headers["Content-Disposition"] = _disposition(filename)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


def _disposition(filename: str) -> str:
    # The plain filename is ASCII for old clients; filename* carries the real one.
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in filename)
    safe = safe[:100] or "download"
    return f"attachment; filename=\"{safe}\"; filename*=UTF-8''{quote(filename[:100])}"


@bp.get("/captures/<int:capture_id>/raw")
def raw_body(capture_id: int):
    """The exact stored bytes with the original content type, as an attachment."""
    capture = _capture(capture_id)
    return _attachment(capture.body, capture.content_type, present.raw_body_filename(capture))


@bp.get("/captures/<int:capture_id>/parts/<int:index>")
def part(capture_id: int, index: int):
    """One multipart part's bytes, as an attachment."""
    capture = _capture(capture_id)
    for described in capture.detail["parts"]:
        if described["index"] == index:
            data = present.part_bytes(capture, index)
            if data is None:
                break
            name = described["filename"] or f"{described['name']}.txt"
            return _attachment(data, described["content_type"], present.inert_filename(name))
    abort(404, description="No such part in this capture.")


@bp.post("/captures/<int:capture_id>/replay")
def replay(capture_id: int):
    """Send a capture again to `to` (same method, headers, exact body); the
    masked secrettoken can be replaced by `secret`, used for this request only."""
    capture = _capture(capture_id)
    data = _json_body({"to", "secret", "with_subpath"})
    target = data.get("to")
    if not isinstance(target, str) or not target:
        abort(400, description="Name the URL to replay to as 'to'.")
    secret = data.get("secret")
    if secret is not None and not isinstance(secret, str):
        abort(400, description="'secret' must be a string.")
    if not isinstance(data.get("with_subpath", False), bool):
        abort(400, description="'with_subpath' must be true or false.")
    try:
        attempt = relay.replay(
            capture, target, with_subpath=data.get("with_subpath") is True, secret=secret or None
        )
    except outbound.Refused as refusal:
        return error_response(403, "outbound_refused", str(refusal))
    except relay.InvalidKey as exc:
        return error_response(422, "invalid_key", str(exc))
    except ValueError as exc:
        return error_response(422, "invalid_target", str(exc))
    return relay.attempt_document(attempt), 201


@bp.get("/captures/<int:capture_id>/attempts")
def relay_attempts(capture_id: int):
    """Forwards and replays made from a capture, oldest first."""
    _capture(capture_id)
    return {"attempts": [relay.attempt_document(a) for a in relay.attempts(capture_id)]}


# Stats and exports


@bp.get("/inboxes/<slug>/stats")
def stats(slug: str):
    inbox = _inbox(slug)
    by_type: dict[str, dict] = {}
    for event_type, verdict, n in storage.count_rows(inbox.id):
        entry = by_type.setdefault(event_type, {"total": 0, "verdicts": {}})
        entry["total"] += n
        entry["verdicts"][verdict] = n
    since = storage.utcnow().replace(second=0, microsecond=0) - timedelta(minutes=59)
    if db.session.get_bind().dialect.name == "postgresql":
        minute = func.to_char(Capture.received_at, "YYYY-MM-DD HH24:MI")
    else:  # SQLite keeps "YYYY-MM-DD HH:MM:SS.ffffff" text
        minute = func.substr(Capture.received_at, 1, 16)
    rows = db.session.execute(
        select(minute, func.count())
        .where(Capture.inbox_id == inbox.id, Capture.received_at >= since)
        .group_by(minute)
    ).all()
    seen = dict(rows)
    per_minute = []
    for i in range(60):
        moment = since + timedelta(minutes=i)
        label = moment.strftime("%Y-%m-%d %H:%M")
        per_minute.append({"minute": label.replace(" ", "T") + "Z", "captures": seen.get(label, 0)})
    return {
        "inbox": inbox.slug,
        "total": sum(entry["total"] for entry in by_type.values()),
        "event_types": by_type,
        "per_minute": per_minute,
    }


@bp.get("/inboxes/<slug>/export")
def export(slug: str):
    """The whole inbox as NDJSON, CSV or HAR 1.2, streamed in constant memory."""
    inbox = _inbox(slug)
    kind = request.args.get("format", "ndjson")
    if kind not in exports.FORMATS:
        abort(400, description=f"format must be one of {', '.join(exports.FORMATS)}.")
    mimetype, extension, writer = exports.FORMATS[kind]
    base_url = request.url_root  # with a proxy's path prefix, as senders address it
    response = Response(stream_with_context(writer(inbox, base_url)), mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{inbox.slug}.{extension}"'
    return response


@bp.get("/openapi.json")
def openapi_document():
    """The OpenAPI 3.1 description of this API."""
    return openapi.document(server=request.script_root or "/")
