"""The platform's documented webhook events, as data, and the checks held against them.

Source: QR Planet's help page "What is a webhook?" (qrplanet.com/help/article/webhooks,
see PRODUCT.md). Stdlib only: the store, the pages and the test-event sender import it.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

KINDS = frozenset(
    {"text", "int", "enum", "email", "url", "date", "timestamp", "latitude", "longitude", "lnglat"}
)


@dataclass(frozen=True)
class Param:
    name: str
    meaning: str
    kind: str
    optional: bool = False
    choices: tuple[tuple[str, str], ...] = ()
    sample: str = ""

    def __post_init__(self) -> None:
        # Typos in the tables below fail at import, not as silently skipped checks.
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r} for parameter {self.name!r}")
        if (self.kind == "enum") != bool(self.choices):
            raise ValueError(f"parameter {self.name!r}: choices go with kind 'enum' only")


@dataclass(frozen=True)
class Event:
    name: str
    title: str
    when: str
    params: tuple[Param, ...]

    @property
    def all_params(self) -> tuple[Param, ...]:
        return STANDARD_PARAMS + self.params


UNKNOWN = "UNKNOWN"
DOWNLOAD_VALID_FOR = timedelta(days=30)

STANDARD_PARAMS: tuple[Param, ...] = (
    Param("event", "The name of the event, e.g. QR_CODE_SCANNED", "text", sample="QR_CODE_SCANNED"),
    Param("timestamp", "The time when the event occurred", "timestamp", sample="1764262800"),
    Param("user", "The user who created the QR code", "text", sample="jane.doe"),
    # Documented as "the short URL" but may arrive as a bare slug: not checked as a URL.
    Param("code", "The short URL of the QR code", "text", sample="https://qr.example.com/7W"),
    # A live API key: no sample, the sender fills it in.
    Param(
        "secrettoken",
        "The user's secret API key, so the receiver can verify the delivery is genuine",
        "text",
    ),
)
# A delivery that carries none of these, and no documented event, is taken to
# come from another sender and is not held to the platform's documentation.
PLATFORM_MARKS = ("timestamp", "user", "code", "secrettoken")

_VOUCHER_TYPES = (
    ("UNIQUEIP", "Voucher can be redeemed once per IP"),
    ("UNIQUEID", "Voucher can be redeemed once"),
)

# The docs list these under "voucher updated" only; VOUCHER_CREATED surely carries the
# same fields, so both events share the list (and the same required/optional split).
_VOUCHER_FIELDS = (
    Param("title", "The title of the voucher", "text", sample="10% off your next coffee"),
    Param("description", "The description of the voucher", "text", sample="Show at the counter."),
    Param("type", "The type of voucher", "enum", choices=_VOUCHER_TYPES, sample="UNIQUEID"),
    Param(
        "productname",
        "An optional product name for the voucher",
        "text",
        optional=True,
        sample="Flat white",
    ),
    Param(
        "website",
        "An optional web page to which the voucher links",
        "url",
        optional=True,
        sample="https://example.com/offer",
    ),
    Param(
        "couponnumber",
        "An optional voucher number that is displayed on the voucher",
        "text",
        optional=True,
        sample="COFFEE-0042",
    ),
    Param(
        "validfrom",
        "An optional date from when the voucher is valid",
        "date",
        optional=True,
        sample="2025-01-01",
    ),
    Param(
        "validto",
        "An optional date from when the voucher expires",
        "date",
        optional=True,
        sample="2026-12-31",
    ),
)

_EVENT_LIST = (
    Event("QR_CODE_CREATED", "QR code created", "when a QR code has been generated", ()),
    Event(
        "QR_CODE_SCANNED",
        "QR code scanned",
        "when a QR code has been scanned",
        (
            Param("redirects", "The number of times the QR code was scanned", "int", sample="42"),
            Param(
                "visitors",
                "The number of unique visitors who scanned the QR code",
                "int",
                sample="17",
            ),
            Param("device", "The device that scanned the QR code", "text", sample="iPhone"),
            Param("os", "The operating system that scanned the QR code", "text", sample="iOS 17.5"),
            Param("country", "The country where the QR code was scanned", "text", sample="DE"),
            # Docs say "lng/lat": two parameters, or one literally named "lng/lat".
            Param(
                "lng",
                "GPS longitude, if the scanner shared a location",
                "longitude",
                optional=True,
                sample="13.404954",
            ),
            Param(
                "lat",
                "GPS latitude, if the scanner shared a location",
                "latitude",
                optional=True,
                sample="52.520008",
            ),
            Param(
                "lng/lat",
                "GPS longitude and latitude in one value, if the scanner shared it",
                "lnglat",
                optional=True,
                sample="13.404954,52.520008",
            ),
        ),
    ),
    Event("VOUCHER_CREATED", "Voucher created", "when a voucher has been created", _VOUCHER_FIELDS),
    Event("VOUCHER_UPDATED", "Voucher updated", "when a voucher has been updated", _VOUCHER_FIELDS),
    Event(
        "VOUCHER_REDEEMED",
        "Voucher redeemed",
        "when a voucher has been redeemed",
        (
            Param(
                "status",
                "Status of the redemption",
                "enum",
                choices=(
                    ("SUCCESS", "Voucher was redeemed"),
                    ("VOUCHER_ALREADY_REDEEMED", "Voucher was already redeemed before"),
                    ("VOUCHER_EXPIRED", "Voucher has expired"),
                    ("QUOTA_EXCEEDED", "The limit of redemptions was exceeded"),
                ),
                sample="SUCCESS",
            ),
            Param("type", "The voucher type", "enum", choices=_VOUCHER_TYPES, sample="UNIQUEID"),
            Param(
                "eancode",
                "The voucher's EAN barcode, if one is set",
                "text",
                optional=True,
                sample="4006381333931",
            ),
            Param(
                "uniqueid",
                "The unique ID of a one-time voucher made in a bulk run",
                "text",
                optional=True,
                sample="A7K2-9QXF",
            ),
        ),
    ),
    Event("VOUCHER_EXPIRED", "Voucher expired", "when a voucher has expired", ()),
    Event(
        "LEAD_CREATED",
        "Lead created",
        "when a lead has been created",
        (
            Param(
                "email", "The email address of the new lead", "email", sample="jane.doe@example.com"
            ),
            Param("name", "The name of the new lead", "text", sample="Jane Doe"),
        ),
    ),
    Event(
        "CALL_2_ACTION_BUTTON_CLICKED",
        "Call-2-Action button clicked",
        "when a Call-2-Action button was clicked",
        (
            Param(
                "c2a",
                "The URL of the Call-2-Action button",
                "url",
                sample="https://example.com/offer",
            ),
        ),
    ),
    Event(
        "JOB_FINISHED",
        "Bulk job finished",
        "when a bulk designer QR code job has finished",
        (
            Param(
                "download",
                "A link to download the job result, valid for 30 days",
                "url",
                sample="https://example.com/downloads/job-1234.zip",
            ),
        ),
    ),
)

EVENTS: dict[str, Event] = {event.name: event for event in _EVENT_LIST}


# --- reading values ---


def _values(params: Mapping[str, Sequence[str]], name: str) -> list[str]:
    raw = params.get(name)
    if raw is None:
        return []
    if isinstance(raw, str):  # a flat mapping (MultiDict.get) gives one string
        return [raw]
    return [v if isinstance(v, str) else str(v) for v in raw]


def _first(params: Mapping[str, Sequence[str]], name: str) -> str | None:
    """The first value, stripped; None when absent or blank (blank = missing)."""
    raw = params.get(name)
    if not raw:
        return None
    value = raw if isinstance(raw, str) else raw[0]
    value = (value if isinstance(value, str) else str(value)).strip()
    return value or None


def _absent(params: Mapping[str, Sequence[str]], name: str) -> str:
    """How a value `_first` finds none of is absent: not sent, or sent blank."""
    return "is sent empty" if params.get(name) else "is missing"


def _count(params: Mapping[str, Sequence[str]], name: str) -> int:
    raw = params.get(name)
    if raw is None:
        return 0
    return 1 if isinstance(raw, str) else len(raw)


def _show(value: str, limit: int = 60) -> str:
    # Messages quote what was received: repr escapes control characters, the cap bounds
    # the size.
    if len(value) > limit:
        value = value[: limit - 1] + "…"
    return repr(value)


def _duration(delta: timedelta) -> str:
    seconds = int(abs(delta.total_seconds()))
    units = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))
    parts: list[str] = []
    for index, (unit, size) in enumerate(units):
        count, rest = divmod(seconds, size)
        if count:
            parts.append(f"{count} {unit}{'' if count == 1 else 's'}")
            # Two units are precise enough for people ("3 days 4 hours").
            if index + 1 < len(units):
                nxt_unit, nxt_size = units[index + 1]
                nxt = rest // nxt_size
                if nxt:
                    parts.append(f"{nxt} {nxt_unit}{'' if nxt == 1 else 's'}")
            break
    return " ".join(parts) or "0 seconds"


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# --- event type ---

_TYPE_MAX = 64


def event_type(params: Mapping[str, Sequence[str]], path: str) -> str:
    """The capture's event type.

    The `event` parameter (first non-empty value, stripped) if present: any name the
    sender sends, documented or not, is kept as its own type (a future event is not
    UNKNOWN). Else the last non-empty segment of `path` (the sub-path after the inbox,
    e.g. "scan/QR_CODE_SCANNED") when it names a documented event, case-insensitively
    (returned in canonical upper case). Else UNKNOWN.

    The result becomes a database column and a badge, and a sender can send anything:
    non-printable characters are dropped and it is capped at 64 characters. The
    parameter's case is kept as sent (a lower-case name is a deviation worth seeing); a
    name that is empty once cleaned falls through to the path.
    """
    for raw in _values(params, "event"):
        cleaned = "".join(filter(str.isprintable, raw)).strip()[:_TYPE_MAX].rstrip()
        if cleaned:
            return cleaned
    segments = [s.strip() for s in (path or "").split("/") if s.strip()]
    if segments and segments[-1].upper() in EVENTS:
        return segments[-1].upper()
    return UNKNOWN


# --- timestamps ---


@dataclass(frozen=True)
class TimestampReading:
    value: str
    when: datetime | None
    form: str
    assumed_utc: bool
    error: str | None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC)
_MAX_MICROS = (_LATEST - _EPOCH) // timedelta(microseconds=1)
# 10**11 read as seconds is the year 5138, read as milliseconds 1973: larger means ms.
_MS_FROM = 10**11
_MAX_TIMESTAMP_LEN = 64  # longer is garbage; also keeps the Decimal maths cheap
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_DATE_ONLY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME = re.compile(
    r"(?P<y>[0-9]{4})-(?P<mo>[0-9]{2})-(?P<d>[0-9]{2})(?P<sep>[Tt ])"
    r"(?P<h>[0-9]{2}):(?P<mi>[0-9]{2})(?::(?P<s>[0-9]{2})(?:[.,](?P<f>[0-9]+))?)?"
    r" ?(?P<zone>[Zz]|UTC|GMT|[+-][0-9]{2}(?::?[0-9]{2})?)?"
)
_ACCEPTED = "unix seconds, unix milliseconds or an ISO 8601 date and time"


def _bad(value: str, error: str) -> TimestampReading:
    return TimestampReading(value, None, "", False, error)


def parse_timestamp(value: str) -> TimestampReading:
    """Read a timestamp in any of the forms the platform might use. Never raises."""
    text = value.strip()
    if not text:
        return _bad(value, "timestamp is empty")
    if len(text) > _MAX_TIMESTAMP_LEN:
        return _bad(value, f"timestamp is {len(text)} characters long, too long for a date or time")
    if _NUMBER.fullmatch(text):
        return _parse_unix(value, text)
    match = _DATETIME.fullmatch(text)
    if match:
        return _parse_datetime(value, match)
    if _DATE_ONLY.fullmatch(text):
        return _bad(value, f"timestamp {_show(text)} is a date without a time of day")
    return _bad(value, f"timestamp {_show(text)} is not {_ACCEPTED}")


def _parse_unix(value: str, text: str) -> TimestampReading:
    if text.startswith("-"):
        return _bad(value, f"timestamp {_show(text)} is negative, before 1970")
    try:
        number = Decimal(text)
    except InvalidOperation:  # unreachable after the regex, kept so this never raises
        return _bad(value, f"timestamp {_show(text)} is not {_ACCEPTED}")
    millis = number > _MS_FROM
    micros = int(number * (1000 if millis else 1_000_000))
    if micros > _MAX_MICROS:
        return _bad(value, f"timestamp {_show(text)} is after the year 9999")
    when = _EPOCH + timedelta(microseconds=micros)
    return TimestampReading(
        value, when, "unix milliseconds" if millis else "unix seconds", False, None
    )


def _parse_datetime(value: str, match: re.Match[str]) -> TimestampReading:
    g = match.groupdict()
    fraction = (g["f"] or "")[:6].ljust(6, "0")  # beyond microseconds is truncated
    try:
        when = datetime(
            int(g["y"]),
            int(g["mo"]),
            int(g["d"]),
            int(g["h"]),
            int(g["mi"]),
            int(g["s"] or 0),
            int(fraction),
        )
    except ValueError:
        return _bad(value, f"timestamp {_show(value.strip())} is not a real date and time")
    zone = g["zone"]
    assumed = zone is None
    offset = timedelta(0)
    if zone and zone[0] in "+-":
        digits = zone[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:] or 0)
        if hours > 23 or minutes > 59:
            return _bad(value, f"timestamp {_show(value.strip())} has an impossible UTC offset")
        offset = timedelta(hours=hours, minutes=minutes) * (-1 if zone[0] == "-" else 1)
    try:
        when = when.replace(tzinfo=UTC) - offset
    except OverflowError:
        return _bad(value, f"timestamp {_show(value.strip())} is outside the years 1970 to 9999")
    if when < _EPOCH:
        return _bad(value, f"timestamp {_show(value.strip())} is before 1970")
    naive_space = assumed and g["sep"] == " "
    form = "date and time" if naive_space else "ISO 8601"
    return TimestampReading(value, when, form, assumed, None)


def download_expiry(timestamp_value: str) -> datetime | None:
    """When a JOB_FINISHED download link stops working; None for a bad timestamp."""
    when = parse_timestamp(timestamp_value).when
    if when is None:
        return None
    try:
        return when + DOWNLOAD_VALID_FOR
    except OverflowError:
        return None


# --- checks ---


@dataclass(frozen=True)
class Finding:
    level: str
    code: str
    param: str | None
    message: str


def _number(text: str) -> float | None:
    if not _NUMBER.fullmatch(text):
        return None
    number = float(text)
    return number if math.isfinite(number) else None


def _coordinate(name: str, text: str, limit: float, what: str) -> Finding | None:
    number = _number(text)
    if number is None:
        return Finding(
            "error", "not_number", name, f"{name} must be a decimal {what}, got {_show(text)}"
        )
    if not -limit <= number <= limit:
        return Finding(
            "error",
            "out_of_range",
            name,
            f"{name} must be a {what} between -{limit:g} and {limit:g}, got {text}",
        )
    return None


_LNGLAT_SPLIT = re.compile(r"\s*[,/;]\s*")


def _split_lnglat(text: str) -> tuple[str, str] | None:
    parts = _LNGLAT_SPLIT.split(text.strip())
    return (parts[0], parts[1]) if len(parts) == 2 else None


def _email_ok(text: str) -> bool:
    if text.count("@") != 1 or any(ch.isspace() for ch in text):
        return False
    local, domain = text.split("@")
    labels = domain.split(".")
    return bool(local) and len(labels) >= 2 and all(labels)


def _url_ok(text: str) -> bool:
    if any(ch.isspace() or not ch.isprintable() for ch in text):
        return False
    try:
        parts = urlsplit(text)
        host = parts.hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return False
    return parts.scheme.lower() in ("http", "https") and bool(host)


def _parse_date(text: str) -> datetime | None:
    if _DATE_ONLY.fullmatch(text):
        try:
            return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            return None
    return parse_timestamp(text).when


def _check_value(param: Param, text: str) -> Finding | None:
    name, kind = param.name, param.kind
    if kind == "int":
        if not _is_count(text):
            return Finding(
                "error",
                "not_integer",
                name,
                f"{name} must be a non-negative integer, got {_show(text)}",
            )
    elif kind == "latitude":
        return _coordinate(name, text, 90, "latitude")
    elif kind == "longitude":
        return _coordinate(name, text, 180, "longitude")
    elif kind == "lnglat":
        pair = _split_lnglat(text)
        if pair is None:
            return Finding(
                "error",
                "bad_lnglat",
                name,
                f"{name} must be 'lng,lat' (or lng/lat, lng;lat), got {_show(text)}",
            )
        return _coordinate(f"{name} longitude", pair[0], 180, "longitude") or _coordinate(
            f"{name} latitude", pair[1], 90, "latitude"
        )
    elif kind == "enum":
        allowed = [value for value, _ in param.choices]
        if text not in allowed:
            hint = " (only the letter case differs)" if text.upper() in allowed else ""
            return Finding(
                "error",
                "bad_choice",
                name,
                f"{name} must be one of {', '.join(allowed)}, got {_show(text)}{hint}",
            )
    elif kind == "email":
        if not _email_ok(text):
            return Finding(
                "error", "bad_email", name, f"{name} is not an email address: {_show(text)}"
            )
    elif kind == "url":
        if not _url_ok(text):
            return Finding(
                "error",
                "bad_url",
                name,
                f"{name} must be an absolute http(s) URL, got {_show(text)}",
            )
    elif kind in ("date", "timestamp") and _parse_date(text) is None:
        return Finding(
            "error",
            "bad_date",
            name,
            f"{name} must be a date (YYYY-MM-DD) or {_ACCEPTED}, got {_show(text)}",
        )
    return None


def _check_timestamp(
    text: str, received: datetime, stale_after: timedelta, future_skew: timedelta
) -> Iterable[Finding]:
    reading = parse_timestamp(text)
    if reading.when is None:
        yield Finding(
            "error", "bad_timestamp", "timestamp", reading.error or "timestamp is unusable"
        )
        return
    if reading.assumed_utc:
        yield Finding(
            "info",
            "timestamp_assumed_utc",
            "timestamp",
            f"timestamp {_show(text)} has no time zone; read as UTC",
        )
    # Differences, not received ± limit, so extreme received_at cannot overflow.
    age = received - reading.when
    if age > stale_after:
        yield Finding(
            "warning",
            "stale_timestamp",
            "timestamp",
            f"timestamp is {_duration(age)} older than the delivery "
            f"(limit {_duration(stale_after)}): delayed, retried or replayed?",
        )
    elif -age > future_skew:
        yield Finding(
            "warning",
            "future_timestamp",
            "timestamp",
            f"timestamp is {_duration(age)} ahead of the delivery "
            f"(limit {_duration(future_skew)}): a wrong clock or a forged value?",
        )


def _is_count(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _digits_greater(a: str, b: str) -> bool:
    # Compares digit strings without int(), which refuses more than 4300 digits.
    a, b = a.lstrip("0"), b.lstrip("0")
    return (len(a), a) > (len(b), b)


def _check_event(
    event: Event, params: Mapping[str, Sequence[str]], received: datetime
) -> Iterable[Finding]:
    present: dict[str, str] = {}
    for param in event.params:
        text = _first(params, param.name)
        if text is None:
            if not param.optional:
                yield Finding(
                    "error",
                    "missing_param",
                    param.name,
                    f"{param.name} {_absent(params, param.name)}; {event.name} always sends it",
                )
            continue
        present[param.name] = text
        finding = _check_value(param, text)
        if finding is not None:
            # Combined lng/lat sub-checks report against the parameter actually sent.
            yield replace(finding, param=param.name)

    if "validfrom" in present and "validto" in present:
        start, end = _parse_date(present["validfrom"]), _parse_date(present["validto"])
        if start and end and start > end:
            yield Finding(
                "error",
                "validity_inverted",
                "validfrom",
                f"validfrom {_show(present['validfrom'])} is after "
                f"validto {_show(present['validto'])}",
            )

    if event.name == "QR_CODE_SCANNED":
        redirects, visitors = present.get("redirects", ""), present.get("visitors", "")
        if _is_count(redirects) and _is_count(visitors) and _digits_greater(visitors, redirects):
            yield Finding(
                "warning",
                "visitors_exceed_redirects",
                "visitors",
                f"visitors ({visitors}) exceeds redirects ({redirects}): "
                "more unique visitors than scans",
            )
        if ("lat" in present) != ("lng" in present):
            have, lack = ("lat", "lng") if "lat" in present else ("lng", "lat")
            yield Finding(
                "warning",
                "incomplete_location",
                lack,
                f"{have} was sent without {lack}: the location is unusable",
            )

    if event.name == "JOB_FINISHED" and "download" in present:
        when = parse_timestamp(_first(params, "timestamp") or "").when
        if when is not None and received - when >= DOWNLOAD_VALID_FOR:
            yield Finding(
                "warning",
                "download_expired",
                "download",
                f"the download link is valid for {DOWNLOAD_VALID_FOR.days} days after "
                "the timestamp, so it had expired "
                f"{_duration(received - when - DOWNLOAD_VALID_FOR)} before delivery",
            )

    documented, lowered = _documented(event.name)
    for key in params:
        name = str(key)
        if name in documented:
            continue
        guess = lowered.get(name.lower())
        hint = f" (did you mean {guess}?)" if guess else ""
        yield Finding(
            "info",
            "extra_param",
            name,
            f"parameter {_show(name)} is not documented for {event.name}{hint}",
        )

    for param in event.all_params:
        name = param.name
        count = _count(params, name)
        if count > 1:
            use = (
                "the key is verified only if every value is an expected key"
                if name == "secrettoken"
                else "checks use the first value"
            )
            yield Finding(
                "info",
                "repeated_param",
                name,
                f"{name} was sent {count} times; {use} "
                "(receivers differ: PHP keeps a form field's last value)",
            )


@functools.cache
def _documented(event_name: str) -> tuple[frozenset[str], dict[str, str]]:
    """An event's parameter names, and each by its lower-case spelling."""
    names = frozenset(p.name for p in EVENTS[event_name].all_params)
    return names, {name.lower(): name for name in names}


def check(
    event_type: str,
    params: Mapping[str, Sequence[str]],
    *,
    received_at: datetime,
    stale_after: timedelta = timedelta(minutes=5),
    future_skew: timedelta = timedelta(minutes=1),
) -> list[Finding]:
    """Hold one delivery to the platform's documentation. Never raises on any values.

    Messages quote received values (escaped and shortened) but never the secrettoken's.
    """
    received = _aware(received_at)
    event_type = str(event_type)
    if event_type not in EVENTS and not any(
        _first(params, name) is not None for name in PLATFORM_MARKS
    ):
        # GitHub, Stripe, a plain curl: another sender's webhook, shown as
        # received; missing platform parameters would only be noise.
        return [
            Finding(
                "info",
                "not_platform",
                None,
                "no standard parameter of the platform (timestamp, user, code, secrettoken) "
                "and no documented event: not checked against its documentation",
            )
        ]
    findings: list[Finding] = []
    for param in STANDARD_PARAMS:
        if _first(params, param.name) is None:
            findings.append(
                Finding(
                    "error",
                    "missing_standard",
                    param.name,
                    f"standard parameter {param.name} {_absent(params, param.name)}; "
                    "every event sends it",
                )
            )
    timestamp = _first(params, "timestamp")
    if timestamp is not None:
        findings.extend(_check_timestamp(timestamp, received, stale_after, future_skew))

    event = EVENTS.get(event_type)
    if event is None:
        if event_type == UNKNOWN and _first(params, "event") is None:
            return findings  # no event named: said above, as a missing standard parameter
        # A name one slip away from a documented one (QR_CODE_SCANED, lead_created).
        close = difflib.get_close_matches(event_type.upper(), EVENTS, n=1, cutoff=0.9)
        findings.append(
            Finding(
                "warning" if close else "info",
                "undocumented_event",
                None,
                f"{_show(event_type)} is not a documented event"
                + (f" (did the sender mean {close[0]}?)" if close else "")
                + "; only the standard parameters were checked",
            )
        )
        return findings
    findings.extend(_check_event(event, params, received))
    return findings


# --- helpers for pages and the test-event sender ---


def location(params: Mapping[str, Sequence[str]]) -> tuple[float, float] | None:
    """(lat, lng) for a map link, from lat and lng or a combined lng/lat, if valid."""
    lat_text, lng_text = _first(params, "lat"), _first(params, "lng")
    if lat_text is None or lng_text is None:
        combined = _first(params, "lng/lat")
        pair = _split_lnglat(combined) if combined else None
        if pair is None:
            return None
        lng_text, lat_text = pair
    lat, lng = _number(lat_text), _number(lng_text)
    if lat is None or lng is None or not (-90 <= lat <= 90 and -180 <= lng <= 180):
        return None
    return (lat, lng)


def sample_delivery(event_name: str, *, now: datetime) -> list[tuple[str, str]]:
    """A realistic delivery: every parameter, optional ones too, standard ones first.

    The timestamp is `now` in unix seconds; secrettoken is left "" for the caller to
    fill. An undocumented name gets the standard parameters only (a future event).
    """
    event = EVENTS.get(event_name)
    params = STANDARD_PARAMS + (event.params if event else ())
    overrides = {
        "event": event_name,
        "timestamp": str(int(_aware(now).timestamp())),
        "secrettoken": "",
    }
    return [(p.name, overrides.get(p.name, p.sample)) for p in params]
