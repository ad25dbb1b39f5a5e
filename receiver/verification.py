"""Verification: check a delivery's `secrettoken`, then make sure it is never kept.

The platform sends the user's full API key in clear with every delivery. We
compare it, in constant time, against keyed hashes of the expected keys, and
keep only a fingerprint: a few leading characters plus a short keyed hash,
enough to tell which key a delivery used without revealing it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from urllib.parse import quote, quote_plus

SECRET_PARAM = "secrettoken"

VERIFIED = "verified"
MISMATCH = "mismatch"
MISSING = "missing"
NOT_CONFIGURED = "not_configured"
VERDICTS = (VERIFIED, MISMATCH, MISSING, NOT_CONFIGURED)

FINGERPRINT_PREFIX_CHARS = 4


@dataclass(frozen=True)
class Expected:
    """An expected secret as stored: never the secret itself."""

    label: str
    digest: str
    user: str | None = None


@dataclass(frozen=True)
class Verdict:
    verdict: str
    label: str | None = None
    fingerprint: str | None = None

    @property
    def accepted(self) -> bool:
        return self.verdict in (VERIFIED, NOT_CONFIGURED)


def digest(key: str, secret: str) -> str:
    """The keyed hash an expected secret is stored as."""
    return hmac.new(key.encode(), b"secret:" + secret.encode(), hashlib.sha256).hexdigest()


def fingerprint(key: str, secret: str) -> str:
    """Leading characters plus a short keyed hash: tells keys apart, reveals little.

    Short secrets show fewer leading characters, so at least half stays hidden.
    """
    shown = secret[: min(FINGERPRINT_PREFIX_CHARS, len(secret) // 2)]
    tag = hmac.new(key.encode(), b"fingerprint:" + secret.encode(), hashlib.sha256)
    return f"{shown}…{tag.hexdigest()[:8]}"


def mask(key: str, secret: str) -> str:
    """What replaces every occurrence of a received secret in stored data.

    Plain ASCII without quotes, `&`, `=` or spaces, so a form, query string or
    JSON body stays parseable after the replacement.
    """
    tag = hmac.new(key.encode(), b"fingerprint:" + secret.encode(), hashlib.sha256)
    return f"[secrettoken:{tag.hexdigest()[:8]}]"


def received_secrets(values: dict[str, list[str]]) -> list[str]:
    """The distinct non-empty secrettoken values a delivery carried, first first."""
    seen: list[str] = []
    for value in values.get(SECRET_PARAM, []):
        if value and value not in seen:
            seen.append(value)
    return seen


def verify(key: str, values: dict[str, list[str]], expected: list[Expected]) -> Verdict:
    """The verdict for a delivery's parameters against an inbox's expected secrets."""
    received = received_secrets(values)
    if not expected:
        if received:
            return Verdict(NOT_CONFIGURED, fingerprint=fingerprint(key, received[0]))
        return Verdict(NOT_CONFIGURED)
    if not received:
        return Verdict(MISSING)
    secret = received[0]
    candidate = digest(key, secret)
    users = values.get("user") or [""]
    match: Expected | None = None
    # Compare against every expected digest, whatever matched earlier, so the
    # time taken does not depend on which (if any) key matched.
    for item in expected:
        same = hmac.compare_digest(candidate, item.digest)
        if same and match is None and (item.user is None or item.user == users[0]):
            match = item
    fp = fingerprint(key, secret)
    if match is None:
        return Verdict(MISMATCH, fingerprint=fp)
    return Verdict(VERIFIED, label=match.label, fingerprint=fp)


class Redactor:
    """Replaces every form of the received secrets (plain, URL-encoded,
    JSON-escaped) in bytes and text, longest forms first."""

    def __init__(self, key: str, secrets: list[str]):
        pairs: dict[str, str] = {}
        for secret in secrets:
            replacement = mask(key, secret)
            for form in _encodings(secret):
                pairs.setdefault(form, replacement)
        self._text = sorted(pairs.items(), key=lambda item: -len(item[0]))
        self._bytes = [(a.encode(), b.encode()) for a, b in self._text]

    def __bool__(self) -> bool:
        return bool(self._text)

    def text(self, value: str) -> str:
        for form, replacement in self._text:
            if form in value:
                value = value.replace(form, replacement)
        return value

    def data(self, value: bytes) -> bytes:
        for form, replacement in self._bytes:
            if form in value:
                value = value.replace(form, replacement)
        return value


def _encodings(secret: str) -> set[str]:
    forms = {secret, quote_plus(secret), quote(secret, safe=""), quote(secret)}
    forms.add(json.dumps(secret)[1:-1])
    forms.add(json.dumps(secret, ensure_ascii=False)[1:-1])
    # Percent-encoding is case-insensitive and some senders use lower-case hex.
    forms |= {_PERCENT.sub(lambda m: m.group(0).lower(), form) for form in forms}
    return {form for form in forms if form}


_PERCENT = re.compile(r"%[0-9A-F]{2}")
