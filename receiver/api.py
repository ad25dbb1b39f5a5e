"""The JSON API under /api."""

from __future__ import annotations

import base64
from urllib.parse import quote

from flask import Blueprint, Response, abort

from . import present
from .capture import body_text
from .extensions import csrf, db
from .models import Capture, Inbox

bp = Blueprint("api", __name__, url_prefix="/api")
csrf.exempt(bp)


def iso(moment) -> str:
    return moment.isoformat(timespec="microseconds") + "Z"


def capture_document(capture: Capture, inbox: Inbox) -> dict:
    """Everything stored about a capture. The secrettoken is already masked."""
    detail = capture.detail
    return {
        "id": capture.id,
        "inbox": inbox.slug,
        "received_at": iso(capture.received_at),
        "method": capture.method,
        "path": capture.path,
        "subpath": capture.subpath,
        "query_string": capture.query_string.decode("latin-1"),
        "headers": capture.header_list,
        "content_type": capture.content_type,
        "content_length": capture.content_length,
        "remote_addr": capture.remote_addr,
        "body_base64": base64.b64encode(capture.body).decode("ascii"),
        "body_text": body_text(capture.body),
        "params": [
            {"source": source, "name": name, "value": value}
            for source, name, value in capture.param_list
        ],
        "parts": detail["parts"],
        "notes": detail["notes"],
        "event_type": capture.event_type,
        "code": capture.code,
        "user": capture.user,
        "findings": detail["findings"],
        "finding_count": capture.finding_count,
        "secret": {
            "verdict": capture.verdict,
            "label": capture.secret_label,
            "fingerprint": capture.secret_fingerprint,
        },
        "rejected": capture.rejected,
        "duplicate_of": capture.duplicate_of,
    }


@bp.get("/captures/<int:capture_id>")
def get_capture(capture_id: int):
    capture = db.get_or_404(Capture, capture_id, description="No capture with that id.")
    return capture_document(capture, db.session.get(Inbox, capture.inbox_id))


def _attachment(data: bytes, mimetype: str, filename: str) -> Response:
    """Captured bytes as a download: never rendered by the browser."""
    response = Response(data, mimetype=mimetype or "application/octet-stream")
    response.headers["Content-Disposition"] = _disposition(filename)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


def _disposition(filename: str) -> str:
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in filename)[:100] or "download"
    return f"attachment; filename=\"{safe}\"; filename*=UTF-8''{quote(filename[:100])}"


@bp.get("/captures/<int:capture_id>/raw")
def raw_body(capture_id: int):
    """The exact stored bytes with the original content type, as an attachment."""
    capture = db.get_or_404(Capture, capture_id, description="No capture with that id.")
    return _attachment(capture.body, capture.content_type, f"capture-{capture.id}.bin")


@bp.get("/captures/<int:capture_id>/parts/<int:index>")
def part(capture_id: int, index: int):
    """One multipart part's bytes, as an attachment."""
    capture = db.get_or_404(Capture, capture_id, description="No capture with that id.")
    for described in capture.detail["parts"]:
        if described["index"] == index:
            data = present.part_bytes(capture, index)
            if data is None:
                break
            name = described["filename"] or f"{described['name']}.txt"
            return _attachment(data, described["content_type"], name)
    abort(404, description="No such part in this capture.")
