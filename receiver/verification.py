"""Verification: check a delivery's `secrettoken`, then make sure it is never kept.

The platform sends the user's full API key in clear with every delivery. We
compare it, in constant time, against keyed hashes of the expected keys, and
keep only a fingerprint: a few leading characters plus a short keyed hash,
enough to tell which key a delivery used without revealing it.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import hmac
import html.entities
import itertools
import json
import logging
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import AnyStr
from urllib.parse import quote, quote_plus, unquote_to_bytes

from .capture import json_source

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
    # For a wrong key: what turns it into an expected one, when a usual slip does.
    hint: str | None = None

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
    JSON string stays parseable after the replacement. (A key sent as a JSON
    number is not a string: `quote_bare_masks` mends that.)
    """
    tag = hmac.new(key.encode(), b"fingerprint:" + secret.encode(), hashlib.sha256)
    return f"[secrettoken:{tag.hexdigest()[:8]}]"


# What a key outside a JSON string can be (or be part of): a number, a literal.
_BARE_TOKEN = re.compile(r"[-+.eE0-9]+|true|false|null")
_MASK = r"\[secrettoken:[0-9a-f]{8}\]"
_NUMBER_CHARS = r"[-+.eE0-9]*+"
# A mask not right after a quote: the only kind that can stand outside a string.
_UNQUOTED_MASK = r'(?<!")' + _MASK
# A JSON string (skipped whole), or a mask outside any string with the digits around it.
_STRING_OR_BARE_MASK = (
    r'"(?:[^"\\]++|\\.)*+"|(?P<bare>' + _NUMBER_CHARS + "(?:" + _MASK + _NUMBER_CHARS + ")++)"
)
_BARE_MASKS = {
    str: (re.compile(_UNQUOTED_MASK), re.compile(_STRING_OR_BARE_MASK, re.S), '"'),
    bytes: (
        re.compile(_UNQUOTED_MASK.encode()),
        re.compile(_STRING_OR_BARE_MASK.encode(), re.S),
        b'"',
    ),
}


def quote_bare_masks(document: AnyStr) -> tuple[AnyStr, bool]:
    """A masked JSON document with each mask that stands outside a string (the
    key was sent as a number, or inside one) made a string, digits around it
    included, so the document stays valid JSON. Also whether anything changed."""
    hint, pattern, quote_mark = _BARE_MASKS[type(document)]
    if not hint.search(document):
        return document, False
    changed = False

    def quote_bare(match: re.Match[AnyStr]) -> AnyStr:
        nonlocal changed
        if match.group("bare") is None:
            return match.group()
        changed = True
        return quote_mark + match.group() + quote_mark

    mended = pattern.sub(quote_bare, document)
    return (mended, True) if changed else (document, False)


MAX_RECEIVED_SECRETS = 16


def received_secrets(values: dict[str, list[str]]) -> list[str]:
    """The distinct non-empty secrettoken values a delivery carried, first first."""
    seen: list[str] = []
    for value in values.get(SECRET_PARAM, []):
        if value and value not in seen:
            seen.append(value)
    return seen


def secrets_to_mask(received: list[str], document: object = None) -> list[str]:
    """Every value to mask in a delivery: the keys it carried, and in a JSON
    body each text or number under a `secrettoken` name (in any case) at any depth. A key
    sent as an array or object is masked item by item (the body stays valid
    JSON), not as its re-serialised text, which the body does not hold."""
    found: list[str] = []
    structured: set[str] = set()
    todo = [document] if isinstance(document, (dict, list)) else []
    while todo:
        node = todo.pop()
        items = node if isinstance(node, list) else getattr(node, "pairs", None) or node.items()
        for item in items:
            name, value = (None, item) if isinstance(node, list) else item
            if isinstance(name, str) and name.lower() == SECRET_PARAM:
                if node is document and isinstance(value, (dict, list)):
                    structured.add(json_source(value))  # as the parameter list has it
                found += _leaves(value)
            elif isinstance(value, (dict, list)):
                todo.append(value)
            elif (
                isinstance(value, str)
                and value[:1] in "{["
                and names_secrettoken(value.encode("utf-8", "surrogatepass"))
            ):
                # JSON sent as a string inside JSON (a queue's or bus's envelope).
                with contextlib.suppress(ValueError, RecursionError):
                    inner = json.loads(value)
                    if isinstance(inner, (dict, list)):
                        todo.append(inner)
    # Ordered and distinct, and no longer than needed to tell there are too many.
    seen: dict[str, None] = {}
    for value in itertools.chain((v for v in received if v not in structured), found):
        if value:
            seen[value] = None
            if len(seen) > MAX_RECEIVED_SECRETS:
                break
    return list(seen)


# A key may also stand under a secrettoken name of another kind: in another
# case (SecretToken=), as a PHP array or nested name (secrettoken[]=,
# data[secrettoken]=), in a header named X-Secrettoken, in a cookie or another
# header's value, in a body not declared as a form, as JSON text inside a form
# field or a text body, in a multipart part the body's parser could not read,
# or in the path (/secrettoken/KEY). Such values are never verified, but they
# are masked like a key. Parsed names (parameters, JSON keys) are matched as
# names; text nothing parsed is looked through where the word itself stands.
_SECRET_NAME = re.compile(r"(?:^|\[)secrettoken(?:$|[\[\]])", re.IGNORECASE)
_SECRET_HEADER = re.compile(r"(?:^|[-_])secrettoken$", re.IGNORECASE)


def is_secret_name(name: str) -> bool:
    """A parameter or JSON name that carries a secrettoken, in any case: the
    name itself, or as a PHP array or nested name (`secrettoken[]`, `a[secrettoken]`)."""
    return _SECRET_NAME.search(name) is not None


def is_secret_header(name: str) -> bool:
    """A header named for a secrettoken: `secrettoken`, `X-Secrettoken`."""
    return _SECRET_HEADER.search(name) is not None


_WORD = SECRET_PARAM.encode()
_VALUE_MAX = 4096
# secrettoken, then any [..] or %5B..%5D parts (no brackets or % inside them,
# so there is one way to read them), then = and the value.
_FORM_VALUE = re.compile(
    rb"secrettoken(?:\]|%%5d|(?:\[|%%5b)[^\[\]%%=&;\s]{0,64}(?:\]|%%5d))*+(?:=|%%3d)"
    rb"([^&;\s'\"#,]{1,%d})" % _VALUE_MAX,
    re.IGNORECASE,
)
# "secrettoken": "text" or "secrettoken": number (after the opening quote).
_JSON_VALUE = re.compile(
    rb'secrettoken"\s*:\s*(?:"((?:[^"\\]|\\.){1,%d})"|(-?[0-9][-+.eE0-9]{0,63}))' % _VALUE_MAX,
    re.IGNORECASE,
)
# name="secrettoken" (a multipart part's header), its other header lines, then its first line.
_PART_VALUE = re.compile(
    rb'secrettoken"?(?:;[^\r\n]*)?\r?\n(?:[^\r\n]+\r?\n){0,16}\r?\n([^\r\n]{1,%d})' % _VALUE_MAX,
    re.IGNORECASE,
)
_PATH_VALUE = re.compile(rb"secrettoken/([^/]{1,%d})" % _VALUE_MAX, re.IGNORECASE)
# Other ways text names a value: quoted (a cookie's secrettoken="KEY", an XML
# or HTML attribute), after a colon (YAML, a log line such as the platform's
# own `secrettoken: KEY`), or as an XML element's text. The last two only for
# a value of 8 characters or more: prose says "secrettoken: is required", and
# a short value is masked wherever it stands alone.
_QUOTED_VALUE = re.compile(
    rb"""secrettoken['"]?\s*[=:]\s*(["'])((?:(?!\1)[^\r\n]){1,%d})\1""" % _VALUE_MAX,
    re.IGNORECASE,
)
_COLON_VALUE = re.compile(
    rb"secrettoken\s*:\s*([^\s'\"<>,;&{}\[\]]{8,%d})" % _VALUE_MAX, re.IGNORECASE
)
_ELEMENT_VALUE = re.compile(rb"secrettoken>\s*([^<\s]{8,%d})\s*<" % _VALUE_MAX, re.IGNORECASE)
# What may stand right before the word for it to be a name of its own (not
# has_secrettoken): the start, a character that is no part of a name, or a %XX escape.
_NAME_PART = re.compile(rb"[A-Za-z0-9_-]")
_ESCAPE_BEFORE = re.compile(rb"%[0-9A-Fa-f]{2}$")
# More places than this naming a secrettoken in one request is no delivery.
NAMED_PLACES_MAX = 10_000


class TooManySecrets(ValueError):
    """A request names a secrettoken in more places than are looked through."""


class NameScan:
    """Values under secrettoken names in a request's texts (a body, a query
    string, a header value, a path), in any of the ways above; distinct, at
    most one more than MAX_RECEIVED_SECRETS. Places are counted over the
    whole request: past NAMED_PLACES_MAX, TooManySecrets."""

    def __init__(self) -> None:
        self.places = 0
        self._found: dict[str, None] = {}

    @property
    def values(self) -> list[str]:
        return list(self._found)

    def add(self, value: str) -> None:
        if value and len(self._found) <= MAX_RECEIVED_SECRETS:
            self._found[value] = None

    def text(self, data: bytes, *, path: bool = False) -> None:
        for at in _places(data, _WORD):
            self.places += 1
            if self.places > NAMED_PLACES_MAX:
                raise TooManySecrets(
                    f"secrettoken is named in more than {NAMED_PLACES_MAX:,} places"
                )
            if len(self._found) > MAX_RECEIVED_SECRETS:
                return
            value = _named_value(data, at, path)
            if value:
                self.add(value.decode("utf-8", "replace"))
            elif not path:
                for item in _json_structure_values(data, at):
                    self.add(item)


def _named_value(data: bytes, at: int, path: bool) -> bytes | None:
    """The value under the secrettoken name at `at`, if it is a name there."""
    before = data[max(0, at - 6) : at]
    if at and _NAME_PART.fullmatch(before[-1:]) and not _ESCAPE_BEFORE.search(before):
        return None  # part of a longer name: has_secrettoken
    if path:
        match = _PATH_VALUE.match(data, at) or _FORM_VALUE.match(data, at)
        return match and unquote_to_bytes(match.group(1))
    lowered = before.lower()
    if lowered.endswith((b'name="', b"name=")):
        match = _PART_VALUE.match(data, at)
        if match:
            return match.group(1)
    if lowered.endswith(b'"'):
        match = _JSON_VALUE.match(data, at)
        if match:
            return _json_string(match.group(1)) if match.group(1) is not None else match.group(2)
    match = _FORM_VALUE.match(data, at)  # also inside quotes: "secrettoken=KEY"
    if match:
        return unquote_to_bytes(match.group(1).replace(b"+", b" "))
    match = _QUOTED_VALUE.match(data, at)
    if match:
        return match.group(2)
    if before.endswith(b"["):
        return None  # a mask, [secrettoken:1a2b3c4d]: nothing to find in it
    match = _COLON_VALUE.match(data, at) or _ELEMENT_VALUE.match(data, at)
    return match and match.group(1)


# "secrettoken": [...] or {...} in JSON text nothing parsed (a form field, a
# header, a body that is not valid JSON).
_JSON_STRUCTURE = re.compile(rb'secrettoken"\s*:\s*(?=[\[{])', re.IGNORECASE)
# Inside one that is not valid JSON: the strings that are values, not names.
_JSON_ITEM = re.compile(r'"((?:[^"\\]|\\.){1,4096})"\s*(?=[,\]}])')
_JSON_DECODER = json.JSONDecoder()


def _json_structure_values(data: bytes, at: int) -> list[str]:
    """The texts and numbers of an array or object under the secrettoken name
    at `at`, as JSON text: each is a key to mask, like a parsed body's."""
    match = _JSON_STRUCTURE.match(data, at)
    if not match:
        return []
    text = data[match.end() : match.end() + _VALUE_MAX].decode("utf-8", "replace")
    try:
        value, _end = _JSON_DECODER.raw_decode(text)
    except ValueError:  # not valid JSON, or cut at _VALUE_MAX: up to the first close
        close = re.search(r"[\]}]", text)
        items = _JSON_ITEM.findall(text[: close.end() if close else len(text)])
        return [_json_string(item.encode()).decode("utf-8", "replace") for item in items]
    return _leaves(value)


def names_secrettoken(data: bytes) -> bool:
    """Whether the word stands anywhere in `data`, in any case (no copy of it made)."""
    return next(_places(data, _WORD), None) is not None


def _places(data: bytes, word: bytes, chunk: int = 1 << 20):
    """Where `word` (lower case) starts in `data`, in any case; a large body is
    looked through a piece at a time, not copied whole."""
    view = memoryview(data)
    for start in range(0, len(data), chunk):
        piece = bytes(view[start : start + chunk + len(word) - 1]).lower()
        at = piece.find(word)
        while 0 <= at < chunk:
            yield start + at
            at = piece.find(word, at + 1)


def _json_string(raw: bytes) -> bytes:
    """A JSON string's text (escapes read), from between its quotes."""
    try:
        return json.loads(b'"' + raw + b'"').encode("utf-8", "surrogatepass")
    except ValueError:
        return raw


def _leaves(value: object) -> list[str]:
    """The texts and numbers in a JSON value, however deep."""
    out: list[str] = []
    todo = [value]
    while todo:
        node = todo.pop()
        if isinstance(node, str):  # JSONNumber too: a number kept as sent
            out.append(node)
        elif isinstance(node, (int, float)) and not isinstance(node, bool):
            out.append(repr(node))  # as sent: read_json keeps any other as JSONNumber
        elif isinstance(node, list):
            todo += node
        elif isinstance(node, dict):
            todo += [v for _k, v in (getattr(node, "pairs", None) or node.items())]
    return out


def verify(key: str, values: dict[str, list[str]], expected: list[Expected]) -> Verdict:
    """The verdict for a delivery's parameters against an inbox's expected secrets.

    A delivery that carries several different keys (a repeated form field or
    JSON key) is verified only if every one of them is expected: receivers
    disagree on which one counts (PHP and JSON readers take the last, many
    others the first), so none may be a wrong key.
    """
    received = received_secrets(values)
    if not expected:
        if received:
            return Verdict(NOT_CONFIGURED, fingerprint=fingerprint(key, received[0]))
        return Verdict(NOT_CONFIGURED)
    if not received:
        return Verdict(MISSING)
    user = (values.get("user") or [""])[0]
    matches = [_match(key, secret, user, expected) for secret in received]
    for secret, match in zip(received, matches, strict=True):
        if match is None:
            hint = _slip(key, secret, user, expected)
            return Verdict(MISMATCH, fingerprint=fingerprint(key, secret), hint=hint)
    return Verdict(VERIFIED, label=matches[0].label, fingerprint=fingerprint(key, received[0]))


def _slip(key: str, secret: str, user: str, expected: list[Expected]) -> str | None:
    """How a wrong key would be an expected one, for the slips senders make:
    a `+` sent unescaped in a form or query (read as a space), spaces around
    the key. Only on a mismatch, so a genuine delivery costs nothing more."""
    if " " in secret.strip():
        match = _match(key, secret.strip().replace(" ", "+"), user, expected)
        if match is not None:
            return (
                f"The key is {match.label!r} if its spaces are read as '+': the sender put "
                "'+' in the form or query without percent-encoding it (%2B), so it arrived "
                "as a space."
            )
    if secret != secret.strip():
        match = _match(key, secret.strip(), user, expected)
        if match is not None:
            return f"The key is {match.label!r} without the spaces around it: the sender adds them."
    return None


def _match(key: str, secret: str, user: str, expected: list[Expected]) -> Expected | None:
    candidate = digest(key, secret)
    match: Expected | None = None
    # Compare against every expected digest, whatever matched earlier, so the
    # time taken does not depend on which (if any) key matched.
    for item in expected:
        same = hmac.compare_digest(candidate, item.digest)
        if same and match is None and (item.user is None or item.user == user):
            match = item
    return match


class Redactor:
    """Replaces a received secret wherever it appears, however it was encoded.

    Senders spell the same value many ways: percent-encoding with either hex
    case and any choice of safe characters, `+` for spaces, JSON's `\\uXXXX`
    and `\\/` escapes, UTF-8 read as latin-1 by a WSGI server. One pattern per
    secret accepts every spelling of every character, so no spelling survives.
    """

    def __init__(self, key: str, secrets: list[str], expected: Collection[str] = ()):
        """`expected`: those of the secrets that are keys the inbox expects (the
        delivery verified): masked in every spelling, however long. A wrong
        key that is a placeholder (see is_placeholder) is masked only where it
        stands as a secrettoken's value: right after the name in text, and
        in values under the name (`named`)."""
        ordered = sorted(secrets, key=len, reverse=True)  # one inside another is masked whole
        bound = [s for s in ordered if s not in expected and is_placeholder(s)]
        free = [s for s in ordered if s not in bound]
        masks = [_masking(key, s, s in expected) for s in free]
        self._text = [(text, replacement) for text, _data, replacement in masks]
        self._bytes = [(data, replacement.encode()) for _text, data, replacement in masks]
        self._bound = _bound_masking(key, tuple(bound)) if bound else None
        self._named = [(text, r) for text, _data, r in (_masking(key, s) for s in bound)]
        # And base64 of any text holding one (Basic credentials, an echo's or
        # a gateway's base64 body), wherever it starts in that text: looked
        # for only in values long enough to hold such a run.
        self._base64: list[tuple[re.Pattern[str], re.Pattern[bytes], str]] = []
        for secret, (_text, _data, replacement) in zip(free, masks, strict=True):
            in_base64 = _base64_masking(secret)
            if in_base64 is not None:
                self._base64.append((*in_base64, replacement))
        # Every spelling of a character is at least one character long, so
        # nothing shorter than the shortest secret can hold one.
        self._shortest = min(map(len, secrets), default=0)
        # Whether a mask can stand outside a JSON string: only where a key was
        # a number or a literal (or inside one). See quote_bare_masks.
        self.may_stand_bare = any(_BARE_TOKEN.fullmatch(secret) for secret in secrets)

    def __bool__(self) -> bool:
        return bool(self._text or self._bound)

    def text(self, value: str) -> str:
        if len(value) < self._shortest:
            return value
        for pattern, replacement in self._text:
            value = pattern.sub(replacement, value)
        if self._bound is not None:
            value = self._bound.text(value)
        if len(value) >= BASE64_CORE_MIN:
            for pattern, _data, replacement in self._base64:
                value = pattern.sub(replacement, value)
        return value

    def named(self, name: str, value: str) -> str:
        """A value under `name` (a parameter, a header): as `text`, and when the
        name is a secrettoken's, with placeholder keys masked in it too."""
        value = self.text(value)
        if self._named and SECRET_PARAM in name.lower():
            for pattern, replacement in self._named:
                value = pattern.sub(replacement, value)
        return value

    def data_size(self, value: bytes) -> int:
        """len(self.data(value)), without making the masked copy."""
        size = len(value)
        if size < self._shortest:
            return size
        if self._bound is not None:  # rare: a wrong placeholder key
            return len(self.data(value))
        patterns = list(self._bytes)
        if len(value) >= BASE64_CORE_MIN:
            patterns += [
                (pattern, replacement.encode()) for _t, pattern, replacement in self._base64
            ]
        for pattern, replacement in patterns:
            for match in pattern.finditer(value):
                size += len(replacement) - (match.end() - match.start())
        return size

    def data(self, value: bytes) -> bytes:
        if len(value) < self._shortest:
            return value
        for pattern, replacement in self._bytes:
            value = _replace(pattern, replacement, value)
        if self._bound is not None:
            value = self._bound.data(value)
        if len(value) >= BASE64_CORE_MIN:
            for _text, pattern, replacement in self._base64:
                value = _replace(pattern, replacement.encode(), value)
        return value


# A wrong key this short made only of digits, or of letters in one case (a
# placeholder: `1`, `42`, `true`, `test`, `changeme`, `Production`), is
# masked only where it stands as the secrettoken's value. Masked wherever it
# stands alone, it would rewrite the rest of the delivery: every 42, every
# true, a host name's 1. A short key with mixed case or letters and digits
# (`Qx9vK`) may be a real one, and is masked wherever it stands alone.
def is_placeholder(secret: str) -> bool:
    if len(secret) >= STANDALONE_UNDER:
        return False
    core = re.sub(r"[-_. ]", "", secret)
    if core.isdigit():
        return True
    return core.isalpha() and (core.islower() or core.isupper() or core.istitle())


# What may stand between the name secrettoken and its value, in the ways a
# value follows its name: `=`, `: `, `":"`, `="`, `>`, `[]=`, `/`, a
# multipart part's blank line, JSON or HTML escaped quotes, those
# percent-encoded, and in an array the items before it (masked by then).
# Not after an XML closing tag's name.
_NAME_LEAD = (
    r"(?<!</)(?i:secrettoken)"
    r"(?:[\s\"'=:,\[\]/>+]|%(?:3[dDaA]|2[027cCfF]|5[bBdDcC])|\\\"|&quot;|&#0*34;"
    r"|&#[xX]0*22;|\[secrettoken:[0-9a-f]{8}\]){0,24}"
)


class _BoundMasking:
    """Placeholder keys masked where they follow the name secrettoken."""

    def __init__(self, key: str, secrets: tuple[str, ...]):
        texts = "|".join(f"(?P<s{n}>{''.join(map(_text_group, s))})" for n, s in enumerate(secrets))
        datas = b"|".join(
            b"(?P<s%d>%s)" % (n, b"".join(map(_bytes_group, s))) for n, s in enumerate(secrets)
        )
        lead, after = f"(?P<lead>{_NAME_LEAD})", "(?![A-Za-z0-9])"
        self._text = re.compile(f"{lead}(?:{texts}){after}")
        self._bytes = re.compile(b"%s(?:%s)%s" % (lead.encode(), datas, after.encode()))
        self._masks = [mask(key, s) for s in secrets]

    def _swap(self, match: re.Match) -> AnyStr:
        found = self._masks[int(match.lastgroup[1:])]  # the group s<N> that matched
        lead = match.group("lead")
        return lead + (found if isinstance(lead, str) else found.encode())

    def text(self, value: str) -> str:
        return self._settled(self._text, value)

    def data(self, value: bytes) -> bytes:
        return self._settled(self._bytes, value)

    def _settled(self, pattern: re.Pattern, value: AnyStr) -> AnyStr:
        # Once more per item masked, for a JSON array of such keys: each item
        # follows the name only once the ones before it are masks.
        for _ in range(len(self._masks) + 1):
            value, changed = pattern.subn(self._swap, value)
            if not changed:
                break
        return value


@functools.lru_cache(maxsize=64)
def _bound_masking(key: str, secrets: tuple[str, ...]) -> _BoundMasking:
    return _BoundMasking(key, secrets)


def _replace(pattern: re.Pattern[bytes], replacement: bytes, value: bytes) -> bytes:
    """`pattern.sub(replacement, value)`, for a literal replacement. A large
    body is joined from views of it, so masking holds two copies, not three."""
    if len(value) < 65536:
        return pattern.sub(replacement, value)
    view = memoryview(value)
    pieces: list = []
    last = 0
    for match in pattern.finditer(value):
        pieces += (view[last : match.start()], replacement)
        last = match.end()
    if not pieces:
        return value
    pieces.append(view[last:])
    return b"".join(pieces)


@functools.lru_cache(maxsize=64)
def _masking(
    key: str, secret: str, expected: bool = False
) -> tuple[re.Pattern[str], re.Pattern[bytes], str]:
    """A secret's text and bytes patterns and its mask. Cached: a platform sends
    the same key with every delivery, and building the patterns costs more than
    using them. (The re module caches compiled patterns, secrets and all, too.)"""
    every = expected or len(secret) <= ANY_SPELLING_MAX
    return _text_pattern(secret, every), _bytes_pattern(secret, every), mask(key, secret)


# Shorter base64 runs would match by chance: a key under 13 characters has no
# run this long that depends on it alone.
BASE64_CORE_MIN = 16


@functools.lru_cache(maxsize=64)
def _base64_masking(secret: str) -> tuple[re.Pattern[str], re.Pattern[bytes]] | None:
    """Patterns for `secret` inside base64 (standard or URL-safe) of any text
    that holds it: at each of the three places it can start within a 3-byte
    group, the run of base64 characters that depend on its bytes alone."""
    raw = secret.encode("utf-8")
    cores: set[str] = set()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw).decode()
        core = encoded[-(-shift * 4 // 3) : (shift + len(raw)) * 4 // 3]
        if len(core) >= BASE64_CORE_MIN:
            cores |= {core, core.translate(_URL_SAFE)}
    if not cores:
        return None
    pattern = "|".join(map(re.escape, sorted(cores, key=len, reverse=True)))
    return re.compile(pattern), re.compile(pattern.encode())


_URL_SAFE = str.maketrans("+/", "-_")


_SHORT_JSON_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "/": "\\/",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}


# Each character's named HTML references that end with a semicolon (amp;, plus;).
_ENTITY_NAMES: dict[str, list[str]] = {}
for _name, _char in html.entities.html5.items():
    if len(_char) == 1 and _name.endswith(";"):
        _ENTITY_NAMES.setdefault(_char, []).append(_name)


def _hex_digit(digit: str) -> str:
    return f"[{digit.lower()}{digit.upper()}]" if digit.isalpha() else digit


def _hex(byte: int) -> str:
    """A regex for one byte's two hex digits, in either case."""
    return "".join(f"[{d.lower()}{d.upper()}]" if d.isalpha() else d for d in f"{byte:02X}")


@functools.lru_cache(maxsize=4096)
def _spellings(char: str) -> tuple[str, ...]:
    """Regexes (as text) for every way one character of a secret may be sent."""
    utf8 = char.encode("utf-8")
    forms = [re.escape(char)]
    forms.append("".join("%" + _hex(b) for b in utf8))
    # Encoded twice, as in a URL carried inside another URL's parameter.
    forms.append("".join("%25" + _hex(b) for b in utf8))
    if char == " ":
        forms.append(r"\+")
    # JSON's escapes, and the same percent-encoded, as JSON text sent inside a
    # form field or a query is (PHP's json_encode writes `\/`, Python's
    # json.dumps `\u00e9`, and the form encoding turns the backslash to %5C).
    # Each a flat alternative: a group nested in one would keep the regex
    # engine from skipping quickly to where a spelling can start.
    units = char.encode("utf-16-be")
    code_units = "".join(
        "[uU]" + _hex(units[i]) + _hex(units[i + 1]) for i in range(0, len(units), 2)
    )
    for backslash in (r"\\", "%5[cC]"):
        if char in _SHORT_JSON_ESCAPES:
            escaped = _SHORT_JSON_ESCAPES[char][1]
            forms += [backslash + re.escape(escaped), backslash + "%" + _hex(ord(escaped))]
        forms.append(code_units.replace("[uU]", backslash + "[uU]"))
    if not char.isalnum():
        # An HTML or XML character reference, as an answer or a page escapes
        # it (Go's html/template writes + as &#43;), or a named one (&amp;);
        # also form-encoded whole, as such text sent in a field is.
        digits = "".join(_hex_digit(d) for d in f"{ord(char):X}")
        names = [name[:-1] for name in _ENTITY_NAMES.get(char, ())]
        for amp, hash_, semi in (("&", "#", ";"), ("%26", "%23", "%3[bB]")):
            forms.append(f"{amp}{hash_}0*{ord(char)}{semi}")
            forms.append(f"{amp}{hash_}[xX]0*{digits}{semi}")
            forms.extend(amp + re.escape(name) + semi for name in names)
    if len(utf8) > 1:
        forms.append(re.escape(utf8.decode("latin-1")))  # UTF-8 read as latin-1
        if ord(char) < 256:
            forms.append("%" + _hex(ord(char)))  # latin-1, percent-encoded
    if char == "\ufffd":
        # The replacement character stands for whatever could not be read as
        # text: percent-escaped or raw bytes that are not UTF-8, or a JSON
        # escape of an unpaired surrogate. Any of those may have been sent.
        forms.append("(?:%[89a-fA-F][0-9a-fA-F])+")
        forms.append("[\\x80-\\xff]+")
        forms.append(r"\\[uU][dD][89a-fA-F][0-9a-fA-F]{2}")
    return tuple(forms)


# Past this length a value is masked in its common spellings only, in linear
# time, unless it is a key the inbox expects (at most 1000 characters): the
# any-spelling pattern grows too costly for a hostile sender's value.
ANY_SPELLING_MAX = 256

# A key shorter than this (a placeholder such as `test`) is masked only where
# it stands alone, not inside a longer run of letters and digits: masked
# everywhere, it would rewrite header names, parameter names and words.
STANDALONE_UNDER = 12
# Standing alone: after a character that is not a letter or digit, or after a
# percent-escape or a JSON escape (`%20abc`, `\nabc`, `\u0020abc`), which
# spell one.
_ALONE = (
    r"(?:(?<![A-Za-z0-9])|(?<=%[0-9A-Fa-f]{2})|(?<=\\[nrtbf])|(?<=\\[uU][0-9A-Fa-f]{4}))",
    r"(?![A-Za-z0-9])",
)


def _text_pattern(secret: str, every_spelling: bool = True) -> re.Pattern[str]:
    if every_spelling:
        pattern = "".join(_text_group(c) for c in secret)
    else:
        pattern = "|".join(_common_spelling_patterns(secret))
    if len(secret) < STANDALONE_UNDER:
        pattern = f"{_ALONE[0]}(?:{pattern}){_ALONE[1]}"
    return re.compile(pattern)


def _bytes_pattern(secret: str, every_spelling: bool = True) -> re.Pattern[bytes]:
    if every_spelling:
        pattern = b"".join(_bytes_group(c) for c in secret)
    else:
        pattern = "|".join(_common_spelling_patterns(secret)).encode()
    if len(secret) < STANDALONE_UNDER:
        pattern = b"%s(?:%s)%s" % (_ALONE[0].encode(), pattern, _ALONE[1].encode())
    return re.compile(pattern)


def _common_spelling_patterns(secret: str) -> list[str]:
    """Regexes for a long value's usual spellings, percent-escapes in either case."""
    forms = {
        secret,
        quote_plus(secret),
        quote_plus(secret).replace("~", "%7E"),  # PHP's urlencode
        quote(secret, safe=""),
        quote(secret),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        json.dumps(secret)[1:-1].replace("/", "\\/"),  # PHP's json_encode
        secret.encode().decode("latin-1"),
        quote(quote(secret, safe=""), safe=""),  # a URL inside a parameter
    }
    return [
        re.sub(r"%([0-9A-F]{2})", lambda m: "%" + _hex(int(m.group(1), 16)), re.escape(form))
        for form in sorted(forms, key=len, reverse=True)
    ]


@functools.lru_cache(maxsize=4096)
def _text_group(char: str) -> str:
    return "(?:" + "|".join(_spellings(char)) + ")"


@functools.lru_cache(maxsize=4096)
def _bytes_group(char: str) -> bytes:
    forms = [form.encode("utf-8") for form in _spellings(char)]
    if ord(char) < 256:
        forms.append(re.escape(char.encode("latin-1")))  # a latin-1 body
    return b"(?:" + b"|".join(forms) + b")"


# A `secrettoken=` pair in text whose key is not known, such as a request line
# gunicorn refuses before the app sees it: the value is hidden up to the next
# separator, whatever it was.
_SECRET_PAIR = re.compile(r"(secrettoken(?:=|%3[dD]))[^&\s'\"#]*", re.IGNORECASE)


def hide_secret_pairs(text: str) -> str:
    return _SECRET_PAIR.sub(r"\1[hidden]", text)


class HideSecretPairs(logging.Filter):
    """Masks secrettoken values in a logger's records: gunicorn's own log
    lines quote a refused request line whole, path and query string and all.
    The values are found as a delivery's are (NameScan: form pairs, bracketed
    and JSON names, path segments; percent-encoded names too) and hidden in
    every spelling."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        # Cheap for the usual line (every access-log line passes here).
        if SECRET_PARAM not in message.lower() and "%" not in message:
            return True
        data = message.encode("utf-8", "surrogateescape")
        decoded = unquote_to_bytes(data)  # `secret%74oken=` names it too
        if not names_secrettoken(decoded):
            return True
        scan = NameScan()
        with contextlib.suppress(TooManySecrets):  # hide what was found so far
            for text in dict.fromkeys((data, decoded)):
                scan.text(text)
                # A path is one word of the line: its value ends where the word does.
                for word in text.split():
                    if names_secrettoken(word):
                        scan.text(word.strip(b"'\""), path=True)
        message = hide_secret_pairs(message)
        for value in scan.values:
            if not value.startswith(("[secrettoken:", "[hidden]")):  # masked already
                message = _text_pattern(value).sub("[hidden]", message)
        record.msg, record.args = message, ()
        return True
