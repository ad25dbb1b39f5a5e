"""The JSON API under /api."""

from __future__ import annotations

import base64

from flask import Blueprint

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
