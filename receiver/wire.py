"""Headers as they arrived on the wire, under gunicorn.

WSGI hands an app upper-cased names with repeated headers joined by commas,
which is exactly what users of webhook inspectors complain about. gunicorn
parses the header block itself; this wraps that parse to remember each
header's original name in order, and passes the list to the app in the
environ as `receiver.raw_headers`. gunicorn's own checks and policies still
decide what is accepted. Installed from gunicorn.conf.py.
"""

from __future__ import annotations

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


def install() -> None:
    from gunicorn.http import message, wsgi

    if getattr(message.Message.parse_headers, "_receiver", False):
        return
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
        return resp, environ

    parse_with_names._receiver = True
    message.Message.parse_headers = parse_with_names
    wsgi.create = create_with_names
