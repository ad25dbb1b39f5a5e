"""Inboxes as a team manages them: create, rename, settings, secrets, copy, delete.

One set of rules for the dashboard, the API and the CLI: each takes plain
values (form fields or JSON) and gets back either the changed inbox or a
`SettingsError` naming the field and what is wrong with it.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import delete, select

from . import outbound, storage
from .extensions import db
from .models import Capture, CaptureCount, ExpectedSecret, Inbox
from .verification import digest, fingerprint

MAX_RESPONSE_BODY = 64 * 1024
MAX_DELAY_MS = 30_000
TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"  # RFC 9110 5.6.2
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")
# What a header value may hold (RFC 9110 field-value; tabs inside, no other control).
HEADER_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
# type/subtype *( OWS ";" OWS [ name=value ] ), value a token or a quoted string
# (RFC 9110 8.3.1, 5.6.4); no control characters anywhere.
QUOTED = r'"(?:[ !#-\[\]-~]|\\[ -~])*"'
MEDIA_TYPE = re.compile(rf"{TOKEN}/{TOKEN}(?:[ \t]*;[ \t]*(?:{TOKEN}=(?:{TOKEN}|{QUOTED}))?)*")
# Statuses whose answer carries no body (1xx are refused anyway).
BODILESS_STATUSES = (204, 205, 304)

# Headers a custom response may not set, and why: the server (Werkzeug, gunicorn)
# sets, replaces or drops them, so they would be saved but not sent as typed.
_FRAMING = "is set by the server to match the body it sends"
_HOP_BY_HOP = "is about the connection itself: the server sets or drops it"
RESERVED_HEADERS = {
    "content-type": "is set by the server (use response_content_type)",
    "content-length": _FRAMING,
    "transfer-encoding": _FRAMING,
    "content-encoding": "would say the body is encoded, but it is sent as typed",
    "connection": _HOP_BY_HOP,
    "keep-alive": _HOP_BY_HOP,
    "proxy-connection": _HOP_BY_HOP,
    "proxy-authenticate": _HOP_BY_HOP,
    "proxy-authorization": _HOP_BY_HOP,
    "upgrade": _HOP_BY_HOP,
    "te": _HOP_BY_HOP,
    "trailer": _HOP_BY_HOP,
    "trailers": _HOP_BY_HOP,
    "host": "is a request header, not part of an answer",
    "date": "is set by the server",
    "server": "is set by the server",
    "x-capture-id": "is set by the server (the id of the capture)",
}

# What "copy configuration" carries from one inbox to another (never captures).
COPIED = (
    "enforce_secret",
    "response_status",
    "response_content_type",
    "response_body",
    "response_headers",
    "response_delay_ms",
    "fail_remaining",
    "fail_status",
    "cors",
    "capacity",
    "retention_days",
)


@dataclass
class SettingsError(Exception):
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def random_slug() -> str:
    """An unguessable inbox name, for URLs that should not be found by trying."""
    return secrets.token_hex(12)


# What storage.SLUG allows, in words.
SLUG_RULE = "1-64 lower-case letters (a-z), digits, '-' or '_', starting with a letter or digit"


def check_slug(slug, *, field: str = "slug") -> str:
    slug = slug.strip() if isinstance(slug, str) else ""
    if not storage.SLUG.match(slug):
        raise SettingsError(field, f"use {SLUG_RULE}")
    return slug


def create(slug: str | None = None) -> Inbox:
    slug = check_slug(slug) if slug else random_slug()
    if storage.find_inbox(slug) is not None:
        raise SettingsError("slug", f"an inbox named {slug!r} already exists")
    return storage.create_inbox(slug)


def rename(inbox: Inbox, slug: str) -> Inbox:
    slug = check_slug(slug)
    if slug != inbox.slug and storage.find_inbox(slug) is not None:
        raise SettingsError("slug", f"an inbox named {slug!r} already exists")
    inbox.slug = slug
    db.session.commit()
    storage.forget_inboxes()
    return inbox


def remove(inbox: Inbox) -> None:
    """Delete an inbox with its captures, counts and secrets."""
    db.session.execute(delete(Capture).where(Capture.inbox_id == inbox.id))
    db.session.execute(delete(CaptureCount).where(CaptureCount.inbox_id == inbox.id))
    db.session.execute(delete(ExpectedSecret).where(ExpectedSecret.inbox_id == inbox.id))
    db.session.delete(inbox)
    db.session.commit()
    storage.forget_inboxes()


# Settings: each reader turns a submitted value into the stored one or raises.


def _flag(name: str, value) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "on", "yes"):
        return True
    if text in ("0", "false", "off", "no", ""):
        return False
    raise SettingsError(name, "must be true or false")


_DIGITS = re.compile(r"-?[0-9]+")


def _whole(name: str, value, low: int, high: int, *, optional: bool = False) -> int | None:
    if optional and (value is None or str(value).strip() == ""):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        number = int(value.strip())  # ASCII digits only: int() would take ２０１ too
    else:
        raise SettingsError(name, "must be a whole number")
    if not low <= number <= high:
        raise SettingsError(name, f"must be between {low} and {high}")
    return number


def _text(name: str, value, limit: int, *, single_line: bool = True) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):  # a JSON object or number would be stored as its repr
        raise SettingsError(name, "must be text (a JSON string) or null")
    text = value
    if len(text) > limit:
        raise SettingsError(name, f"must be at most {limit} characters")
    if single_line and ("\r" in text or "\n" in text):
        raise SettingsError(name, "must be a single line")
    if "\x00" in text:  # PostgreSQL's text cannot hold one
        raise SettingsError(name, "must not contain a NUL character")
    return text or None


def _headers(value) -> str:
    """Extra response headers: a list of [name, value] pairs, or `Name: value` lines."""
    if value is None or value == "":
        return "[]"
    if isinstance(value, str):
        pairs = []
        # Only CR and LF end a line: str.splitlines() also splits at bytes a
        # latin-1 value may hold (\x85) and at controls that are refused below.
        for line in re.split(r"\r\n|\r|\n", value):
            if not line.strip():
                continue
            if ":" not in line:
                raise SettingsError("response_headers", f"{line!r} is not 'Name: value'")
            name, _, text = line.partition(":")
            pairs.append([name.strip(), text.strip()])
    elif isinstance(value, list):
        pairs = value
    else:
        raise SettingsError("response_headers", "must be a list of [name, value] pairs")
    clean = []
    for pair in pairs:
        if not (
            isinstance(pair, list | tuple)
            and len(pair) == 2
            and all(isinstance(part, str) for part in pair)
        ):
            raise SettingsError("response_headers", "each header is a [name, value] pair of text")
        name, text = pair
        problem = header_problem(name, text)
        if problem:
            raise SettingsError("response_headers", problem)
        clean.append([name, text])
    if len(clean) > 50:
        raise SettingsError("response_headers", "at most 50 headers")
    return json.dumps(clean)


def header_problem(name: str, text: str) -> str | None:
    """Why a custom response header cannot be sent as typed, or None."""
    if not HEADER_NAME.match(name):
        return f"{name!r} is not a valid header name"
    if name.lower() in RESERVED_HEADERS:
        return f"{name} {RESERVED_HEADERS[name.lower()]}"
    if "\r" in text or "\n" in text or len(text) > 4096 or not _latin1(text):
        return f"the value of {name} must be one line of latin-1 text"
    if not sendable_header_value(text):
        return f"the value of {name} holds a control character, which HTTP does not allow"
    return None


def sendable_header_value(text: str) -> bool:
    """Whether HTTP (and gunicorn) can carry `text` as a header value."""
    return HEADER_VALUE.fullmatch(text) is not None


def sendable_content_type(text: str | None) -> bool:
    return text is None or MEDIA_TYPE.fullmatch(text) is not None


def _latin1(text: str) -> bool:
    """HTTP header values travel as latin-1; anything else cannot be sent."""
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _media_type(value) -> str | None:
    text = _text("response_content_type", value, 200)
    text = text.strip(" \t") if text else None
    if text and not MEDIA_TYPE.fullmatch(text):
        raise SettingsError(
            "response_content_type",
            "must be a media type such as text/plain or application/json; charset=utf-8",
        )
    return text or None


def _forward_url(value) -> str | None:
    text = _text("forward_url", value, 2000)
    if text is None:
        return None
    try:
        parts = urlsplit(text)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError for a port that is no port (99999, abc)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        usable = False
    if not usable:
        raise SettingsError("forward_url", "must be an absolute http(s) URL with a valid port")
    if any(c.isspace() or not c.isprintable() for c in text):
        raise SettingsError(
            "forward_url", "must not hold spaces or control characters (percent-encode them)"
        )
    refusal = outbound.never_allowed(text)
    if refusal:
        raise SettingsError("forward_url", refusal)
    return text


READERS = {
    "enforce_secret": lambda v: _flag("enforce_secret", v),
    "cors": lambda v: _flag("cors", v),
    # 1xx are interim answers: a server cannot end a request with one.
    "response_status": lambda v: _whole("response_status", v, 200, 599),
    "response_content_type": _media_type,
    "response_body": lambda v: _text("response_body", v, MAX_RESPONSE_BODY, single_line=False),
    "response_headers": _headers,
    "response_delay_ms": lambda v: _whole("response_delay_ms", v, 0, MAX_DELAY_MS),
    "fail_remaining": lambda v: _whole("fail_remaining", v, 0, 1_000_000),
    "fail_status": lambda v: _whole("fail_status", v, 200, 599),
    "capacity": lambda v: _whole("capacity", v, 1, 10_000_000, optional=True),
    "retention_days": lambda v: _whole("retention_days", v, 1, 36_500, optional=True),
    "forward_url": _forward_url,
}


def check(values: Mapping, inbox: Inbox | None = None) -> dict:
    """The stored form of the given settings; raises SettingsError for the first bad one.

    Settings that depend on each other are checked together, with the inbox's
    stored value (or a new inbox's default) for the one not given."""
    unknown = set(values) - set(READERS) - {"slug"}
    if unknown:
        raise SettingsError(
            sorted(unknown)[0], f"is not a setting (settings: {', '.join(sorted(READERS))})"
        )
    changes = {name: READERS[name](values[name]) for name in values if name in READERS}
    _check_body_allowed(changes, inbox)
    return changes


def _check_body_allowed(changes: dict, inbox: Inbox | None) -> None:
    """HTTP sends no body with a 204, 205 or 304: a body set with one would be dropped."""
    if "response_status" not in changes and "response_body" not in changes:
        return
    stored = settings(inbox) if inbox else {}
    status = changes.get("response_status", stored.get("response_status"))
    body = changes.get("response_body", stored.get("response_body"))
    if status not in BODILESS_STATUSES or not body:
        return
    if "response_status" in changes:
        raise SettingsError(
            "response_status",
            f"{status} answers carry no body: clear response_body or choose another status",
        )
    raise SettingsError(
        "response_body", f"must be empty while response_status is {status} (it carries no body)"
    )


def update(inbox: Inbox, values: Mapping) -> Inbox:
    """Apply the given settings (others stay); all are checked before any is kept."""
    changes = check(values, inbox)
    if "slug" in values:
        slug = check_slug(values["slug"])
        if slug != inbox.slug and storage.find_inbox(slug) is not None:
            raise SettingsError("slug", f"an inbox named {slug!r} already exists")
        changes["slug"] = slug
    for name, value in changes.items():
        setattr(inbox, name, value)
    db.session.commit()
    storage.forget_inboxes()
    return inbox


def settings(inbox: Inbox) -> dict:
    """An inbox's settings as plain values (for the API and the settings form)."""
    return {
        "slug": inbox.slug,
        "enforce_secret": inbox.enforce_secret,
        "response_status": inbox.response_status,
        "response_content_type": inbox.response_content_type,
        "response_body": inbox.response_body,
        "response_headers": json.loads(inbox.response_headers or "[]"),
        "response_delay_ms": inbox.response_delay_ms,
        "fail_remaining": inbox.fail_remaining,
        "fail_status": inbox.fail_status,
        "cors": inbox.cors,
        "capacity": inbox.capacity,
        "retention_days": inbox.retention_days,
        "forward_url": inbox.forward_url,
    }


# Expected secrets.


def secrets_of(inbox: Inbox) -> list[ExpectedSecret]:
    return list(
        db.session.execute(
            select(ExpectedSecret)
            .where(ExpectedSecret.inbox_id == inbox.id)
            .order_by(ExpectedSecret.id)
        ).scalars()
    )


def trimmed(secret: str) -> str:
    """A key as it is expected: spaces around it (a pasted key often brings one,
    and it would turn every genuine delivery into "wrong key") left out."""
    return secret.strip()


def add_secret(inbox: Inbox, label: str, secret: str, user: str | None = None) -> ExpectedSecret:
    label = (_text("label", label, 100) or "").strip()
    if not label:
        raise SettingsError("label", "is required")
    secret = trimmed(secret)
    if not secret:
        raise SettingsError("secret", "is required")
    if len(secret) > 1000:
        raise SettingsError("secret", "must be at most 1000 characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in secret):
        # A pasted key with a newline would never match what a sender sends.
        raise SettingsError("secret", "must not contain control characters (a newline?)")
    user = (_text("user", user, 200) or "").strip() or None
    key = current_app.config["SECRET_KEY"]
    keyed = digest(key, secret)
    existing = secrets_of(inbox)
    for other in existing:
        # A key open to every user already covers any one user.
        if other.digest == keyed and other.user in (None, user):
            restriction = f" (for user {other.user!r})" if other.user else ""
            raise SettingsError(
                "secret", f"this key is already expected, as {other.label!r}{restriction}"
            )
    # A verified capture names its key by label: two keys with one label are ambiguous.
    if any(other.label == label for other in existing):
        raise SettingsError(
            "label", f"{label!r} already names a key of this inbox: choose another label"
        )
    row = ExpectedSecret(
        inbox_id=inbox.id,
        label=label,
        user=user,
        digest=keyed,
        fingerprint=fingerprint(key, secret),
        created_at=storage.utcnow(),
    )
    db.session.add(row)
    db.session.commit()
    storage.forget_inboxes()
    return row


def remove_secret(inbox: Inbox, secret_id: int) -> bool:
    if secret_id > storage.MAX_SMALL_ID:
        return False
    result = db.session.execute(
        delete(ExpectedSecret).where(
            ExpectedSecret.inbox_id == inbox.id, ExpectedSecret.id == secret_id
        )
    )
    db.session.commit()
    storage.forget_inboxes()
    return bool(result.rowcount)


def copy_config(source: Inbox, target: Inbox) -> Inbox:
    """Give `target` the configuration of `source`: secrets (as their hashes),
    enforce mode, response, CORS, capacity and retention. Captures stay put."""
    if source.id == target.id:
        raise SettingsError("target", "is the same inbox")
    for name in COPIED:
        setattr(target, name, getattr(source, name))
    db.session.execute(delete(ExpectedSecret).where(ExpectedSecret.inbox_id == target.id))
    for secret in secrets_of(source):
        db.session.add(
            ExpectedSecret(
                inbox_id=target.id,
                label=secret.label,
                user=secret.user,
                digest=secret.digest,
                fingerprint=secret.fingerprint,
                created_at=storage.utcnow(),
            )
        )
    db.session.commit()
    storage.forget_inboxes()
    return target
