"""Requests as they arrived on the wire, under gunicorn.

WSGI hands an app upper-cased names with repeated headers joined by commas,
which is exactly what users of webhook inspectors complain about. gunicorn
parses the header block itself; this wraps that parse to remember each
header's original name in order, and passes the list to the app in the
environ as `receiver.raw_headers` (and a chunked body's trailer fields, once
read). gunicorn's own checks and policies still decide what is accepted, but
for raw non-ASCII bytes in the request target (see TARGET_INVALID).
Installed from gunicorn.conf.py.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

ENVIRON_KEY = "receiver.raw_headers"
# A chunked body may end with trailer fields, known only once the body is read:
# this environ entry is a function that gives them then (original names, in order).
TRAILERS_KEY = "receiver.raw_trailers"


def _original_names(data: bytes) -> dict[str, list[str]]:
    names: dict[str, list[str]] = {}
    for line in data.split(b"\r\n"):
        if not line or line[:1] in (b" ", b"\t") or b":" not in line:
            continue
        name = line.split(b":", 1)[0].rstrip(b" \t").decode("latin-1")
        names.setdefault(name.upper(), []).append(name)
    return names


# gunicorn refuses a request line whose target holds a byte outside printable
# ASCII (RFC 9112 wants it percent-encoded), and logs it, query and all. curl
# sends a pasted `?name=José` as raw UTF-8: those bytes are taken too, so the
# delivery is captured as sent. Spaces and control characters stay refused.
TARGET_INVALID = re.compile(r"[^\x21-\x7e\x80-\xff]")


def _path_info(path: str) -> str:
    """PATH_INFO for a path with raw non-ASCII bytes (as Latin-1 text):
    gunicorn's unquoting would encode those as UTF-8 a second time."""
    return unquote_to_bytes(path.encode("latin-1")).decode("latin-1")


def install() -> None:
    from gunicorn.http import message, wsgi

    if getattr(message.Message.parse_headers, "_receiver", False):
        return
    message.RFC9112_TARGET_INVALID = TARGET_INVALID
    parse_headers = message.Message.parse_headers
    create = wsgi.create

    def parse_with_names(self, data, from_trailer=False):
        headers = parse_headers(self, data, from_trailer)
        originals = _original_names(data)
        named = [((originals.get(name) or [name]).pop(0), value) for name, value in headers]
        if from_trailer:
            self.receiver_raw_trailers = named
        else:
            self.receiver_raw_headers = named
        return headers

    def create_with_names(req, *args, **kwargs):
        resp, environ = create(req, *args, **kwargs)
        raw = getattr(req, "receiver_raw_headers", None)
        if raw is not None:
            environ[ENVIRON_KEY] = raw
            environ[TRAILERS_KEY] = lambda: getattr(req, "receiver_raw_trailers", [])
        if not req.path.isascii() and not environ.get("SCRIPT_NAME"):
            environ["PATH_INFO"] = _path_info(req.path)
        return resp, environ

    parse_with_names._receiver = True
    message.Message.parse_headers = parse_with_names
    wsgi.create = create_with_names
