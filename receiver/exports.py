"""Exports of a whole inbox: NDJSON, CSV and HAR 1.2, streamed.

Captures are read in id order, a batch at a time, so an inbox of any size
exports in constant memory; each writer yields text as it goes.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Iterator
from urllib.parse import quote

from sqlalchemy import select

from .capture import URL_SAFE, body_text
from .documents import capture_document
from .extensions import db
from .models import Capture, Inbox

BATCH = 500


def _batches(inbox: Inbox, *columns) -> Iterator[list]:
    """Captures of an inbox, oldest first, by id cursor (no OFFSET)."""
    after = 0
    while True:
        rows = db.session.execute(
            select(Capture.id, *columns)
            .where(Capture.inbox_id == inbox.id, Capture.id > after)
            .order_by(Capture.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        yield rows
        after = rows[-1][0]
        db.session.expunge_all()


def _captures(inbox: Inbox) -> Iterator[Capture]:
    for rows in _batches(inbox, Capture):
        for _id, capture in rows:
            yield capture


def ndjson(inbox: Inbox, base_url: str) -> Iterator[str]:
    for capture in _captures(inbox):
        document = capture_document(capture, inbox)
        document.pop("body_text")
        yield json.dumps(document, ensure_ascii=False) + "\n"


def _csv_line(values: list) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow([_inert(value) for value in values])
    return buffer.getvalue()


def _inert(value):
    """A sender's `=HYPERLINK(...)` must stay text when the CSV is opened in a spreadsheet."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


FIXED = ["capture_id", "received_at", "method", "path", "event_type", "verdict"]


def csv_rows(inbox: Inbox, base_url: str) -> Iterator[str]:
    """One row per capture, one column per parameter name seen; a parameter
    sent more than once has its values one per line in its cell."""
    names: dict[str, None] = {}
    for rows in _batches(inbox, Capture.params):
        for _id, params in rows:
            for _source, name, _value in json.loads(params):
                names.setdefault(name, None)
    # A parameter named like a fixed column gets a prefix instead of a duplicate header.
    yield _csv_line(FIXED + [f"param:{n}" if n in FIXED else n for n in names])
    for capture in _captures(inbox):
        values: dict[str, list[str]] = {}
        for _source, name, value in capture.param_list:
            values.setdefault(name, []).append(value)
        fixed = [
            capture.id,
            capture.received_at.isoformat() + "Z",
            capture.method,
            capture.path,
            capture.event_type,
            capture.verdict,
        ]
        yield _csv_line(fixed + ["\n".join(values.get(name, ())) for name in names])


def har(inbox: Inbox, base_url: str) -> Iterator[str]:
    """HAR 1.2 (binary bodies base64-encoded, as browsers write them)."""
    creator = {"name": "webhook-receiver", "version": "1"}
    yield '{"log": {"version": "1.2", "creator": ' + json.dumps(creator) + ', "entries": ['
    first = True
    for capture in _captures(inbox):
        yield ("" if first else ",") + json.dumps(_har_entry(capture, base_url), ensure_ascii=False)
        first = False
    yield "]}}\n"


def _har_headers(capture: Capture) -> list[dict]:
    """The headers as received, but a Content-Length that no longer matches the
    stored body (a masked key changed its length) gives the stored length, so
    a replay from the HAR sends a consistent request; the comment says so."""
    stored = str(len(capture.body))
    headers = []
    for name, value in capture.header_list:
        header = {"name": name, "value": value}
        if name.lower() == "content-length" and value.strip() != stored:
            header["value"] = stored
            header["comment"] = f"{value} as received; the stored body has its key masked"
        headers.append(header)
    return headers


def _har_entry(capture: Capture, base_url: str) -> dict:
    # The URL as sent: the path's own percent-encoding, and the query's bytes
    # with anything but printable ASCII escaped, so the URL stays valid.
    query = quote(capture.query_string, safe=URL_SAFE)
    path = quote(capture.raw_path, safe=URL_SAFE)  # raw UTF-8 in it, as %XX
    url = base_url.rstrip("/") + path + (f"?{query}" if query else "")
    request = {
        "method": capture.method,
        "url": url,
        "httpVersion": "HTTP/1.1",
        "cookies": [],
        "headers": _har_headers(capture),
        "queryString": [
            {"name": n, "value": v} for source, n, v in capture.param_list if source == "get"
        ],
        "headersSize": -1,
        "bodySize": len(capture.body),
    }
    if capture.body:
        text = body_text(capture.body)
        post = {"mimeType": capture.content_type}
        if text is None:
            post["text"] = base64.b64encode(capture.body).decode("ascii")
            post["encoding"] = "base64"
        else:
            post["text"] = text
        request["postData"] = post
    return {
        "startedDateTime": capture.received_at.isoformat(timespec="milliseconds") + "Z",
        "time": 0,
        "request": request,
        "response": {
            "status": capture.answered_status,
            "statusText": "",
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": [],
            "content": {"size": 0, "mimeType": ""},
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": -1,
        },
        "cache": {},
        "timings": {"send": 0, "wait": 0, "receive": 0},
        "comment": f"capture {capture.id}: {capture.event_type}, secret {capture.verdict}",
    }


FORMATS = {
    "ndjson": ("application/x-ndjson", "ndjson", ndjson),
    "csv": ("text/csv", "csv", csv_rows),
    "har": ("application/json", "har", har),
}
