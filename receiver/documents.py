"""The JSON shapes of inboxes, secrets and captures, shared by the API and exports."""

from __future__ import annotations

import base64

from flask import url_for

from . import inboxes, storage
from .capture import body_text
from .models import Capture, Inbox


def iso(moment) -> str:
    return moment.isoformat(timespec="microseconds") + "Z"


def inbox_document(inbox: Inbox, total: int | None = None) -> dict:
    if total is None:
        total = storage.inbox_totals().get(inbox.id, 0)
    return {
        **inboxes.settings(inbox),
        "capture_url": url_for("hooks.capture", inbox=inbox.slug, _external=True),
        "captures": total,
        "created_at": iso(inbox.created_at),
        "secrets": [secret_document(s) for s in inboxes.secrets_of(inbox)],
    }


def secret_document(secret) -> dict:
    return {
        "id": secret.id,
        "label": secret.label,
        "user": secret.user,
        "fingerprint": secret.fingerprint,
        "created_at": iso(secret.created_at),
    }


def capture_summary(capture: Capture) -> dict:
    return {
        "id": capture.id,
        "received_at": iso(capture.received_at),
        "method": capture.method,
        "event_type": capture.event_type,
        "code": capture.code,
        "user": capture.user,
        "verdict": capture.verdict,
        "secret_label": capture.secret_label,
        "content_length": capture.content_length,
        "rejected": capture.rejected,
        "answered_status": capture.answered_status,
        "finding_count": capture.finding_count,
        "duplicate_of": capture.duplicate_of,
    }


def capture_document(capture: Capture, inbox: Inbox) -> dict:
    """Everything stored about a capture. The secrettoken is already masked."""
    detail = capture.detail
    return {
        "id": capture.id,
        "inbox": inbox.slug,
        "received_at": iso(capture.received_at),
        "method": capture.method,
        "path": capture.path,
        "raw_path": capture.raw_path,
        "subpath": capture.subpath,
        # latin-1 maps each byte to one character: `.encode("latin-1")` gives the bytes back.
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
        "answered_status": capture.answered_status,
        "duplicate_of": capture.duplicate_of,
    }
