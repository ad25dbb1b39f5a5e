"""How a stored capture is shown: body views, the event in its own terms,
copy-as-cURL. Pure functions over stored data; templates do the markup."""

from __future__ import annotations

import json
import re
import shlex
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from jinja2 import pass_context
from markupsafe import Markup

from . import catalog
from .capture import SURROGATE, body_text, json_source, read_body, read_json
from .models import Capture

HEX_PREVIEW_BYTES = 4096
TEXT_PREVIEW_CHARS = 200_000
# Linux will not start a program given one argument over 128 KiB (MAX_ARG_STRLEN):
# a body whose quoted text is longer than this goes to curl on standard input.
CURL_ARGUMENT_LIMIT = 64 * 1024
# Bytes per printf: its format, at most four characters a byte, stays under the
# limit above, and bash reads many short words in linear time but one long
# word built of quoted pieces far slower (minutes for 10 MiB).
PRINTF_CHUNK = 16 * 1024
# curl adds `Expect: 100-continue` itself to a body over 1 MiB (over 1 KiB before
# 7.69). Over the smaller, the command turns it off unless the sender sent one:
# where this curl would not have added it, turning it off changes nothing.
CURL_EXPECT_THRESHOLD = 1024
# A body over this is not written into the command, where it would put up to four
# times its size of text on the page: the command reads the raw body download.
CURL_INLINE_BODY_LIMIT = 256 * 1024

# Headers curl sets itself, or that describe one connection rather than the request.
NOT_REPLAYED = {
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "proxy-connection",
    "expect",
}


def aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC)


def ago(moment: datetime, now: datetime | None = None) -> str:
    seconds = int(((now or datetime.now(UTC)) - aware(moment)).total_seconds())
    if seconds < 5:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


# Characters that change the direction of the text around them: U+202E shows
# "nimda" as "admin" and "gnp.exe" as "exe.png". Pages show them as escapes.
_DIRECTION_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")


# The templates that show captured data. Forms are left alone: a setting's own
# right-to-left marks must be saved back as they are, not as escapes.
CAPTURE_VIEWS = frozenset(
    {
        "partials/capture_detail.html",
        "partials/capture_row.html",
        "partials/event_types.html",
    }
)


@pass_context
def shown(context, value: object) -> object:
    """Every value a capture view prints (Jinja's finalize): direction controls,
    which would make captured text read as something it is not, as escapes."""
    if context.name not in CAPTURE_VIEWS:
        return value
    if isinstance(value, str) and _DIRECTION_CONTROLS.search(value):
        escaped = _DIRECTION_CONTROLS.sub(lambda m: f"\\u{ord(m.group()):04x}", value)
        return type(value)(escaped) if isinstance(value, Markup) else escaped
    return value


def short_code(code: str) -> str:
    """What tells one QR code from another in a list: the platform sends a
    full short URL (`https://qr.example.com/7W`), whose last segment is the code."""
    if "://" not in code:
        return code
    try:
        parts = urlsplit(code)
    except ValueError:  # "https://[qr.example/7W": not a URL after all
        return code
    segment = parts.path.rstrip("/").rpartition("/")[2]
    return segment or parts.netloc or code


def size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / 1024 / 1024:.1f} MiB"


def wire_text(value: str) -> tuple[str, bool]:
    """A header value or query string for reading, and whether it was read as
    UTF-8. WSGI hands non-ASCII bytes over as Latin-1 (`JosÃ©`); most senders
    meant UTF-8 (`José`), so bytes that are valid UTF-8 are read as such."""
    if value.isascii():
        return value, False
    try:
        return value.encode("latin-1").decode("utf-8"), True
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value, False


def part_names(parts: list[dict]) -> list[str]:
    """What each multipart part is called by its download link: its file name,
    else its field's name; numbered as the body view numbers parts where that
    is empty or shared with another part, so that no two links sound alike."""
    names = [part["filename"] or part["name"] for part in parts]
    times = Counter(names)  # once, not a count per part: a body may hold thousands
    called = []
    for part, name in zip(parts, names, strict=True):
        if not name:
            name = str(part["index"])
        elif times[name] > 1:
            name = f"{part['index']}: {name}"
        called.append(name)
    return called


@dataclass
class BodyView:
    kind: str  # "empty", "json", "text", "binary"
    shown: str = ""
    truncated: bool = False
    encoding_note: str = ""


def body_view(capture: Capture) -> BodyView:
    data = capture.body
    if not data:
        return BodyView("empty")
    stored = _stored_body(capture)
    decoded = stored.decoded
    if stored.parts and any(part.filename is not None for part in stored.parts):
        view = _multipart_view(stored)
    else:
        view = _view_of(decoded, capture.detail.get("json"))
    if decoded is not data and decoded != data:
        encoding = capture.header("content-encoding")
        view.encoding_note = f"{encoding} decoded: {size(capture.content_length)} received"
        if len(data) != capture.content_length:  # stored again, with a key masked
            view.encoding_note += f", {size(len(data))} stored"
    return view


def _multipart_view(body) -> BodyView:
    """A multipart body with files, part by part: text shown, binary named
    (each part downloads whole, and the raw body byte for byte)."""
    lines = []
    for part in body.parts:
        data = body.files.get(part.index, b"")
        head = f"── part {part.index}: {part.name or '(no name)'}"
        if part.filename is not None:
            head += f", file {part.filename or '(no name)'}"
        if part.content_type:
            head += f", {part.content_type}"
        lines.append(f"{head}, {size(len(data))}")
        text = body_text(data)
        if text is not None and _mostly_printable(text):
            lines.append(text)
        else:
            lines.append(f"[binary, {size(len(data))}: download the part]")
    return _text_view("multipart", "\n".join(lines))


def _view_of(decoded: bytes, is_json: bool) -> BodyView:
    text = body_text(decoded)
    if is_json:
        try:
            # From the bytes: JSON may come in UTF-16 or UTF-32, too.
            document, plain = read_json(decoded, [])
            if plain:
                pretty = json.dumps(document, indent=2, ensure_ascii=False)
            else:
                pretty = json_source(document, indent=2)
            # An unpaired surrogate (sent as a \ud800 escape) cannot be UTF-8:
            # show it escaped, as it was sent.
            pretty = SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", pretty)
            return _text_view("json", pretty)
        except (ValueError, RecursionError):
            pass
    if text is not None and _mostly_printable(text):
        return _text_view("text", text)
    return BodyView(
        "binary", hexdump(decoded[:HEX_PREVIEW_BYTES]), len(decoded) > HEX_PREVIEW_BYTES
    )


def _text_view(kind: str, text: str) -> BodyView:
    if len(text) > TEXT_PREVIEW_CHARS:
        return BodyView(kind, text[:TEXT_PREVIEW_CHARS], truncated=True)
    return BodyView(kind, text)


def _mostly_printable(text: str) -> bool:
    """Text, not binary: hardly any control characters. (Joiners, marks and
    spaces such as U+200C or U+00A0 are text: Persian words and emoji hold them.)"""
    sample = text[:4096]
    odd = sum(1 for c in sample if unicodedata.category(c) == "Cc" and c not in "\r\n\t")
    return odd <= len(sample) // 100


def hexdump(data: bytes) -> str:
    lines = []
    for offset in range(0, len(data), 16):
        chunk = data[offset : offset + 16]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        chars = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{offset:08x}  {hexes:<47}  {chars}")
    return "\n".join(lines)


def _stored_body(capture: Capture):
    """The stored body read again, as it was read when it arrived."""
    return read_body(
        capture.body,
        capture.content_type,
        capture.header("content-encoding"),
        limit=len(capture.body) * 20 + 1024,
    )


def part_bytes(capture: Capture, index: int) -> bytes | None:
    """A multipart part's exact bytes, read again from the stored body."""
    data = _stored_body(capture).files.get(index)
    return None if data is None else bytes(data)


@dataclass
class EventView:
    """The delivery in the platform's own terms."""

    event: catalog.Event | None
    fields: list[tuple[catalog.Param, str]] = field(default_factory=list)
    location: tuple[float, float] | None = None
    map_url: str = ""
    download_expires: datetime | None = None
    download_expired: bool = False
    timestamp: catalog.TimestampReading | None = None


def event_view(capture: Capture) -> EventView:
    values: dict[str, list[str]] = {}
    for _source, name, value in capture.param_list:
        values.setdefault(name, []).append(value)
    event = catalog.EVENTS.get(capture.event_type)
    view = EventView(event)
    if values.get("timestamp"):
        view.timestamp = catalog.parse_timestamp(values["timestamp"][0])
    if event is None:
        return view
    for param in event.params:
        if param.name in values:
            view.fields.append((param, values[param.name][0]))
    view.location = catalog.location(values)
    if view.location:
        lat, lng = view.location
        view.map_url = f"https://www.openstreetmap.org/?mlat={lat}&mlon={lng}#map=15/{lat}/{lng}"
    if event.name == "JOB_FINISHED" and values.get("timestamp"):
        view.download_expires = catalog.download_expiry(values["timestamp"][0])
        if view.download_expires:
            view.download_expired = view.download_expires <= datetime.now(UTC)
    return view


# Only types that nothing runs when opened from a downloads folder: the sender
# chooses the content type, and a file named .html, .svg, .js or even .xml (an
# SVG or XHTML document inside) would open in a browser or a script host, and
# .csv in a spreadsheet that runs formulas. Any other type, and a body
# compressed some other way, is named .bin.
_EXTENSIONS = {
    "application/json": ".json",
    "application/x-ndjson": ".ndjson",
    "text/plain": ".txt",
    "application/x-www-form-urlencoded": ".txt",
    "application/pdf": ".pdf",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "application/zip": ".zip",
    "application/gzip": ".gz",
}
_COMPRESSED = {"gzip": ".gz", "x-gzip": ".gz", "br": ".br", "zstd": ".zst"}


_INERT_SUFFIXES = {*_EXTENSIONS.values(), ".jpeg", *_COMPRESSED.values()}


def inert_filename(name: str) -> str:
    """A sender's file name to save a download as: kept where its extension is
    one nothing runs when the file is opened, else with `.bin` added
    (`page.html.bin`)."""
    suffix = "." + name.rsplit(".", 1)[1].lower() if "." in name else ""
    return name if suffix in _INERT_SUFFIXES else name + ".bin"


def raw_body_filename(capture: Capture) -> str:
    """The raw body download's name: `capture-<id>` and the usual extension of its
    content type among inert ones (`+json` types too), or `.bin`; a compressed
    body (one Content-Encoding) adds the compression's, as the bytes are kept
    as sent."""
    essence = capture.content_type.split(";", 1)[0].strip().lower()
    suffix = _EXTENSIONS.get(essence) or (".json" if essence.endswith("+json") else None)
    coding = capture.header("content-encoding").strip().lower()
    if coding and coding != "identity":
        compressed = _COMPRESSED.get(coding)
        suffix = (suffix or "") + compressed if compressed else ".bin"
    return f"capture-{capture.id}{suffix or '.bin'}"


def curl_body_file(capture: Capture) -> str | None:
    """The file a large body's command reads (the raw body download), or None."""
    if len(capture.body or b"") > CURL_INLINE_BODY_LIMIT:
        return raw_body_filename(capture)
    return None


def curl_command(capture: Capture, base_url: str) -> str:
    """A shell command (bash) that sends the same request again, body byte for byte."""
    # As Latin-1 text: one character per byte sent, which _quote writes back as bytes.
    target = capture.raw_path.encode().decode("latin-1")
    if capture.query_string:
        target += "?" + capture.query_string.decode("latin-1")
    url = base_url.rstrip("/") + target
    parts = ["curl"]
    if capture.method == "HEAD":
        parts.append("--head")
    elif capture.method != "GET" or capture.body:
        parts += ["-X", capture.method]
    if "#" in target:
        # curl takes a `#` for the start of a fragment and sends nothing after it.
        prefix = urlsplit(base_url).path.rstrip("/")
        parts += ["--request-target", _quote(prefix + target)]
    if _DOT_SEGMENT.search(capture.raw_path):
        parts.append("--path-as-is")  # else curl resolves /../ and /./ itself
    if _GLOB.search(url):
        parts.append("--globoff")  # else curl reads [a-z] and {a,b} as URL ranges and sets
    parts.append(_quote(url))
    sent = {name.lower() for name, _value in capture.header_list}
    for name, value in capture.header_list:
        if name.lower() not in NOT_REPLAYED:
            parts += ["-H", _quote(_header_option(name, value))]
    # Without these, curl adds its own and the capture would differ.
    defaults = ["User-Agent", "Accept"]
    if capture.body:
        defaults.append("Content-Type")  # --data-binary would add a form type
    if len(capture.body or b"") > CURL_EXPECT_THRESHOLD:
        defaults.append("Expect")
    for default in defaults:
        if default.lower() not in sent:
            parts += ["-H", shlex.quote(f"{default}:")]
    body = capture.body
    if not body:
        return " ".join(parts)
    body_file = curl_body_file(capture)
    if body_file:
        return " ".join([*parts, "--data-binary", "@" + body_file])
    text = body.decode("latin-1")
    if _PLAIN.match(text) and not text.startswith("@"):
        quoted = shlex.quote(text)
        if len(quoted) <= CURL_ARGUMENT_LIMIT:
            return " ".join([*parts, "--data-binary", quoted])
    # NUL bytes cannot be passed as an argument, a leading @ names a file to
    # curl, and a long argument stops curl from starting: such bodies go
    # through printf's escapes on standard input.
    return f"{printf_command(body)} | " + " ".join([*parts, "--data-binary", "@-"])


def _header_option(name: str, value: str) -> str:
    """curl's -H for one header: `Name:` with nothing after it removes the header;
    `Name;` is how curl is told to send it empty."""
    return f"{name};" if value == "" else f"{name}: {value}"


_PLAIN = re.compile(r"^[\x20-\x7e]*$")
_DOT_SEGMENT = re.compile(r"/\.\.?(?:/|$)")
_GLOB = re.compile(r"[][{}]")


def _quote(text: str) -> str:
    if _PLAIN.match(text):
        return shlex.quote(text)
    out = []
    # Header values (and URLs here) are kept as the server decoded them: each byte
    # one latin-1 character. Encoding them back that way gives the bytes sent.
    for byte in text.encode("latin-1", errors="replace"):
        if byte in (0x27, 0x5C):  # ' and \
            out.append("\\" + chr(byte))
        elif 32 <= byte < 127:
            out.append(chr(byte))
        else:
            out.append(f"\\x{byte:02x}")
    return "$'" + "".join(out) + "'"


def printf_command(data: bytes) -> str:
    """A bash command that prints exactly `data` (`--`: a body may start with `-`)."""
    if len(data) <= PRINTF_CHUNK:
        return f"printf -- {_printf_format(data)}"
    chunks = (data[i : i + PRINTF_CHUNK] for i in range(0, len(data), PRINTF_CHUNK))
    return "{ " + "; ".join(f"printf -- {_printf_format(chunk)}" for chunk in chunks) + "; }"


def _printf_format(data: bytes) -> str:
    """A single-quoted printf format that prints exactly `data`."""
    out = []
    for byte in data:
        if byte == 0x27:  # '
            out.append("'\\''")
        elif byte == 0x25:  # %
            out.append("%%")
        elif byte == 0x5C:  # \
            out.append("\\\\")
        elif 32 <= byte < 127:
            out.append(chr(byte))
        else:
            out.append(f"\\x{byte:02x}")
    return "'" + "".join(out) + "'"
