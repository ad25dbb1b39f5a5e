"""Requests as they arrived on the wire, under gunicorn.

WSGI hands an app upper-cased names with repeated headers joined by commas,
which is exactly what users of webhook inspectors complain about. gunicorn
parses the header block itself; this wraps that parse to remember each
header's original name in order, and passes the list to the app in the
environ as `receiver.raw_headers` (and a chunked body's trailer fields, once
read), headers gunicorn keeps from the app (names with `_`) included.
gunicorn's own checks and policies still decide what is accepted, but for raw
non-ASCII bytes in the request target (see TARGET_INVALID); a `#` in the
target is kept as an ordinary character (see _target_with_hash). It also gives
gunicorn an access logger that escapes what it writes. Installed from
gunicorn.conf.py.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

ENVIRON_KEY = "receiver.raw_headers"
# A chunked body may end with trailer fields, known only once the body is read:
# this environ entry is a function that gives them then (original names, in order).
TRAILERS_KEY = "receiver.raw_trailers"
# True when the request target held a `#`, kept as part of the path or query
# string (see _target_with_hash); the capture notes it.
HASH_KEY = "receiver.target_hash"


def _wire_headers(data: bytes, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Every header line of `data` in order, with its original name: gunicorn's
    value where it kept the header, the value as sent where it dropped it (a
    name with `_`, which WSGI cannot tell from `-`, so gunicorn keeps it from
    the app; the capture still shows it)."""
    parsed = iter(headers)
    pending = next(parsed, None)
    named = []
    for line in data.split(b"\r\n"):
        if not line or line[:1] in (b" ", b"\t") or b":" not in line:
            continue
        raw_name, _, raw_value = line.partition(b":")
        name = raw_name.rstrip(b" \t").decode("latin-1")
        if pending is not None and pending[0] == name.upper():
            named.append((name, pending[1]))
            pending = next(parsed, None)
        else:
            named.append((name, raw_value.strip(b" \t").decode("latin-1")))
    while pending is not None:  # pragma: no cover - every kept header has its line
        named.append(pending)
        pending = next(parsed, None)
    return named


# gunicorn refuses a request line whose target holds a byte outside printable
# ASCII (RFC 9112 wants it percent-encoded), and logs it, query and all. curl
# sends a pasted `?name=José` as raw UTF-8: those bytes are taken too, so the
# delivery is captured as sent. Spaces and control characters stay refused.
TARGET_INVALID = re.compile(r"[^\x21-\x7e\x80-\xff]")


def _path_info(path: str) -> str:
    """PATH_INFO for a path with raw non-ASCII bytes (as Latin-1 text):
    gunicorn's unquoting would encode those as UTF-8 a second time."""
    return unquote_to_bytes(path.encode("latin-1")).decode("latin-1")


def origin_form(uri: str) -> str:
    """A request target without the scheme and host of its absolute form
    (`http://host/p?q` is `/p?q`), every other character kept, `#` included."""
    if uri.startswith("/"):
        return uri
    after = uri.partition("://")[2]
    cut = min((i for i in (after.find("/"), after.find("?")) if i >= 0), default=len(after))
    return after[cut:]


def _target_with_hash(uri: str) -> tuple[str, str]:
    """(path, query string) of a request target holding a `#`, which is kept as
    an ordinary character: the path runs up to the first `?`, the query string
    is all after it. gunicorn splits the target as a URL, which takes the `#`
    and all after it for a fragment, and WSGI drops the fragment."""
    path, _, query = origin_form(uri).partition("?")
    return path, query


def install() -> None:
    from gunicorn.http import errors, message, wsgi

    if getattr(message.Message.parse_headers, "_receiver", False):
        return
    message.RFC9112_TARGET_INVALID = TARGET_INVALID
    parse_headers = message.Message.parse_headers
    create = wsgi.create

    def parse_with_names(self, data, from_trailer=False):
        headers = parse_headers(self, data, from_trailer)
        named = _wire_headers(data, headers)
        if len(named) > self.limit_request_fields > 0:
            # gunicorn counts only the headers it keeps; the capture keeps all.
            raise errors.LimitRequestHeaders("limit request headers fields")
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
        if req.fragment and (req.uri.startswith("/") or "://" in req.uri):
            # A `#` sent in the target: part of the path or query, as sent.
            path, environ["QUERY_STRING"] = _target_with_hash(req.uri)
            script_name = environ.get("SCRIPT_NAME", "")
            if script_name and path.startswith(script_name):
                path = path[len(script_name) :]
            environ["PATH_INFO"] = _path_info(path)
            environ[HASH_KEY] = True
        elif not req.path.isascii() and not environ.get("SCRIPT_NAME"):
            environ["PATH_INFO"] = _path_info(req.path)
        return resp, environ

    parse_with_names._receiver = True
    message.Message.parse_headers = parse_with_names
    wsgi.create = create_with_names


# Characters that would let a request path (or any value) forge or break an
# access log line: control characters (C0, DEL, C1 such as U+0085), Unicode's
# line and paragraph separators, and the backslash (gunicorn escapes quotes).
_LOG_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\\]")


def _log_escape(match: re.Match[str]) -> str:
    char = match.group()
    if char == "\\":
        return "\\\\"
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


def access_logger_class():
    """gunicorn's logger, with every access-log value escaped (see _LOG_UNSAFE):
    `/x%0D%0Aat=access` must not write a second, forged line."""
    from gunicorn.glogging import Logger

    class AccessLogger(Logger):
        def atoms(self, resp, req, environ, request_time):
            atoms = super().atoms(resp, req, environ, request_time)
            for name, value in atoms.items():
                if isinstance(value, str) and _LOG_UNSAFE.search(value):
                    atoms[name] = _LOG_UNSAFE.sub(_log_escape, value)
            return atoms

    return AccessLogger
