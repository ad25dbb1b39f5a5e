"""Capture: turn an incoming request into data, exactly as it arrived.

Nothing here touches the database or decides what a delivery means; it reads
bytes and says what they contain (httpbin's approach, made binary-safe). Every
parse that can fail records why instead of raising: a sender's malformed body
is something to show, not an error of ours.
"""

from __future__ import annotations

import gzip
import itertools
import json
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote, unquote_to_bytes

import brotli
import zstandard
from werkzeug.datastructures import Headers
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from . import wire

try:  # how gunicorn reports a malformed chunked body
    from gunicorn.http.errors import ParseException as _FramingError
except ImportError:  # pragma: no cover - another server
    _FramingError = ValueError

# Where a parameter came from, named as the platform's test script reads them.
FORM, QUERY, JSON_BODY = "post", "get", "json"

# Bounds on work a body can cause; the body itself is already capped by
# MAX_CONTENT_LENGTH while it is read.
MAX_DECODED_FACTOR = 20  # a compressed body may inflate to 20x the body limit, no more
MAX_FORM_PARTS = 100_000
MULTIPART_PIECE = 256 * 1024

JSON_TYPES = ("application/json", "text/json")

# Parameter values longer than this are stored cut (marked, with a note); the
# raw body keeps every byte and is downloadable whole.
STORED_VALUE_MAX = 64 * 1024

# json.dumps(value, ensure_ascii=False), without building an encoder per call.
json_text = json.JSONEncoder(ensure_ascii=False).encode


@dataclass
class Part:
    """One multipart part: a field, or a file downloadable later from the stored body."""

    index: int
    name: str
    filename: str | None
    content_type: str
    size: int


@dataclass
class Body:
    """What a body contains, derived from its bytes; the same reading serves
    capture time and later views (file downloads re-read the stored body)."""

    decoded: bytes  # after Content-Encoding, or the raw bytes
    mimetype: str
    form: list[tuple[str, str]] = field(default_factory=list)
    parts: list[Part] = field(default_factory=list)
    # part index -> its exact bytes (a bytearray: one copy of a large file, not two)
    files: dict[int, bytes | bytearray] = field(default_factory=dict)
    json: object = None
    has_json: bool = False
    json_plain: bool = False  # see read_json
    # A body in UTF-16 or UTF-32 (JSON, or text with a byte-order mark): its
    # codec, else None. Keys in it are masked as text, not as bytes.
    wide_encoding: str | None = None
    notes: dict[str, str] = field(default_factory=dict)  # parse problems, by topic
    # gzip or deflate data that could not be decoded: `decoded` is the raw bytes.
    still_encoded: bool = False
    # The compressed data was cut short or broken: `decoded` is what could be read.
    decoded_partly: bool = False
    # Bytes after the end of the compressed data (not part of it).
    after_coded: bytes = b""


@dataclass
class Reading:
    """A request, read: the record a capture is made from."""

    method: str
    path: str
    raw_path: str  # as sent, percent-encoding kept
    subpath: str
    query_string: bytes
    headers: list[tuple[str, str]]
    raw_body: bytes
    content_type: str
    content_encoding: str
    remote_addr: str
    received_at: datetime
    body: Body
    query: list[tuple[str, str]]
    params: list[tuple[str, str, str]]  # (source, name, value), platform order

    def values(self) -> dict[str, list[str]]:
        """Every value received per parameter name, first one first."""
        grouped: dict[str, list[str]] = {}
        for _source, name, value in self.params:
            grouped.setdefault(name, []).append(value)
        return grouped


def read_request(request, subpath: str, received_at: datetime | None = None) -> Reading:
    """Read a Flask request once, as bytes, and everything that follows from them.

    `request.form` and `request.files` are never touched: they would consume
    the stream and apply Flask's own limits and decoding.
    """
    received_at = received_at or datetime.now(UTC).replace(tzinfo=None)
    raw = read_raw_body(request.environ, request.max_content_length)
    headers = wire_headers(request.environ, request.headers)
    trailers = request.environ.get(wire.TRAILERS_KEY, list)()
    content_type = request.headers.get("Content-Type", "")
    # Codings still on the bytes as read: the content codings, then transfer
    # codings but chunked (the server undid only that one).
    transfer = _transfer_codings(request.headers.get("Transfer-Encoding", ""))
    content_encoding = ", ".join(
        filter(None, [request.headers.get("Content-Encoding", ""), *transfer])
    )
    body = read_body(
        raw,
        content_type,
        content_encoding,
        limit=(request.max_content_length or len(raw) or 1) * MAX_DECODED_FACTOR,
    )
    if transfer:
        body.notes["transfer"] = (
            f"Transfer-Encoding {', '.join(transfer)} is read as a content coding "
            "would be; the bytes are kept as received."
        )
    if trailers:
        names = ", ".join(dict.fromkeys(name for name, _value in trailers))
        body.notes["trailers"] = (
            f"{len(trailers)} trailer field(s) came after the chunked body ({names}); "
            "listed last among the headers."
        )
        headers += trailers
    if request.environ.get(wire.HASH_KEY):
        body.notes["target"] = (
            "The request target held a '#', which a URL sent over HTTP may not; "
            "it was kept as part of the path or query string, as sent."
        )
    query = parse_pairs(request.query_string)
    params = merge_params(body, query)
    if _replaced_bytes(params, body.decoded, request.query_string):
        body.notes["utf8"] = (
            "Some parameter bytes are not UTF-8 (a Latin-1 %FC for ü, say): they are "
            "shown as �; the raw body and query string keep them as sent."
        )
    sent_path = raw_path(request.environ, request.path)
    if _raw_bytes_escaped(request.environ):
        body.notes["path"] = (
            "The path held raw bytes that are not UTF-8: the raw path shows them as %XX "
            "(as if the sender had written them so), the decoded path as �."
        )
    return Reading(
        method=request.method,
        path=request.path,
        raw_path=sent_path,
        subpath=subpath,
        query_string=request.query_string,
        headers=headers,
        raw_body=raw,
        content_type=content_type,
        content_encoding=content_encoding,
        remote_addr=request.remote_addr or "",
        received_at=received_at,
        body=body,
        query=query,
        params=params,
    )


_REPLACEMENT = "\ufffd"
_REPLACEMENT_SENT = re.compile(rb"\xef\xbf\xbd|%ef%bf%bd|\\ufffd", re.IGNORECASE)


def _replaced_bytes(params, body: bytes, query: bytes) -> bool:
    """Whether reading the parameters as UTF-8 replaced bytes that are not
    (U+FFFD in a value, and not sent as such)."""
    if not any(_REPLACEMENT in name or _REPLACEMENT in value for _s, name, value in params):
        return False
    return not (_REPLACEMENT_SENT.search(body) or _REPLACEMENT_SENT.search(query))


def _transfer_codings(transfer_encoding: str) -> list[str]:
    return [
        coding
        for coding in (c.strip().lower() for c in transfer_encoding.split(","))
        if coding and coding != "chunked"
    ]


_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")  # a byte surrogateescape could not read

# Printable ASCII: what a URL may hold as is; anything else in one goes %XX.
URL_SAFE = "".join(map(chr, range(0x21, 0x7F)))


def raw_path(environ, path: str) -> str:
    """The path exactly as the request line had it (gunicorn's RAW_URI)."""
    uri = environ.get("RAW_URI") or environ.get("REQUEST_URI") or ""
    if "://" in uri.split("?", 1)[0]:  # absolute-form request target
        uri = wire.origin_form(uri)
    uri = uri.split("?", 1)[0]
    if not uri.isascii():  # raw bytes (Latin-1 text in WSGI), which senders write in UTF-8
        # Bytes that are not UTF-8 are written %XX, so none is lost.
        uri = _ESCAPED_BYTE.sub(
            lambda m: f"%{ord(m.group()) - 0xDC00:02X}",
            uri.encode("latin-1").decode("utf-8", "surrogateescape"),
        )
    return uri if uri.startswith("/") else quote(path)


def _raw_bytes_escaped(environ) -> bool:
    """Whether raw_path had to write raw bytes of the path as %XX."""
    uri = (environ.get("RAW_URI") or environ.get("REQUEST_URI") or "").split("?", 1)[0]
    if uri.isascii():
        return False
    try:
        uri.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return True
    return False


def read_raw_body(environ, limit: int | None) -> bytes:
    """The body's bytes, refused with 413 as soon as they pass `limit`, and
    with 400 when they cannot be read whole: a malformed chunked body, or a
    connection that ends before Content-Length bytes came. A body is never
    stored cut.

    Werkzeug's own limited stream stops quietly at the limit for a chunked
    body; this reads one byte past it so an oversized body is never stored cut.
    """
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH", "")
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    if length.isascii() and length.isdigit() and not chunked:
        size = int(length)
        if limit is not None and size > limit:
            raise RequestEntityTooLarge()
        data = _read_exactly(stream, size)
        if len(data) < size:
            raise BadRequest(
                f"The body ended after {len(data)} of the {size} bytes its Content-Length "
                "announced; nothing was stored."
            )
        return data
    if not environ.get("wsgi.input_terminated"):
        # A server that does not terminate the stream may block forever on it.
        return b""
    cap = None if limit is None else limit + 1
    data = _read_exactly(stream, cap)
    if limit is not None and len(data) > limit:
        raise RequestEntityTooLarge()
    return data


def _read_exactly(stream, size: int | None) -> bytes:
    chunks = []
    remaining = size
    while remaining is None or remaining > 0:
        try:
            chunk = stream.read(65536 if remaining is None else min(65536, remaining))
        except OSError as exc:  # the connection ended early (gunicorn's NoMoreData)
            raise BadRequest(
                "The connection ended before the whole body arrived; nothing was stored."
            ) from exc
        except _FramingError as exc:  # InvalidChunkSize, ChunkMissingTerminator, ...
            raise BadRequest(
                f"The chunked body is malformed ({type(exc).__name__}); nothing was stored."
            ) from exc
        if not chunk:
            break
        chunks.append(chunk)
        if remaining is not None:
            remaining -= len(chunk)
    return b"".join(chunks)


def wire_headers(environ, headers: Headers) -> list[tuple[str, str]]:
    """Headers in arrival order with repeats kept.

    Under gunicorn (see receiver/wire.py) the list as received, original case
    included, is in the environ; elsewhere WSGI has already folded names to
    Title-Case and joined repeats, which is the best that can be recovered.
    """
    raw = environ.get(wire.ENVIRON_KEY)
    if raw is not None:
        return list(raw)
    return list(headers.items())


def _note_declared_charset(body: Body, charset: str) -> None:
    """Forms are read as UTF-8 (see parse_pairs); one declaring another charset
    whose bytes are not UTF-8 is told so, rather than shown with silent U+FFFD."""
    if charset.lower() in ("", "utf-8", "utf8", "us-ascii", "ascii"):
        return
    if any("\ufffd" in name or "\ufffd" in value for name, value in body.form):
        body.notes["charset"] = (
            f"The body declares charset={charset}, but form values are read as UTF-8: "
            "bytes that are not UTF-8 are shown as \ufffd (the raw body keeps them)."
        )


def read_body(raw: bytes, content_type: str, content_encoding: str, limit: int) -> Body:
    mimetype, options = parse_options_header(content_type)
    mimetype = mimetype.lower()  # media types are case-insensitive (RFC 9110)
    body = Body(decoded=raw, mimetype=mimetype)
    body.decoded = _decode(raw, content_encoding, limit, body)
    if body.still_encoded and raw[:2] == b"\x1f\x8b":
        # gzip data none of which could be read: as a form or JSON it is noise.
        # (Other bytes are parsed still: a mislabelled plain body may hold a key.)
        return body
    if mimetype == "application/x-www-form-urlencoded":
        body.form = parse_pairs(body.decoded)
        _note_declared_charset(body, options.get("charset", ""))
    elif mimetype == "multipart/form-data":
        _read_multipart(body, options)
    _read_json(body)
    if body.wide_encoding is None:
        body.wide_encoding = _bom_encoding(body.decoded)
    return body


def _bom_encoding(data: bytes) -> str | None:
    """utf-16 or utf-32 when the data starts with its byte-order mark and reads
    as text in it. (json.detect_encoding names these two only from a mark.)"""
    encoding = json.detect_encoding(data[:4])
    if encoding not in ("utf-16", "utf-32"):
        return None
    try:
        data.decode(encoding, "surrogatepass")
    except UnicodeDecodeError:
        return None
    return encoding


def _decode(raw: bytes, content_encoding: str, limit: int, body: Body) -> bytes:
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    if not codings or codings == ["identity"]:
        return raw
    notes = body.notes
    data = raw
    # Codings are listed in the order they were applied; undo them in reverse.
    for coding in reversed(codings):
        if coding in ("gzip", "x-gzip"):
            tries = [16 + zlib.MAX_WBITS]
        elif coding == "deflate":
            # RFC 9110 deflate is zlib-wrapped, but many senders send raw deflate.
            tries = [zlib.MAX_WBITS, -zlib.MAX_WBITS]
            if data[:1] != b"\x78":
                tries.reverse()
        elif coding in ("br", "zstd"):
            tries = [None]
        elif coding == "identity":
            continue
        else:
            notes["encoding"] = f"Content-Encoding {coding!r} is not decoded; shown as received."
            return raw
        out = None
        for wbits in tries:  # the next only when zlib refuses the data from its start
            try:
                if coding == "br":
                    out = _unbrotli(data, limit, body, outermost=data is raw)
                elif coding == "zstd":
                    out = _unzstd(data, limit, body, outermost=data is raw)
                else:
                    out = _inflate(data, wbits, coding, limit, body, outermost=data is raw)
                break
            except (zlib.error, brotli.error, zstandard.ZstdError) as exc:
                notes["encoding"] = f"{coding} body could not be decoded ({exc}); kept as received."
        if out is None:
            body.still_encoded = True
            body.decoded_partly = False
            body.after_coded = b""
            return raw
        data = out
    return data


_INFLATE_STEP = (256, 1 << 20)  # input fed per call: first, and at most
GZIP_MEMBER_START = b"\x1f\x8b\x08"  # magic and deflate method: where a member may begin
GZIP_MEMBERS_MAX = 1000  # real senders send one; `cat`-ed files a few


def _inflate(data: bytes, wbits: int, coding: str, limit: int, body: Body, outermost: bool):
    """One coding undone, or None (with a note) when none of it can be read. A
    gzip body may hold several members, read one after another as `gzip -d` does.

    Input goes in growing pieces, so what zlib hands back unread after a
    member ends is a piece's rest, not the body's: a body of many tiny
    members costs time in proportion to its size.

    Data cut short or broken (a bad checksum too) is decoded as far as it can
    be read, and `body.decoded_partly` says so. Bytes after the end of the
    outermost coding's data are kept in `body.after_coded`.
    """
    notes = body.notes
    view = memoryview(data)
    members: list[bytes] = []
    size = pos = 0
    while pos < len(view):
        if len(members) == GZIP_MEMBERS_MAX:
            notes["encoding"] = (
                f"Decoded the first {GZIP_MEMBERS_MAX:,} gzip members only; the raw body "
                "keeps the rest."
            )
            body.decoded_partly = True
            return b"".join(members)
        start, out, step = pos, [], _INFLATE_STEP[0]
        inflater = zlib.decompressobj(wbits)
        error = None
        while not inflater.eof and pos < len(view):
            piece = view[pos : pos + step]
            before = inflater.copy()
            try:
                produced = inflater.decompress(piece, limit - size + 1)
            except zlib.error as exc:
                # What this piece held before the fault is readable too.
                produced, error = _read_until_fault(before, piece, limit - size + 1), exc
            size += len(produced)
            if size > limit or (error is None and inflater.unconsumed_tail):
                return _too_large(body, limit)
            out.append(produced)
            if error is not None:
                break
            pos += len(piece) - len(inflater.unused_data)
            step = min(step * 2, _INFLATE_STEP[1])
        if error is None and inflater.eof:
            members.append(b"".join(out))
            if pos == len(view) or wbits <= zlib.MAX_WBITS:
                break  # deflate is one stream
            if view[pos : pos + 2] == b"\x1f\x8b":
                continue  # the next member
            found = data.find(GZIP_MEMBER_START, pos)
            if found < 0:
                break  # bytes after the data
            skipped = found - pos  # bytes between members that are not one: read past
        else:
            read = b"".join(out)
            found = data.find(GZIP_MEMBER_START, start + 1) if wbits > zlib.MAX_WBITS else -1
            if not read and start > 0 and found < 0:
                pos = start  # a later "member" none of which reads: bytes after the data
                break
            if not read and start == 0:
                return _unreadable(body, coding, error)
            _read_in_part(body, coding, error)
            members.append(read)
            if found < 0:
                body.decoded_partly = True
                return b"".join(members)
            skipped = 0
        # A member further on is read too (a key in it must be found and masked),
        # and what lay between is not kept when the body is stored again.
        body.decoded_partly = True
        notes.setdefault(
            "encoding",
            f"{skipped} byte(s) between gzip members are not part of one: read past them; "
            "the raw body keeps them.",
        )
        pos = found
    _set_apart(body, view, pos, coding, outermost)
    return b"".join(members)


def _too_large(body: Body, limit: int) -> None:
    body.notes["encoding"] = f"Decoded body exceeds {limit} bytes; kept as received, not decoded."
    return None


def _unreadable(body: Body, coding: str, error: BaseException | None) -> None:
    """None of the data could be read: the decoder's error, or a note that the
    data was cut short before any of it could be."""
    if error is not None:
        raise error
    body.notes["encoding"] = f"{coding} body is truncated; kept as received, not decoded."
    return None


def _read_in_part(body: Body, coding: str, error: BaseException | None) -> None:
    problem = f"broken ({error})" if error is not None else "truncated"
    body.notes["encoding"] = (
        f"{coding} body is {problem}: shown decoded as far as it could be read; "
        "the raw body is kept as received."
    )
    body.decoded_partly = True


def _set_apart(body: Body, view: memoryview, end: int, coding: str, outermost: bool) -> None:
    """Bytes after the end of the coded data at `end`, if any: said, and kept
    to store after the data again (not possible inside another coding)."""
    if end >= len(view):
        return
    body.notes["encoding"] = (
        f"{len(view) - end} byte(s) after the end of the {coding} data are not part of it: "
        "shown decoded without them; the raw body keeps them."
    )
    if outermost:
        body.after_coded = bytes(view[end:])
    else:  # inside another coding: a body stored again cannot keep them
        body.decoded_partly = True


def _read_until_fault(inflater, piece, room: int) -> bytes:
    """The output of `piece` up to the byte where zlib finds a fault; `inflater`
    is the state before the piece (it is used up)."""
    out: list[bytes] = []
    for at in range(0, len(piece), 64):
        chunk = piece[at : at + 64]
        before = inflater.copy()
        try:
            out.append(inflater.decompress(chunk, room))
        except zlib.error:
            for one in range(len(chunk)):
                try:
                    out.append(before.decompress(chunk[one : one + 1], room))
                except zlib.error:
                    break
            break
        if inflater.eof or inflater.unconsumed_tail:
            break
    return b"".join(out)


_BROTLI_STEP = (256, 64 * 1024)  # input fed per call: first, and at most


def _unbrotli(data: bytes, limit: int, body: Body, outermost: bool) -> bytes | None:
    """The br coding undone, or None (with a note) when none of it can be read;
    like `_inflate` for one deflate stream: data cut short or broken is decoded
    as far as it can be read, and bytes after the end of the data are set apart.

    brotli says neither where its data ended nor where a fault lies, only that
    a call failed: the piece that failed is gone over again a byte at a time.
    Pieces are kept small for that, and output is bounded per call, so a body
    that inflates past `limit` is stopped there.
    """
    view = memoryview(data)
    decoder = brotli.Decompressor()
    out: list[bytes] = []
    pos, step, size = 0, _BROTLI_STEP[0], 0
    end = error = None
    while pos < len(view) and not decoder.is_finished():
        piece = view[pos : pos + step]
        try:
            produced = _brotli_feed(decoder, piece, limit - size + 1)
        except brotli.error as exc:
            # The failed decoder is done for: a new one reads everything again.
            read, end, error = _brotli_until_fault(view, pos, len(piece), limit + 1)
            if end is None and error is None:
                error = exc  # the piece failed as a whole only (not seen)
            out, size = [read], len(read)
        else:
            out.append(produced)
            size += len(produced)
        if size > limit:
            return _too_large(body, limit)
        if error is not None or end is not None:
            break
        pos += len(piece)
        step = min(step * 2, _BROTLI_STEP[1])
    if end is None and error is None and decoder.is_finished():
        end = pos
    read = b"".join(out)
    if end is not None:
        _set_apart(body, view, end, "br", outermost)
        return read
    if not read:
        return _unreadable(body, "br", error)
    _read_in_part(body, "br", error)
    return read


def _brotli_feed(decoder, piece, room: int) -> bytes:
    """All the output of one piece of input, stopping once it passes `room`.
    brotli hands out a bounded amount per call and holds the rest back (even
    with no limit asked for): it is drained with empty input."""
    out = [decoder.process(piece, output_buffer_limit=room)]
    size = len(out[0])
    while size < room:
        more = decoder.process(b"", output_buffer_limit=room - size)
        if not more:
            break
        out.append(more)
        size += len(more)
    return b"".join(out)


def _brotli_until_fault(view, start: int, length: int, room: int):
    """All the output of the data up to the fault in the piece at `start`, or
    to the end of the data: (output, where the data ended or None, the error
    or None). A new decoder reads the data before the piece again, then the
    piece a byte at a time."""
    decoder = brotli.Decompressor()
    out = [_brotli_feed(decoder, view[:start], room)] if start else []
    size = len(out[0]) if out else 0
    if size >= room:
        return b"".join(out), None, None
    for at in range(start, start + length):
        try:
            out.append(_brotli_feed(decoder, view[at : at + 1], room - size))
        except brotli.error as exc:
            return b"".join(out), None, exc
        size += len(out[-1])
        if decoder.is_finished():
            return b"".join(out), at + 1, None
        if size >= room:
            break
    return b"".join(out), None, None


ZSTD_FRAME_START = b"\x28\xb5\x2f\xfd"  # a frame's magic number
_ZSTD_STEP = 512  # input per call: what it can expand to bounds a call's output


def _unzstd(data: bytes, limit: int, body: Body, outermost: bool) -> bytes | None:
    """The zstd coding undone, or None (with a note) when none of it can be
    read; like `_inflate` for gzip: every frame, one after another; data cut
    short or broken decoded as far as it can be (a block cut short cannot be:
    zstd decodes whole blocks); bytes after the last frame set apart.

    zstandard's decoder has no output limit per call, so input goes in small
    pieces: a few hundred bytes cannot describe more than a few MiB."""
    view = memoryview(data)
    frames: list[bytes] = []
    size = pos = 0
    while pos < len(view):
        decoder = zstandard.ZstdDecompressor().decompressobj()
        out: list[bytes] = []
        error = None
        while not decoder.eof and pos < len(view):
            piece = view[pos : pos + _ZSTD_STEP]
            try:
                produced = decoder.decompress(piece)
            except zstandard.ZstdError as exc:
                error = exc
                break
            size += len(produced)
            if size > limit:
                return _too_large(body, limit)
            out.append(produced)
            pos += len(piece) - len(decoder.unused_data)
        read = b"".join(out)
        if error is None and decoder.eof:
            frames.append(read)
            if view[pos : pos + 4] == ZSTD_FRAME_START:
                continue  # the next frame
            break
        if not read and not frames:
            return _unreadable(body, "zstd", error)
        _read_in_part(body, "zstd", error)
        return b"".join([*frames, read])
    _set_apart(body, view, pos, "zstd", outermost)
    return b"".join(frames)


_BOMS = {
    "utf-16": (b"\xfe\xff", "utf-16-be", "utf-16-le"),
    "utf-32": (b"\x00\x00\xfe\xff", "utf-32-be", "utf-32-le"),
}


def recode_text(data: bytes, encoding: str, change: Callable[[str], str]) -> bytes:
    """A body in a UTF-16 or UTF-32 encoding (as `json.detect_encoding` names
    it) changed as text and written back in the same encoding, byte-order
    mark and all; `data` itself when the text does not change."""
    bom = b""
    if encoding in _BOMS:
        big_endian, be_codec, le_codec = _BOMS[encoding]
        bom = data[: len(big_endian)]
        encoding = be_codec if bom == big_endian else le_codec
    text = data[len(bom) :].decode(encoding, "surrogatepass")
    changed = change(text)
    if changed == text:
        return data
    return bom + changed.encode(encoding, "surrogatepass")


def encode(data: bytes, content_encoding: str) -> bytes:
    """Apply a Content-Encoding list again (the inverse of decoding it)."""
    for coding in (c.strip().lower() for c in content_encoding.split(",")):
        if coding in ("gzip", "x-gzip"):
            data = gzip.compress(data)
        elif coding == "deflate":
            data = zlib.compress(data)
        elif coding == "br":
            data = brotli.compress(data, quality=5)  # 11, the default, is very slow
        elif coding == "zstd":
            data = zstandard.ZstdCompressor(level=3).compress(data)
    return data


def _read_multipart(body: Body, options: dict[str, str]) -> None:
    """Every part in body order, with its exact bytes (downloadable by index);
    fields are also read as UTF-8 text into the parameters."""
    boundary = options.get("boundary")
    if not boundary:
        body.notes["multipart"] = "multipart/form-data without a boundary; body not parsed."
        return
    # Fed a piece at a time, so the decoder's buffer stays small: a large file
    # costs its own bytes once more, not twice.
    view = memoryview(body.decoded)
    pieces = itertools.chain(
        (view[start : start + MULTIPART_PIECE] for start in range(0, len(view), MULTIPART_PIECE)),
        [None],  # the end of the body
    )
    parts: list[tuple[str | None, str | None, str, bytearray]] = []
    try:
        # A boundary given as boundary*=UTF-8''... may not be latin-1 (ValueError).
        decoder = MultipartDecoder(boundary.encode("latin-1"), max_parts=MAX_FORM_PARTS)
        head: Field | File | None = None
        data = bytearray()
        while True:
            event = decoder.next_event()
            if isinstance(event, NeedData):
                piece = next(pieces, False)
                if piece is False:
                    break  # pragma: no cover - the decoder raises on a cut body
                decoder.receive_data(piece)
                continue
            if isinstance(event, Epilogue):
                break
            if isinstance(event, (Field, File)):
                head, data = event, bytearray()
            elif isinstance(event, Data) and head is not None:
                data += event.data
                if not event.more_data:
                    filename = head.filename if isinstance(head, File) else None
                    content_type = head.headers.get("Content-Type") or (
                        "text/plain" if filename is None else ""
                    )
                    parts.append((head.name, filename, content_type, data))
                    head, data = None, bytearray()
    except (ValueError, RequestEntityTooLarge) as exc:
        # The parts read whole before the fault are kept: one bad part header
        # (a latin-1 file name, say) does not hide the fields before it.
        kept = f"; the {len(parts)} part(s) before it are listed" if parts else ""
        body.notes["multipart"] = f"Multipart body could not be parsed: {_describe(exc)}{kept}."
    nameless = 0
    for index, (name, filename, content_type, data) in enumerate(parts):
        if name is None:
            name, nameless = "", nameless + 1
        if filename is None:
            body.form.append((name, data.decode("utf-8", "replace")))
        body.files[index] = data
        body.parts.append(Part(index, name, filename, content_type, len(data)))
    if nameless:
        body.notes["multipart"] = " ".join(
            filter(
                None,
                [
                    body.notes.get("multipart"),
                    f"{nameless} part(s) without a name; listed with an empty name.",
                ],
            )
        )


def _read_json(body: Body) -> None:
    mimetype = body.mimetype
    declared = mimetype in JSON_TYPES or mimetype.endswith("+json")
    stripped = body.decoded.lstrip()
    # The platform's test script decodes any body as JSON; do the same for
    # bodies that look like JSON, but only complain when JSON was declared.
    looks_like = stripped[:1] in (b"{", b"[") and mimetype not in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    )
    if not (declared or looks_like):
        return
    if not stripped:
        if declared:
            body.notes["json"] = "Declared JSON, but the body is empty."
        return
    try:
        repeated: list[str] = []
        constants: list[str] = []
        body.json, body.json_plain = read_json(body.decoded, repeated, constants)
        body.has_json = True
        if constants:
            named = ", ".join(dict.fromkeys(constants))
            body.notes["json_constants"] = (
                f"The body uses {named}, which JSON (RFC 8259) does not allow; it is read "
                "as JavaScript and Python read it, but strict JSON readers refuse the body."
            )
        if repeated:
            names = ", ".join(sorted({_shown_name(name) for name in repeated})[:10])
            body.notes["json_keys"] = (
                f"Repeated keys in a JSON object ({names}): every value is listed in the "
                "parameters; most JSON readers keep only the last."
            )
        encoding = json.detect_encoding(body.decoded)
        if encoding.startswith(("utf-16", "utf-32")):
            body.wide_encoding = encoding
        # Only a \u escape can spell an unpaired UTF-16 surrogate, which no
        # UTF-8 text (the database's, a page's) can hold.
        if b"\\u" in body.decoded and SURROGATE.search(json_text(body.json)):
            body.json = _without_surrogates(body.json)
            body.notes["json"] = (
                "Unpaired UTF-16 surrogate escapes (such as \\ud800) are shown as U+FFFD "
                "in the parameters; the raw body keeps them as sent."
            )
    except RecursionError:
        body.json, body.has_json = None, False
        if declared or looks_like:
            body.notes["json"] = "JSON nested too deeply to parse; kept as received."
    except (ValueError, UnicodeDecodeError) as exc:
        if declared:
            body.notes["json"] = f"Invalid JSON: {exc}"


SURROGATE = re.compile("[\ud800-\udfff]")  # unpaired UTF-16 halves: no UTF-8 holds them


class JSONNumber(str):
    """A JSON number, in the text it was sent as: as a float or an int it would
    be shown rounded (`19.90` as 19.9) or changed (`1e400` as Infinity)."""

    __slots__ = ()


_MINUS_ZERO = re.compile(rb"-0(?![.\deE])")  # an integer -0, which Python reads as 0


def read_json(
    data: bytes, repeated: list[str], constants: list[str] | None = None
) -> tuple[object, bool]:
    """The JSON document in `data`, numbers kept as sent and repeated keys noted;
    and whether it is plain: json_text then writes it back as sent (no number
    kept as text, no repeated key), which is much quicker than json_source.

    A float is kept as a float when Python writes it back as sent (`52.520008`),
    else as its text (`19.90`, `1e3`); integers are exact, but for -0 and
    integers too long for Python to read.
    """
    kept_as_text: list[str] = []

    def float_as_sent(text: str):
        value = float(text)
        if repr(value) == text:
            return value
        kept_as_text.append(text)
        return JSONNumber(text)

    def constant(name: str) -> float:  # NaN, Infinity, -Infinity: not JSON, but read
        if constants is not None:
            constants.append(name)
        return float(name)

    options: dict = {
        "object_pairs_hook": noting_repeats(repeated),
        "parse_float": float_as_sent,
        "parse_constant": constant,
    }
    if json.detect_encoding(data) != "utf-8" or _MINUS_ZERO.search(data):
        options["parse_int"] = JSONNumber
    try:
        document = json.loads(data, **options)
    except ValueError:
        if "parse_int" in options:
            raise
        options["parse_int"] = JSONNumber  # past Python's integer digit limit
        document = json.loads(data, **options)
    plain = not (repeated or kept_as_text or "parse_int" in options)
    return document, plain


def json_source(value, indent: int | None = None) -> str:
    """A value from read_json as JSON text again: numbers and every key of an
    object as sent, strings re-escaped (non-ASCII as is). Iterative: a JSON
    document may nest as deep as the parser allows."""
    out: list[str] = []
    todo: list = [(value, 0)]  # values to write, and text (str) to copy
    while todo:
        item = todo.pop()
        if type(item) is str:
            out.append(item)
            continue
        value, level = item
        if isinstance(value, JSONNumber):
            out.append(value)
            continue
        if isinstance(value, dict):
            pairs = value.pairs if isinstance(value, JSONObject) else list(value.items())
            opening, closing = "{", "}"
        elif isinstance(value, list):
            pairs = [(None, element) for element in value]
            opening, closing = "[", "]"
        else:
            out.append(json_text(value))
            continue
        if not pairs:
            out.append(opening + closing)
            continue
        if indent is None:
            inner, outer, comma = "", "", ", "
        else:
            inner = "\n" + " " * (indent * (level + 1))
            outer = "\n" + " " * (indent * level)
            comma = ","
        out.append(opening)
        steps: list = []
        for n, (name, element) in enumerate(pairs):
            lead = comma + inner if n else inner
            steps.append(lead if name is None else f"{lead}{json_text(name)}: ")
            steps.append((element, level + 1))
        steps.append(outer + closing)
        todo.extend(reversed(steps))
    return "".join(out)


class JSONObject(dict):
    """A JSON object whose keys repeat: the dict keeps the last value of each
    (as JSON readers do); `pairs` keeps every one, in order."""

    pairs: list[tuple[str, object]]


def noting_repeats(repeated: list[str]):
    """A json.loads object hook: dicts as usual, a JSONObject where keys repeat
    (their names added to `repeated`)."""

    def build(pairs: list[tuple[str, object]]) -> dict:
        obj = dict(pairs)
        if len(obj) == len(pairs):
            return obj
        obj = JSONObject(obj)
        obj.pairs = pairs
        seen: set[str] = set()
        for name, _value in pairs:
            if name in seen:
                repeated.append(name)
            seen.add(name)
        return obj

    return build


def _shown_name(name: str) -> str:
    return json_text(name[:40])


def _without_surrogates(value):
    if isinstance(value, JSONNumber):
        return value
    if isinstance(value, str):
        return SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_without_surrogates(item) for item in value]
    if isinstance(value, JSONObject):
        pairs = [(_without_surrogates(k), _without_surrogates(v)) for k, v in value.pairs]
        clean = JSONObject(pairs)
        clean.pairs = pairs
        return clean
    if isinstance(value, dict):
        return {_without_surrogates(k): _without_surrogates(v) for k, v in value.items()}
    return value


IN_PLACE_OVER = 64 * 1024


def parse_pairs(data: bytes) -> list[tuple[str, str]]:
    """`a=1&a=2&items[]=x` as ordered pairs, exactly as named (no PHP folding).

    Split on `&`, then `=`; `+` is a space, `%XX` a byte; each name and value,
    as bytes, is then read as UTF-8 (what PHP hands a UTF-8 page), bytes that
    are not UTF-8 replaced by U+FFFD. Raw non-ASCII bytes and percent-escapes
    may mix. A large body is read in place, so a huge field costs one copy (its
    text), not one per splitting step; a small one is split, which is quicker.
    """
    if not data:
        return []
    if len(data) <= IN_PLACE_OVER:
        pairs = []
        if data.isascii():  # the usual case: text all along, decoded once
            for item in data.decode("ascii").split("&"):
                if item:
                    name, _, value = item.partition("=")
                    pairs.append((_unquote_ascii(name), _unquote_ascii(value)))
            return pairs
        for item in data.split(b"&"):
            if item:
                name, _, value = item.partition(b"=")
                pairs.append((_unquote_plus(name), _unquote_plus(value)))
        return pairs
    view = memoryview(data)
    pairs = []
    start, size = 0, len(data)
    while start <= size:
        end = data.find(b"&", start)
        if end < 0:
            end = size
        if end > start:
            eq = data.find(b"=", start, end)
            if eq < 0:
                pairs.append((_field(data, view, start, end), ""))
            else:
                pairs.append((_field(data, view, start, eq), _field(data, view, eq + 1, end)))
        start = end + 1
    return pairs


def _field(data: bytes, view: memoryview, start: int, end: int) -> str:
    if data.find(b"%", start, end) < 0 and data.find(b"+", start, end) < 0:
        return str(view[start:end], "utf-8", "replace")
    return _unquote_plus(data[start:end])


def _unquote_ascii(text: str) -> str:
    if "+" in text:
        text = text.replace("+", " ")
    if "%" not in text:
        return text
    return unquote_to_bytes(text).decode("utf-8", "replace")


def _unquote_plus(raw: bytes) -> str:
    if b"+" in raw:
        raw = raw.replace(b"+", b" ")
    if b"%" in raw:
        raw = unquote_to_bytes(raw)
    return raw.decode("utf-8", "replace")


def merge_params(body: Body, query: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """POST fields, then GET parameters, then a JSON object's top-level keys."""
    params = [(FORM, name, value) for name, value in body.form]
    params += [(QUERY, name, value) for name, value in query]
    if body.has_json and isinstance(body.json, dict):
        pairs = body.json.pairs if isinstance(body.json, JSONObject) else body.json.items()
        for name, value in pairs:
            if isinstance(value, str):
                text = value
            else:
                text = json_text(value) if body.json_plain else json_source(value)
            params.append((JSON_BODY, name, text))
    return params


def stored_value(value: str) -> str:
    """A parameter value as kept in the capture's parameter list."""
    if len(value) <= STORED_VALUE_MAX:
        return value
    return f"{value[:STORED_VALUE_MAX]}… [cut: {len(value):,} characters in all; see the raw body]"


_CUT = re.compile(r"… \[cut: ([\d,]+) characters in all; see the raw body\]\Z")

# A body may carry hundreds of thousands of fields: the log names this many.
LOG_PARAMS_MAX = 1000


def fired_webhook_lines(params) -> list[str]:
    """The platform's test script's log: `Fired WebHook`, then `name: value` per
    parameter. Control characters are escaped so a value cannot forge lines."""
    lines = ["Fired WebHook"]
    for _source, name, value in params[:LOG_PARAMS_MAX]:
        lines.append(f"{_printable(name)}: {_printable(value)}")
    if len(params) > LOG_PARAMS_MAX:
        lines.append(f"… and {len(params) - LOG_PARAMS_MAX:,} more parameters")
    return lines


def _printable(text: str, limit: int = 500) -> str:
    if len(text) > limit:
        cut = _CUT.search(text) if len(text) > STORED_VALUE_MAX else None
        total = int(cut.group(1).replace(",", "")) if cut else len(text)
        text = text[:limit] + f"… ({total:,} characters)"
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in _JOINERS else repr(c)[1:-1] for c in text)


# Zero-width joiners are part of words (Persian) and emoji, not tricks: kept.
_JOINERS = "\u200c\u200d"


def body_text(data: bytes) -> str | None:
    """The body as text when it is valid UTF-8, else None."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _describe(exc: Exception) -> str:
    return getattr(exc, "description", None) or str(exc) or type(exc).__name__
