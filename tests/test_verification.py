"""Verification of the secrettoken: verdicts, enforce mode, fingerprints and redaction.

The platform sends the user's full API key in clear with every delivery. These tests
hold the receiver to PRODUCT.md: the key is checked against keyed hashes, and only a
mask and a fingerprint of it are ever kept or shown, in any form it can arrive in.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import html
import json
import logging
import re
import sqlite3
import time
import zlib
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, quote, quote_plus, urlencode

import brotli
import pytest
import zstandard
from conftest import SECRET_KEY
from sqlalchemy import create_engine, inspect, text

from receiver.catalog import EVENTS, sample_delivery
from receiver.verification import mask

KEY = "qrp_live_8f2K9xYz3Lm7Qw1R"
OTHER_KEY = "qrp_live_Zt4Hn6Vb0Pq2Ws8E"
WRONG_KEY = "qrp_live_WRONGwrongWRONG1"

# Secrets that survive no encoding unchanged: URL-special, JSON-special, non-ASCII.
SECRETS = {
    "plain": KEY,
    "url-special": "k3y/with+plus&amp=and space",
    "json-special": 'quote"back\\slash',
    "unicode": "clé✓",
    # Characters that common encoders disagree on: some leave them, some percent-encode.
    "symbols": "tok!en*with~(parens)'q",
}

FORM_TYPE = "application/x-www-form-urlencoded"


# --- helpers ---


def add_secret(runner, label: str, secret: str, user: str | None = None, inbox="default"):
    args = ["inbox", "add-secret", inbox, "--label", label, "--secret", secret]
    if user is not None:
        args += ["--user", user]
    result = runner.invoke(args=args)
    assert result.exit_code == 0, result.output
    return result


def listed_secrets(runner, inbox="default") -> dict[str, tuple[str, str]]:
    """`inbox secrets` output as {label: (fingerprint, user column)}."""
    result = runner.invoke(args=["inbox", "secrets", inbox])
    assert result.exit_code == 0, result.output
    rows = [line.split("\t") for line in result.output.splitlines() if line.strip()]
    return {label: (fp, user) for _id, label, fp, user in rows}


def enforce(runner, mode: str, inbox="default"):
    result = runner.invoke(args=["inbox", "enforce", inbox, mode])
    assert result.exit_code == 0, result.output


def capture_id(response) -> int:
    return int(response.headers["X-Capture-Id"])


def post_form(client, params, path="/hooks/default"):
    return client.post(path, data=urlencode(params), content_type=FORM_TYPE)


def delivery(**changes) -> list[tuple[str, str]]:
    """A QR_CODE_SCANNED sample delivery, now, with `changes` (None drops a parameter)."""
    params = dict(sample_delivery("QR_CODE_SCANNED", now=datetime.now(UTC)))
    for name, value in changes.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = value
    return list(params.items())


def post_compressed(client, data: bytes, encoding: str = "gzip"):
    """A form delivery sent with a Content-Encoding."""
    return client.post(
        "/hooks/default",
        data=data,
        headers={"Content-Type": FORM_TYPE, "Content-Encoding": encoding},
    )


def problems(document) -> list[dict]:
    return [f for f in document["findings"] if f["level"] in ("error", "warning")]


def database_bytes(database_url: str) -> bytes:
    """Everything the database holds, as bytes: the SQLite file and its WAL, raw."""
    if database_url.startswith("sqlite:///"):
        path = Path(database_url.removeprefix("sqlite:///"))
        data = path.read_bytes()
        wal = path.with_name(path.name + "-wal")
        if wal.exists():
            data += wal.read_bytes()
        return data
    # Another database (TEST_DATABASE_URL): every value of every row, as text.
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            chunks = []
            for table in inspect(conn).get_table_names():
                for row in conn.execute(text(f"SELECT * FROM {table}")):
                    for value in row:
                        chunks.append(value if isinstance(value, bytes) else str(value).encode())
            return b"\n".join(chunks)
    finally:
        engine.dispose()


def secret_forms(secret: str) -> set[str]:
    """Ways a sender or a store may spell the secret, each of which gives it away."""
    forms = {
        secret,
        quote_plus(secret),
        quote(secret, safe=""),
        quote(secret),
        # Werkzeug's (and many clients') form encoding: '/' and a few more left as is.
        quote_plus(secret, safe="!$'()*,/:;?@"),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        # PHP's json_encode escapes '/' by default.
        json.dumps(secret)[1:-1].replace("/", "\\/"),
        # UTF-8 bytes read as latin-1, as WSGI hands over a header value.
        secret.encode().decode("latin-1"),
    }
    forms |= {form.lower() for form in forms if "%" in form}
    return forms


def brotli_readable(data: bytes) -> bytes:
    """All a determined reader gets out of br data: decoded a byte at a time up
    to its end or its first fault, everything the decoder holds drained."""
    decoder, out = brotli.Decompressor(), []
    for at in range(len(data)):
        try:
            out.append(decoder.process(data[at : at + 1]))
            while more := decoder.process(b""):
                out.append(more)
        except brotli.error:
            break
        if decoder.is_finished():
            break
    return b"".join(out)


def zstd_readable(data: bytes) -> bytes:
    """All a reader gets out of zstd data: every frame, as far as each goes."""
    out = []
    while data[:4] == b"\x28\xb5\x2f\xfd":
        decoder = zstandard.ZstdDecompressor().decompressobj()
        try:
            out.append(decoder.decompress(data))
        except zstandard.ZstdError:
            break
        data = decoder.unused_data if decoder.eof else b""
    return b"".join(out)


def recovered_strings(document) -> list[str]:
    """Every value a reader of the API document can get back by ordinary decoding."""
    out: list[str] = [document["path"], document["subpath"], document["content_type"]]
    for name, value in document["headers"]:
        out += [name, value]
        # A header's UTF-8 bytes, as a WSGI server hands them over (latin-1).
        with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
            out.append(value.encode("latin-1").decode("utf-8"))
        if value.lower().startswith("basic "):  # credentials, base64-encoded
            with contextlib.suppress(ValueError):
                out.append(base64.b64decode(value[6:]).decode("utf-8", "replace"))
    query = document["query_string"]
    out += [value for pair in parse_qsl(query, keep_blank_values=True) for value in pair]
    body = base64.b64decode(document["body_base64"])
    coding = next((v for n, v in document["headers"] if n.lower() == "content-encoding"), "")
    if body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)  # every member
    elif coding.strip().lower() == "br":
        body = brotli_readable(body)
    elif coding.strip().lower() == "zstd":
        body = zstd_readable(body)
    with contextlib.suppress(ValueError):  # JSON in UTF-16 or UTF-32
        out.append(body.decode(json.detect_encoding(body)))
    body_text = body.decode("utf-8", errors="replace")
    out.append(body_text)
    out += [value for pair in parse_qsl(body_text, keep_blank_values=True) for value in pair]
    with contextlib.suppress(ValueError):
        out.append(json.dumps(json.loads(body_text), ensure_ascii=False))
    for param in document["params"]:
        out += [param["name"], param["value"]]
    # JSON text found in any of those (a form field, a header) read as JSON,
    # character references read, base64 decoded.
    for value in list(out):
        with contextlib.suppress(ValueError, TypeError, RecursionError):
            out.append(json.dumps(json.loads(value), ensure_ascii=False))
        out.append(html.unescape(value))
        if re.fullmatch(r"[A-Za-z0-9+/_-]{16,}={0,2}", value or ""):
            with contextlib.suppress(ValueError):
                padded = value + "=" * (-len(value) % 4)
                out.append(base64.b64decode(padded, altchars=b"-_").decode("utf-8", "replace"))
    return out


def assert_secret_hidden(secret: str, document, database_url: str, log_text: str):
    """The secret, in any spelling, is in none of: the API answer, the database, the log."""
    forms = secret_forms(secret)
    answer_texts = [json.dumps(document), json.dumps(document, ensure_ascii=False)]
    for form in forms:
        for answer in answer_texts:
            assert form not in answer, f"API answer holds {form!r}"
        assert form not in log_text, f"log holds {form!r}"
    for value in recovered_strings(document):
        assert secret not in value, f"the secret can be read back from {value[:200]!r}"
    stored = database_bytes(database_url)
    for form in forms:
        for encoding in ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"):
            assert form.encode(encoding) not in stored, f"database holds {form!r} ({encoding})"


# --- expected secrets are stored as keyed hashes only ---


def test_added_secrets_are_stored_as_keyed_hashes_only(runner, database_url):
    add_secret(runner, "prod", KEY)
    add_secret(runner, "alice-key", OTHER_KEY, user="alice")
    path = database_url.removeprefix("sqlite:///")
    if database_url.startswith("sqlite:///"):
        with sqlite3.connect(path) as conn:
            rows = conn.execute(
                "SELECT label, user, digest, fingerprint FROM expected_secret ORDER BY id"
            ).fetchall()
        assert [(label, user) for label, user, _d, _f in rows] == [
            ("prod", None),
            ("alice-key", "alice"),
        ]
        for _label, _user, digest, fingerprint in rows:
            assert len(digest) == 64 and int(digest, 16) >= 0
            for value in (digest, fingerprint):
                assert KEY not in value and OTHER_KEY not in value
    stored = database_bytes(database_url)
    for secret in (KEY, OTHER_KEY):
        for form in secret_forms(secret):
            assert form.encode() not in stored


def test_add_secret_and_secrets_list_show_the_fingerprint_never_the_key(runner):
    added = add_secret(runner, "prod", KEY)
    assert KEY not in added.output
    add_secret(runner, "alice-key", OTHER_KEY, user="alice")
    listed = listed_secrets(runner)
    assert list(listed) == ["prod", "alice-key"]
    assert listed["prod"][1] == "(any user)"
    assert listed["alice-key"][1] == "alice"
    assert listed["prod"][0] in added.output
    assert listed["prod"][0] != listed["alice-key"][0]
    output = runner.invoke(args=["inbox", "secrets", "default"]).output
    assert KEY not in output and OTHER_KEY not in output


# --- verdicts ---

VERDICT_CASES = {
    "no secrets configured": ([], {"secrettoken": KEY}, "not_configured", None),
    "no secrets, none sent": ([], {"secrettoken": None}, "not_configured", None),
    "right key": ([("prod", KEY, None)], {}, "verified", "prod"),
    "wrong key": ([("prod", KEY, None)], {"secrettoken": WRONG_KEY}, "mismatch", None),
    "no secrettoken": ([("prod", KEY, None)], {"secrettoken": None}, "missing", None),
    "empty secrettoken": ([("prod", KEY, None)], {"secrettoken": ""}, "missing", None),
    "rotation, old key": (
        [("old", KEY, None), ("new", OTHER_KEY, None)],
        {"secrettoken": KEY},
        "verified",
        "old",
    ),
    "rotation, new key": (
        [("old", KEY, None), ("new", OTHER_KEY, None)],
        {"secrettoken": OTHER_KEY},
        "verified",
        "new",
    ),
    "rotation, neither key": (
        [("old", KEY, None), ("new", OTHER_KEY, None)],
        {"secrettoken": WRONG_KEY},
        "mismatch",
        None,
    ),
    "user-tied key, its user": (
        [("alice-key", KEY, "alice")],
        {"user": "alice"},
        "verified",
        "alice-key",
    ),
    "user-tied key, another user": (
        [("alice-key", KEY, "alice")],
        {"user": "bob"},
        "mismatch",
        None,
    ),
    "user-tied key, no user": (
        [("alice-key", KEY, "alice")],
        {"user": None},
        "mismatch",
        None,
    ),
    "user-tied and open keys, other user uses the open one": (
        [("alice-key", KEY, "alice"), ("shared", OTHER_KEY, None)],
        {"user": "bob", "secrettoken": OTHER_KEY},
        "verified",
        "shared",
    ),
    "user-tied and open keys, other user uses alice's": (
        [("alice-key", KEY, "alice"), ("shared", OTHER_KEY, None)],
        {"user": "bob", "secrettoken": KEY},
        "mismatch",
        None,
    ),
}


@pytest.mark.parametrize("case", list(VERDICT_CASES))
def test_each_capture_gets_a_verdict(runner, client, fetch, case):
    secrets, changes, verdict, label = VERDICT_CASES[case]
    for secret_label, secret, user in secrets:
        add_secret(runner, secret_label, secret, user=user)
    params = delivery(**{"secrettoken": KEY, **changes})
    response = post_form(client, params)
    assert response.status_code == 200
    document = fetch(capture_id(response))
    assert document["secret"]["verdict"] == verdict
    assert document["secret"]["label"] == label
    assert document["rejected"] is False
    sent = dict(params).get("secrettoken")
    if sent:
        # A fingerprint says which key was used, whatever the verdict.
        assert document["secret"]["fingerprint"]
        assert sent not in json.dumps(document)
    else:
        assert document["secret"]["fingerprint"] is None


# --- enforce mode ---


@pytest.mark.parametrize(
    ("changes", "verdict"),
    [
        ({"secrettoken": WRONG_KEY}, "mismatch"),
        ({"secrettoken": None}, "missing"),
        ({"secrettoken": ""}, "missing"),
        ({"user": "bob"}, "mismatch"),
    ],
)
def test_enforce_mode_answers_401_without_a_hint_and_records_the_capture(
    runner, client, fetch, changes, verdict
):
    add_secret(runner, "prod", KEY, user="alice")
    fingerprint = listed_secrets(runner)["prod"][0]
    enforce(runner, "on")
    response = post_form(client, delivery(**{"secrettoken": KEY, "user": "alice", **changes}))

    assert response.status_code == 401
    answer = response.get_json()
    assert set(answer) == {"error"}
    assert answer["error"]["code"] == "secret_rejected"
    everything = response.get_data(as_text=True) + json.dumps(dict(response.headers))
    tag = fingerprint.split("…")[-1]
    for hint in (KEY, fingerprint, tag, quote_plus(KEY)):
        assert hint not in everything

    document = fetch(capture_id(response))
    assert document["rejected"] is True
    assert document["secret"]["verdict"] == verdict
    assert document["event_type"] == "QR_CODE_SCANNED"


def test_enforce_mode_still_accepts_the_right_key(runner, client, fetch):
    add_secret(runner, "prod", KEY)
    add_secret(runner, "next", OTHER_KEY)
    enforce(runner, "on")
    for secret, label in ((KEY, "prod"), (OTHER_KEY, "next")):
        response = post_form(client, delivery(secrettoken=secret))
        assert response.status_code == 200
        assert response.get_json()["ok"] is True
        document = fetch(capture_id(response))
        assert document["rejected"] is False
        assert document["secret"] == {
            "verdict": "verified",
            "label": label,
            "fingerprint": listed_secrets(runner)[label][0],
        }


def test_enforce_off_accepts_a_wrong_key_and_shows_the_mismatch(runner, client, fetch):
    add_secret(runner, "prod", KEY)
    enforce(runner, "on")
    assert post_form(client, delivery(secrettoken=WRONG_KEY)).status_code == 401
    enforce(runner, "off")
    response = post_form(client, delivery(secrettoken=WRONG_KEY))
    assert response.status_code == 200
    document = fetch(capture_id(response))
    assert document["secret"]["verdict"] == "mismatch"
    assert document["rejected"] is False


def expected_keys_shown(client, capture: int) -> list[str]:
    html = client.get(f"/inboxes/default/captures/{capture}").get_data(as_text=True)
    block = re.search(r'<ul class="compared-keys">(.*?)</ul>', html, re.S)
    if block is None:
        return []
    items = re.findall(r"<li>(.*?)</li>", block.group(1), re.S)
    return [" ".join(re.sub(r"<[^>]+>", "", item).split()) for item in items]


def test_a_wrong_key_is_shown_beside_the_keys_it_was_compared_with(runner, client):
    add_secret(runner, "prod", KEY)
    add_secret(runner, "alice-key", OTHER_KEY, user="alice")
    fingerprints = listed_secrets(runner)
    wrong = capture_id(post_form(client, delivery(secrettoken=WRONG_KEY, user="bob")))
    assert expected_keys_shown(client, wrong) == [
        f"prod {fingerprints['prod'][0]}",
        f"alice-key {fingerprints['alice-key'][0]} · only for user alice",
    ]
    # The right key from the wrong user: the page says which key it was and why it failed.
    other_user = capture_id(post_form(client, delivery(secrettoken=OTHER_KEY, user="bob")))
    assert expected_keys_shown(client, other_user)[1] == (
        f"alice-key {fingerprints['alice-key'][0]} · only for user alice"
        " · the key received, but this delivery's user is bob"
    )
    # Verified and keyless deliveries need no comparison.
    right = capture_id(post_form(client, delivery(secrettoken=KEY)))
    keyless = capture_id(post_form(client, delivery(secrettoken=None)))
    assert expected_keys_shown(client, right) == expected_keys_shown(client, keyless) == []


def advice(client, capture: int) -> str:
    html = client.get(f"/inboxes/default/captures/{capture}").get_data(as_text=True)
    said = re.search(r'<p class="advice"[^>]*>(.*?)</p>', html, re.S).group(1)
    return " ".join(re.sub(r"<[^>]+>", "", said).split())


def test_the_capture_page_says_what_a_receiver_should_do_with_each_verdict(runner, client):
    unchecked = capture_id(post_form(client, delivery(secrettoken=KEY, redirects="99")))
    assert advice(client, unchecked).startswith("No key is expected here yet")
    add_secret(runner, "prod", KEY)
    right = capture_id(post_form(client, delivery(secrettoken=KEY)))
    wrong = capture_id(post_form(client, delivery(secrettoken=WRONG_KEY)))
    keyless = capture_id(post_form(client, delivery(secrettoken=None)))
    assert advice(client, right).startswith("Genuine")
    assert "repeat" not in advice(client, right)
    # A genuine repeat, or one with an old timestamp, is told apart.
    again = capture_id(post_form(client, delivery(secrettoken=KEY)))
    assert f"it looks like a repeat of #{right}" in advice(client, again)
    old = capture_id(post_form(client, delivery(secrettoken=KEY, timestamp="1700000000")))
    assert "its timestamp is not current" in advice(client, old)
    assert "should refuse it (answer 401)" in advice(client, wrong)
    assert "compare the fingerprints" in advice(client, wrong)
    assert "anyone could have sent it" in advice(client, keyless)
    # Another sender's delivery (a GitHub push) is not told it should be refused.
    github = client.post(
        "/hooks/default", json={"ref": "refs/heads/main"}, headers={"X-GitHub-Event": "push"}
    )
    said = advice(client, capture_id(github))
    assert said.startswith("It carries no secrettoken. If it claims to come from the platform")
    assert "signature header" in said
    # Only a delivery that carried a key has one masked.
    said = "The key itself is never stored"
    assert said in client.get(f"/inboxes/default/captures/{wrong}").get_data(as_text=True)
    assert said not in client.get(f"/inboxes/default/captures/{keyless}").get_data(as_text=True)


@pytest.mark.parametrize(
    ("sent", "says"),
    [
        # curl -d 'secrettoken=aB3+xY' sends the + as is; a form reads it as a space.
        ("secrettoken=aB3+xY/9zQ==kL7%26mN", "if its spaces are read as '+'"),
        ("secrettoken=%20aB3%2BxY/9zQ==kL7%26mN%20", "without the spaces around it"),
    ],
)
def test_a_wrong_key_that_a_usual_slip_explains_says_so(runner, client, fetch, caplog, sent, says):
    key = "aB3+xY/9zQ==kL7&mN"
    add_secret(runner, "prod", key)
    caplog.set_level(logging.INFO, logger="receiver.hooks")
    response = client.post("/hooks/default", data=f"event=LEAD&{sent}", content_type=FORM_TYPE)
    document = fetch(capture_id(response))
    assert document["secret"]["verdict"] == "mismatch"
    slip = [f for f in document["findings"] if f["code"] == "secret_slip"]
    assert len(slip) == 1 and slip[0]["param"] == "secrettoken"
    assert says in slip[0]["message"] and "'prod'" in slip[0]["message"]
    assert "9zQ==kL7" not in json.dumps(document)  # the fingerprint shows 4 characters only
    # A key that is simply wrong gets no such finding.
    response = post_form(client, {"secrettoken": WRONG_KEY})
    assert "secret_slip" not in [f["code"] for f in fetch(capture_id(response))["findings"]]


def test_inbox_list_shows_the_mode(runner):
    enforce(runner, "on")
    assert "default\t0 captures\tenforce" in runner.invoke(args=["inbox", "list"]).output
    enforce(runner, "off")
    assert "default\t0 captures\tinspect" in runner.invoke(args=["inbox", "list"]).output


# --- realistic deliveries of every documented event ---


def send_form(client, params):
    return client.post("/hooks/default", data=urlencode(params), content_type=FORM_TYPE)


def send_json(client, params):
    return client.post(
        "/hooks/default", data=json.dumps(dict(params)), content_type="application/json"
    )


def send_query(client, params):
    return client.post("/hooks/default?" + urlencode(params), data=b"")


SENDERS = {"form": send_form, "json": send_json, "query": send_query}


@pytest.mark.parametrize("label", ["prod", "next"])
@pytest.mark.parametrize("how", list(SENDERS))
@pytest.mark.parametrize("event", list(EVENTS))
def test_every_event_delivered_every_way_verifies_and_hides_the_key(
    runner, client, fetch, event, how, label
):
    add_secret(runner, "prod", KEY)
    add_secret(runner, "next", OTHER_KEY)
    secret = {"prod": KEY, "next": OTHER_KEY}[label]
    params = [
        (name, secret if name == "secrettoken" else value)
        for name, value in sample_delivery(event, now=datetime.now(UTC))
    ]
    response = SENDERS[how](client, params)
    assert response.status_code == 200
    document = fetch(capture_id(response))

    assert document["event_type"] == event
    assert problems(document) == []
    assert document["secret"]["verdict"] == "verified"
    assert document["secret"]["label"] == label
    assert secret not in json.dumps(document)
    assert secret not in json.dumps(document, ensure_ascii=False)
    assert document["secret"]["fingerprint"] == listed_secrets(runner)[label][0]
    # Everything else arrived as sent.
    received = {p["name"]: p["value"] for p in document["params"]}
    for name, value in params:
        if name != "secrettoken":
            assert received[name] == value
    assert received["secrettoken"].startswith("[secrettoken:")


# --- redaction, whatever form the secret arrives in ---


def carrier_form_urlencode(client, secret):
    """Python's urlencode (requests, most HTTP libraries)."""
    return client.post(
        "/hooks/default",
        data=urlencode(delivery(secrettoken=secret)),
        content_type=FORM_TYPE,
    )


def carrier_form_client_encoding(client, secret):
    """The form encoding of Werkzeug's client (and Flask's test client): '/' kept as is."""
    return client.post("/hooks/default", data=dict(delivery(secrettoken=secret)))


def carrier_form_rfc3986(client, secret):
    """Every reserved character percent-encoded, space as %20 (curl --data-urlencode)."""
    body = "&".join(
        f"{quote(n, safe='')}={quote(v, safe='')}" for n, v in delivery(secrettoken=None)
    )
    body += "&secrettoken=" + quote(secret, safe="")
    return client.post("/hooks/default", data=body, content_type=FORM_TYPE)


def carrier_form_browser(client, secret):
    """A browser form or JavaScript's URLSearchParams: only '*-._' kept, space as '+'."""
    params = delivery(secrettoken=secret)
    body = "&".join(f"{quote_plus(n, safe='*')}={quote_plus(v, safe='*')}" for n, v in params)
    body = body.replace("~", "%7E")
    return client.post("/hooks/default", data=body, content_type=FORM_TYPE)


def carrier_form_php(client, secret):
    """PHP's http_build_query (urlencode): everything but '-_.' encoded, '~' too."""
    params = delivery(secrettoken=secret)
    body = urlencode(params).replace("~", "%7E")
    return client.post("/hooks/default", data=body, content_type=FORM_TYPE)


def carrier_query_urlencode(client, secret):
    return client.post("/hooks/default?" + urlencode(delivery(secrettoken=secret)), data=b"")


def carrier_query_client_encoding(client, secret):
    return client.post("/hooks/default", query_string=dict(delivery(secrettoken=secret)))


def carrier_json_ascii(client, secret):
    body = json.dumps(dict(delivery(secrettoken=secret)))
    return client.post("/hooks/default", data=body, content_type="application/json")


def carrier_json_utf8(client, secret):
    body = json.dumps(dict(delivery(secrettoken=secret)), ensure_ascii=False).encode()
    return client.post("/hooks/default", data=body, content_type="application/json")


def carrier_json_php(client, secret):
    """PHP's json_encode: '/' escaped as '\\/' (the platform's own language)."""
    body = json.dumps(dict(delivery(secrettoken=secret))).replace("/", "\\/")
    return client.post("/hooks/default", data=body, content_type="application/json")


def carrier_header(client, secret):
    # A WSGI server hands a header's bytes over as latin-1: send the UTF-8 bytes that way.
    return client.post(
        "/hooks/default",
        data=urlencode(delivery(secrettoken=secret)),
        content_type=FORM_TYPE,
        headers={"X-Echo": secret.encode().decode("latin-1")},
    )


def carrier_gzip_form(client, secret):
    return post_compressed(client, gzip.compress(urlencode(delivery(secrettoken=secret)).encode()))


def carrier_brotli_form(client, secret):
    form = urlencode(delivery(secrettoken=secret)).encode()
    return post_compressed(client, brotli.compress(form), "br")


def carrier_json_in_a_form_field(client, secret):
    """JSON text in a field, as PHP's json_encode writes it (`\\/`, `\\u00e9`),
    then form-encoded (the backslash as %5C)."""
    fields = delivery(secrettoken=secret)
    payload = json.dumps(dict(fields)).replace("/", "\\/")
    return client.post(
        "/hooks/default", data=urlencode([*fields, ("payload", payload)]), content_type=FORM_TYPE
    )


def carrier_basic_auth(client, secret):
    """The key as HTTP Basic credentials too, which base64 hides from a text search."""
    credentials = base64.b64encode(f"api:{secret}".encode()).decode()
    return client.post(
        "/hooks/default",
        data=urlencode(delivery(secrettoken=secret)),
        content_type=FORM_TYPE,
        headers={"Authorization": f"Basic {credentials}"},
    )


def carrier_copies_in_other_encodings(client, secret):
    """The key once more in fields of its own: as HTML character references
    (a page's or an echo's escaping) and in base64 (an envelope's body)."""
    referenced = "".join(c if c.isalnum() else f"&#{ord(c)};" for c in secret)
    fields = [*delivery(secrettoken=secret), ("html", referenced)]
    if len(secret.encode()) >= 13:  # shorter, no base64 run depends on the key alone
        fields.append(("blob", base64.b64encode(f"note from x: {secret}!".encode()).decode()))
    return client.post("/hooks/default", data=urlencode(fields), content_type=FORM_TYPE)


def carrier_zstd_form(client, secret):
    form = urlencode(delivery(secrettoken=secret)).encode()
    return post_compressed(client, zstandard.ZstdCompressor().compress(form), "zstd")


def carrier_json_utf16(client, secret):
    """JSON may be sent in UTF-16 (here with a byte-order mark) or UTF-32."""
    body = json.dumps(dict(delivery(secrettoken=secret)), ensure_ascii=False).encode("utf-16")
    return client.post("/hooks/default", data=body, content_type="application/json")


def carrier_json_utf32_be(client, secret):
    body = json.dumps(dict(delivery(secrettoken=secret)), ensure_ascii=False)
    return client.post(
        "/hooks/default", data=body.encode("utf-32-be"), content_type="application/json"
    )


def carrier_text_utf16_key_in_query(client, secret):
    """A UTF-16 text body (with its byte-order mark) that echoes the key sent in the query."""
    query = urlencode(delivery(secrettoken=secret))
    body = f"note: the key is {secret}".encode("utf-16")
    return client.post(f"/hooks/default?{query}", data=body, content_type="text/plain")


def carrier_json_repeated_key(client, secret):
    """The key twice in one object: JSON readers keep the last; both are masked."""
    fields = json.dumps(dict(delivery(secrettoken=secret)))[1:-1]
    body = "{" + fields + ", " + json.dumps("secrettoken") + ": " + json.dumps(secret) + "}"
    return client.post("/hooks/default", data=body, content_type="application/json")


def carrier_form_capital_media_type(client, secret):
    """Media types are case-insensitive: this is a form like any other."""
    return client.post(
        "/hooks/default",
        data=urlencode(delivery(secrettoken=secret)),
        content_type="Application/X-WWW-Form-URLEncoded",
    )


def carrier_gzip_members(client, secret):
    """Two gzip members one after the other (`cat a.gz b.gz`): the key in the second."""
    body = urlencode(delivery(secrettoken=secret)).encode()
    middle = len(body) // 2
    return post_compressed(client, gzip.compress(body[:middle]) + gzip.compress(body[middle:]))


def carrier_multipart(client, secret):
    return client.post(
        "/hooks/default",
        data=dict(delivery(secrettoken=secret)),
        content_type="multipart/form-data",
    )


def carrier_large_form(client, secret):
    # Past 64 KiB a form is read in place and the key masked from views of the
    # body; the key is echoed on both sides of a field that is stored cut.
    fields = [("echo", secret), *delivery(secrettoken=secret), ("padding", "p" * 200_000)]
    return client.post(
        "/hooks/default", data=urlencode([*fields, ("echo", secret)]), content_type=FORM_TYPE
    )


CARRIERS = {
    "form, urlencode": carrier_form_urlencode,
    "form over 64 KiB": carrier_large_form,
    "form, test-client encoding": carrier_form_client_encoding,
    "form, RFC 3986": carrier_form_rfc3986,
    "form, browser": carrier_form_browser,
    "form, PHP": carrier_form_php,
    "query, urlencode": carrier_query_urlencode,
    "query, test-client encoding": carrier_query_client_encoding,
    "json, ASCII escapes": carrier_json_ascii,
    "json, UTF-8": carrier_json_utf8,
    "json, PHP escaped slashes": carrier_json_php,
    "header X-Echo": carrier_header,
    "gzip form": carrier_gzip_form,
    "gzip form, two members": carrier_gzip_members,
    "brotli form": carrier_brotli_form,
    "zstd form": carrier_zstd_form,
    "JSON in a form field, escaped": carrier_json_in_a_form_field,
    "Authorization: Basic": carrier_basic_auth,
    "copies as HTML references and base64": carrier_copies_in_other_encodings,
    "json, UTF-16 with BOM": carrier_json_utf16,
    "json, UTF-32 big-endian": carrier_json_utf32_be,
    "json, key repeated": carrier_json_repeated_key,
    "UTF-16 text, key in the query": carrier_text_utf16_key_in_query,
    "form, media type in capitals": carrier_form_capital_media_type,
    "multipart field": carrier_multipart,
}


@pytest.mark.parametrize("carrier", list(CARRIERS))
@pytest.mark.parametrize("kind", list(SECRETS))
def test_received_secret_is_verified_and_never_kept(
    runner, client, fetch, database_url, caplog, kind, carrier
):
    secret = SECRETS[kind]
    add_secret(runner, "prod", secret)
    caplog.set_level(logging.INFO, logger="receiver.hooks")
    response = CARRIERS[carrier](client, secret)
    assert response.status_code == 200
    document = fetch(capture_id(response))
    assert document["secret"]["verdict"] == "verified"
    assert document["secret"]["label"] == "prod"
    assert document["secret"]["fingerprint"] == listed_secrets(runner)["prod"][0]
    assert document["event_type"] == "QR_CODE_SCANNED"
    assert problems(document) == []
    assert "Fired WebHook" in caplog.text  # the capture was logged, masked
    assert_secret_hidden(secret, document, database_url, caplog.text)


@pytest.mark.parametrize("order", ["right first", "wrong first"])
@pytest.mark.parametrize("carrier", ["json", "form"])
def test_a_key_sent_twice_with_different_values_is_a_mismatch_and_both_are_hidden(
    runner, client, fetch, database_url, caplog, order, carrier
):
    # Receivers disagree on which of a repeated key counts (JSON readers and
    # PHP take the last): a delivery that carries a wrong one is not verified,
    # whichever comes first, and every value is masked.
    add_secret(runner, "prod", KEY)
    enforce(runner, "on")
    caplog.set_level(logging.INFO, logger="receiver.hooks")
    first, second = (KEY, OTHER_KEY) if order == "right first" else (OTHER_KEY, KEY)
    if carrier == "json":
        fields = json.dumps(dict(delivery(secrettoken=first)))[1:-1]
        body = "{" + fields + ', "secrettoken": "' + second + '"}'
        response = client.post("/hooks/default", data=body, content_type="application/json")
    else:
        body = urlencode([*delivery(secrettoken=first), ("secrettoken", second)])
        response = client.post("/hooks/default", data=body, content_type=FORM_TYPE)
    assert response.status_code == 401
    document = fetch(capture_id(response))
    assert document["secret"]["verdict"] == "mismatch"
    sent = [p["value"] for p in document["params"] if p["name"] == "secrettoken"]
    assert len(sent) == 2 and all(v.startswith("[secrettoken:") for v in sent)
    if carrier == "json":
        assert "secrettoken" in document["notes"]["json_keys"]
    for secret in (KEY, OTHER_KEY):
        assert_secret_hidden(secret, document, database_url, caplog.text)


def test_a_key_sent_twice_verifies_when_both_are_expected(runner, client, fetch):
    add_secret(runner, "prod", KEY)
    add_secret(runner, "next", OTHER_KEY)
    document = fetch(
        capture_id(post_form(client, [*delivery(secrettoken=KEY), ("secrettoken", OTHER_KEY)]))
    )
    assert (document["secret"]["verdict"], document["secret"]["label"]) == ("verified", "prod")


# --- a key under a secrettoken name that is not a parameter of that exact name ---

MULTIPART_FILE = (
    "--b0undary\r\n"
    'Content-Disposition: form-data; name="secrettoken"; filename="key.txt"\r\n'
    "Content-Type: text/plain\r\n\r\n"
    "KEY\n\r\n--b0undary--\r\n"
)
MULTIPART_FILE_KEY_ON_LINE_2 = (
    "--b0undary\r\n"
    'Content-Disposition: form-data; name="secrettoken"; filename="key.txt"\r\n'
    "Content-Type: text/plain\r\n\r\n"
    "\nOur key:\nKEY\n\r\n--b0undary--\r\n"
)
MULTIPART_FILE_KEY_AS_NAME = (
    "--b0undary\r\n"
    'Content-Disposition: form-data; name="secrettoken"; filename="KEY"\r\n'
    "Content-Type: text/plain\r\n\r\n"
    "x\r\n--b0undary--\r\n"
)
NAMED_ELSEWHERE = {
    # (path, content type, body, extra headers); KEY stands for the key.
    "form body without a content type": ("/hooks/default", None, "a=1&secrettoken=KEY", {}),
    "form body sent as text/plain": ("/hooks/default", "text/plain", "secrettoken=KEY&a=1", {}),
    "another case": ("/hooks/default", FORM_TYPE, "SecretToken=KEY&a=1", {}),
    "PHP array": ("/hooks/default", FORM_TYPE, "secrettoken%5B%5D=KEY&secrettoken[1]=KEY", {}),
    "nested name": ("/hooks/default", FORM_TYPE, "data[secrettoken]=KEY&data[a]=1", {}),
    "JSON sent as a form": ("/hooks/default", FORM_TYPE, '{"a": 1, "secrettoken": "KEY"}', {}),
    "JSON in a form field": (
        "/hooks/default",
        FORM_TYPE,
        "payload=" + quote('{"secrettoken": "KEY"}'),
        {},
    ),
    "multipart with the wrong boundary": (
        "/hooks/default",
        "multipart/form-data; boundary=other",
        MULTIPART_FILE.replace("key.txt", "k"),
        {},
    ),
    "multipart file part": (
        "/hooks/default",
        "multipart/form-data; boundary=b0undary",
        MULTIPART_FILE,
        {},
    ),
    "multipart file part, the key on line 2": (
        "/hooks/default",
        "multipart/form-data; boundary=b0undary",
        MULTIPART_FILE_KEY_ON_LINE_2,
        {},
    ),
    "multipart file part, the key as its file name": (
        "/hooks/default",
        "multipart/form-data; boundary=b0undary",
        MULTIPART_FILE_KEY_AS_NAME,
        {},
    ),
    "another header": (
        "/hooks/default",
        FORM_TYPE,
        "a=1",
        {"Referer": "https://app.example/hooks?secrettoken=KEY&a=1"},
    ),
    "cookie": ("/hooks/default", FORM_TYPE, "a=1", {"cookie secrettoken": "KEY"}),
    "query in capitals": ("/hooks/default?SECRETTOKEN=KEY", FORM_TYPE, "a=1", {}),
    "path segment": ("/hooks/default/secrettoken/KEY/x", FORM_TYPE, "a=1", {}),
    "path pair": ("/hooks/default/secrettoken=KEY", FORM_TYPE, "a=1", {}),
    "path, its name percent-encoded": ("/hooks/default/secret%74oken/KEY/x", FORM_TYPE, "a=1", {}),
    "path, its slash percent-encoded": ("/hooks/default/secrettoken%2FKEY", FORM_TYPE, "a=1", {}),
    "percent-encoded name": ("/hooks/default", FORM_TYPE, "Secret%54oken=KEY&a=1", {}),
    "percent-encoded name in the query": ("/hooks/default?secret%74oken[]=KEY", None, "", {}),
    "a pair in quotes in a text body": (
        "/hooks/default",
        "text/plain",
        'args="secrettoken=KEY"',
        {},
    ),
    "a pair in a JSON string": (
        "/hooks/default",
        "application/json",
        '{"d": {"q": "secrettoken=KEY"}}',
        {},
    ),
    "a header named for it": ("/hooks/default", FORM_TYPE, "a=1", {"X-Secrettoken": "KEY"}),
    "JSON name in another case": (
        "/hooks/default",
        "application/json",
        '{"SecretToken": "KEY"}',
        {},
    ),
    "JSON name escaped": ("/hooks/default", "application/json", '{"Secret\\u0054oken": "KEY"}', {}),
    "JSON array under another case": (
        "/hooks/default",
        "application/json",
        '{"a": 1, "SecretToken": ["KEY"]}',
        {},
    ),
    "nested JSON name in another case": (
        "/hooks/default",
        "application/json",
        '{"data": {"SECRETTOKEN": "KEY"}}',
        {},
    ),
    "JSON array in a form field": (
        "/hooks/default",
        FORM_TYPE,
        "payload=%7B%22secrettoken%22%3A%5B%22KEY%22%5D%7D",
        {},
    ),
    "JSON object in a header": (
        "/hooks/default",
        FORM_TYPE,
        "a=1",
        {"X-Meta": '{"secrettoken": {"live": "KEY"}}'},
    ),
    "JSON array in a body that is not valid JSON": (
        "/hooks/default",
        "application/json",
        '{"secrettoken": ["KEY"],}',
        {},
    ),
    "JSON as a string inside JSON": (
        "/hooks/default",
        "application/json",
        '{"detail": {"body": "{\\"secrettoken\\": \\"KEY\\"}"}}',
        {},
    ),
}


@pytest.mark.parametrize("way", list(NAMED_ELSEWHERE))
def test_a_key_named_in_another_way_is_masked_though_not_verified(
    runner, client, fetch, database_url, caplog, way
):
    add_secret(runner, "prod", KEY)
    caplog.set_level(logging.INFO)
    path, content_type, body, headers = NAMED_ELSEWHERE[way]
    if "cookie secrettoken" in headers:  # the test client keeps cookies apart from headers
        client.set_cookie("secrettoken", headers.pop("cookie secrettoken").replace("KEY", KEY))
    response = client.post(
        path.replace("KEY", KEY),
        data=body.replace("KEY", KEY).encode(),
        headers={
            **{name: value.replace("KEY", KEY) for name, value in headers.items()},
            **({"Content-Type": content_type} if content_type else {}),
        },
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    document = fetch(capture_id(response))
    # Only a secrettoken parameter is checked; this one is not a parameter.
    assert document["secret"]["verdict"] in ("missing", "mismatch")
    assert "[secrettoken:" in json.dumps(document)
    assert_secret_hidden(KEY, document, database_url, caplog.text)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_a_numeric_key_under_a_json_name_in_another_case_is_masked(
    runner, client, fetch, database_url, caplog, encoding
):
    add_secret(runner, "prod", str(NUMERIC_KEY))
    body = json.dumps({"event": "LEAD_CREATED", "data": {"SecretToken": NUMERIC_KEY}})
    response = client.post(
        "/hooks/default", data=body.encode(encoding), content_type="application/json"
    )
    document = fetch(capture_id(response))
    stored = json.loads(base64.b64decode(document["body_base64"]).decode(encoding))
    assert re.fullmatch(r"\[secrettoken:[0-9a-f]{8}\]", stored["data"]["SecretToken"])
    assert_secret_hidden(str(NUMERIC_KEY), document, database_url, caplog.text)


@pytest.mark.parametrize(
    "query", ["has_secrettoken=true", "secrettokens=true", "x=1&secrettoken_hint=true"]
)
def test_a_longer_name_that_holds_the_word_is_not_a_key(client, fetch, query):
    body = '{"active": true, "note": "true"}'
    response = client.post(f"/hooks/default?{query}", data=body, content_type="application/json")
    document = fetch(capture_id(response))
    assert base64.b64decode(document["body_base64"]).decode() == body
    assert "[secrettoken:" not in json.dumps(document)


def test_looking_for_names_takes_linear_time_on_hostile_brackets():
    # Nested brackets once let the name pattern try exponentially many readings.
    from receiver.verification import NameScan

    scan = NameScan()
    started = time.perf_counter()
    scan.text(b"secrettoken" + b"[%5d" * 40 + b"=x")
    scan.text(b"secrettoken" + b"[" * 5000 + b"%5d" * 5000)
    assert time.perf_counter() - started < 1.0  # it never ended before


def test_places_naming_secrettoken_are_counted_over_the_whole_request(client):
    # 6,000 in the query and 6,000 in the body: over the limit together.
    query = "&".join(["secrettoken"] * 6000)
    response = client.post(
        f"/hooks/default?{query}", data="secrettoken&" * 6000, content_type="text/plain"
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "too_many_secrettokens"


def test_a_request_naming_secrettoken_in_too_many_places_is_refused_whole(client, database_url):
    body = "secrettoken&" * 10_001
    response = client.post("/hooks/default", data=body, content_type="text/plain")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "too_many_secrettokens"
    assert "10,000 places" in response.get_json()["error"]["message"]


def test_each_field_named_secrettoken_in_a_form_counts_as_one_place(client):
    form = "application/x-www-form-urlencoded"
    same = "&".join(["secrettoken=k"] * 9_000)
    assert client.post("/hooks/default", data=same, content_type=form).status_code == 200
    over = "&".join(["secrettoken=k"] * 10_001)
    response = client.post("/hooks/default", data=over, content_type=form)
    assert "more than 10,000 places" in response.get_json()["error"]["message"]


# Some accounts' keys are all digits; a JSON sender may well send one as a number.
NUMERIC_KEY = 904817263550184


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_a_key_sent_as_a_json_number_is_stored_as_a_masked_string_and_the_body_stays_json(
    runner, client, fetch, database_url, caplog, encoding
):
    add_secret(runner, "prod", str(NUMERIC_KEY))
    caplog.set_level(logging.INFO, logger="receiver.hooks")
    fields = dict(delivery())
    fields.update(
        secrettoken=NUMERIC_KEY,
        echo=[NUMERIC_KEY, f"id:{NUMERIC_KEY}, ok", 'a \\" b'],
        longer=NUMERIC_KEY * 10 + 7,
        other=12345,
    )
    body = json.dumps(fields, indent=1).encode(encoding)
    response = client.post("/hooks/default", data=body, content_type="application/json")
    assert response.status_code == 200
    document = fetch(capture_id(response))
    assert document["secret"]["verdict"] == "verified"
    tag = next(p["value"] for p in document["params"] if p["name"] == "secrettoken")
    assert re.fullmatch(r"\[secrettoken:[0-9a-f]{8}\]", tag)
    stored = json.loads(base64.b64decode(document["body_base64"]).decode(encoding))
    assert stored["secrettoken"] == tag
    assert stored["echo"] == [tag, f"id:{tag}, ok", 'a \\" b']
    assert stored["longer"] == tag + "7"
    # Nothing else changed.
    assert {k: v for k, v in stored.items() if k not in ("secrettoken", "echo", "longer")} == {
        k: v for k, v in fields.items() if k not in ("secrettoken", "echo", "longer")
    }
    assert "outside a JSON string (as a number" in document["notes"]["json_key"]
    assert_secret_hidden(str(NUMERIC_KEY), document, database_url, caplog.text)


def test_a_key_inside_a_json_string_leaves_the_body_as_sent_but_for_the_mask(runner, client, fetch):
    add_secret(runner, "prod", KEY)
    sent = '{"secrettoken": "KEY", "note": "key: KEY, again"}'
    body = sent.replace("KEY", KEY)
    document = fetch(
        capture_id(client.post("/hooks/default", data=body, content_type="application/json"))
    )
    tag = next(p["value"] for p in document["params"] if p["name"] == "secrettoken")
    stored = base64.b64decode(document["body_base64"]).decode()
    assert stored == sent.replace("KEY", tag)
    assert "json_key" not in document["notes"]


@pytest.mark.parametrize("kind", list(SECRETS))
def test_gzip_body_is_stored_masked_and_still_parses(runner, client, fetch, kind):
    secret = SECRETS[kind]
    add_secret(runner, "prod", secret)
    params = delivery(secrettoken=secret)
    response = carrier_gzip_form(client, secret)
    document = fetch(capture_id(response))
    stored = gzip.decompress(base64.b64decode(document["body_base64"]))
    for form in secret_forms(secret):
        assert form.encode() not in stored
    pairs = parse_qsl(stored.decode(), keep_blank_values=True)
    assert [name for name, _value in pairs] == [name for name, _value in params]
    # Only the secret changed.
    assert [pair for pair in pairs if pair[0] != "secrettoken"] == [
        pair for pair in params if pair[0] != "secrettoken"
    ]
    assert document["secret"]["verdict"] == "verified"


def undo_content_codings(data: bytes, content_encoding: str) -> bytes:
    """Decode a body as HTTP says: codings were applied in the listed order."""
    for coding in reversed([c.strip() for c in content_encoding.split(",") if c.strip()]):
        data = UNDO[coding](data)
    return data


DO = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
    "zstd": zstandard.ZstdCompressor().compress,
}
UNDO = {
    "gzip": gzip.decompress,
    "deflate": zlib.decompress,
    "br": brotli.decompress,
    "zstd": zstandard.ZstdDecompressor().decompress,
}


def gzip_partly(data: bytes) -> bytes:
    """`gzip -d` of data cut short: everything that can be read."""
    return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data)


def test_a_truncated_gzip_body_is_read_as_far_as_it_goes_and_its_key_hidden(
    runner, client, fetch, database_url, caplog
):
    add_secret(runner, "prod", KEY)
    caplog.set_level(logging.INFO, logger="receiver.hooks")
    form = urlencode(delivery(secrettoken=KEY)).encode() + b"&note=" + b"x" * 2000
    cut = gzip.compress(form)[:-30]
    response = post_compressed(client, cut)
    document = fetch(capture_id(response))
    assert document["secret"]["verdict"] == "verified"  # the key was read from the part
    assert (
        "gzip body is truncated: shown decoded as far as it could be read"
        in (document["notes"]["encoding"])
    )
    assert "only what could be decoded is kept" in document["notes"]["redaction"]
    stored = gzip.decompress(base64.b64decode(document["body_base64"]))
    assert stored.startswith(b"event=QR_CODE_SCANNED&")
    assert document["content_length"] == len(cut)
    assert_secret_hidden(KEY, document, database_url, caplog.text)

    # Without a key in it, a truncated body is kept exactly as received.
    noise = base64.b64encode(bytes(range(256)) * 8)  # compresses little
    plain = gzip.compress(b"event=LEAD_CREATED&name=Ana&note=" + noise)[:-30]
    response = post_compressed(client, plain)
    document = fetch(capture_id(response))
    assert base64.b64decode(document["body_base64"]) == plain
    assert ("post", "name", "Ana") in [
        (p["source"], p["name"], p["value"]) for p in document["params"]
    ]


def readable_part(data: bytes, wbits: int = 16 + zlib.MAX_WBITS) -> bytes:
    """All a determined reader gets out of compressed data: every member, each
    byte by byte up to its first fault."""
    out = []
    while data:
        inflater = zlib.decompressobj(wbits)
        for at in range(len(data)):
            try:
                out.append(inflater.decompress(data[at : at + 1]))
            except zlib.error:
                return b"".join(out)
            if inflater.eof:
                break
        data = data[at + 1 :] if inflater.eof else b""
    return b"".join(out)


def broken_crc(member: bytes) -> bytes:
    damaged = bytearray(member)
    damaged[-8] ^= 0xFF
    return bytes(damaged)


@pytest.mark.parametrize(
    ("encoding", "make"),
    [
        ("gzip", lambda form: broken_crc(gzip.compress(form))),
        (
            "gzip",
            lambda form: gzip.compress(form) + broken_crc(gzip.compress(b"&note=" + KEY.encode())),
        ),
        ("gzip, gzip", lambda form: gzip.compress(gzip.compress(form)[:-12])),
        ("deflate, gzip", lambda form: gzip.compress(zlib.compress(form)[:-6])),
        # The key only in a member after a broken one, or after bytes between members.
        ("gzip", lambda form: broken_crc(gzip.compress(b"a=1&b=2&")) + gzip.compress(form)),
        ("gzip", lambda form: gzip.compress(b"a=1&") + b"\0\0" + gzip.compress(form)),
    ],
    ids=[
        "bad crc",
        "broken second member",
        "gzip in gzip cut short",
        "deflate in gzip cut short",
        "member after a broken one",
        "member after bytes between",
    ],
)
def test_a_key_in_compressed_data_that_is_broken_somewhere_is_never_stored_readable(
    runner, client, fetch, encoding, make
):
    add_secret(runner, "prod", KEY)
    form = urlencode(delivery(secrettoken=KEY)).encode()
    response = post_compressed(client, make(form), encoding)
    assert response.status_code == 200
    document = fetch(capture_id(response))
    assert document["secret"]["verdict"] == "verified"
    stored = base64.b64decode(document["body_base64"])
    readable = readable_part(stored)
    if encoding != "gzip":  # a second layer inside
        wbits = 16 + zlib.MAX_WBITS if encoding.startswith("gzip") else zlib.MAX_WBITS
        readable = readable_part(readable, wbits)
    assert b"secrettoken=[secrettoken:" in readable
    assert KEY.encode() not in readable
    assert KEY.encode() not in stored
    for at in range(len(stored)):  # decoding from any offset finds no key either
        if stored[at : at + 2] == b"\x1f\x8b":
            assert KEY.encode() not in readable_part(stored[at:])


def test_bytes_after_gzip_data_are_kept_when_a_key_is_masked(runner, client, fetch):
    add_secret(runner, "prod", KEY)
    sent = gzip.compress(urlencode(delivery(secrettoken=KEY)).encode()) + b"TRAILING-BYTES-XYZ"
    response = post_compressed(client, sent)
    document = fetch(capture_id(response))
    assert document["secret"]["verdict"] == "verified"
    stored = base64.b64decode(document["body_base64"])
    assert stored.endswith(b"TRAILING-BYTES-XYZ")
    assert KEY.encode() not in gzip_partly(stored)
    assert "followed by the bytes that came after" in document["notes"]["redaction"]


def test_a_key_in_brotli_data_cut_short_is_read_and_never_stored_readable(
    runner, client, fetch, database_url, caplog
):
    add_secret(runner, "prod", KEY)
    caplog.set_level(logging.INFO, logger="receiver.hooks")
    noise = base64.b64encode(bytes(range(256)) * 64)  # compresses little
    form = urlencode(delivery(secrettoken=KEY)).encode() + b"&note=" + noise
    cut = brotli.compress(form)[:-200]
    document = fetch(capture_id(post_compressed(client, cut, "br")))
    assert document["secret"]["verdict"] == "verified"  # the key was read from the part
    notes = document["notes"]
    assert "br body is truncated: shown decoded as far as it could be read" in notes["encoding"]
    assert "only what could be decoded is kept" in notes["redaction"]
    stored = brotli.decompress(base64.b64decode(document["body_base64"]))
    assert stored.startswith(b"event=QR_CODE_SCANNED&")
    assert KEY.encode() not in stored
    assert_secret_hidden(KEY, document, database_url, caplog.text)


def large_form_with_key_at_the_end(key: str) -> bytes:
    """Over 500 KB that compress little, then the key (and a little more):
    brotli holds decoded output back until asked for it, which a reader must
    drain."""
    noise = "&".join(f"f{i}={i * 7919 % 104729:x}{i:x}" for i in range(40_000))
    tail = "&tail=" + "".join(f"{i * 7919 % 104729:x}" for i in range(400))  # what a cut takes
    return (
        urlencode(delivery()) + "&" + noise + "&" + urlencode({"secrettoken": key}) + tail
    ).encode()


@pytest.mark.parametrize(
    "damage", ["cut short", "one byte broken", "a byte after it", "zstd, bytes after it"]
)
def test_a_key_at_the_end_of_a_large_damaged_brotli_body_is_read_and_masked(
    runner, client, fetch, database_url, caplog, damage
):
    add_secret(runner, "prod", KEY)
    caplog.set_level(logging.INFO, logger="receiver.hooks")
    form = large_form_with_key_at_the_end(KEY)
    packed = brotli.compress(form, quality=5)
    half = len(packed) // 2
    sent = {
        "cut short": packed[:-20],
        # Halfway, so the key (near the end) lies after the fault.
        "one byte broken": packed[:half] + bytes([packed[half] ^ 0x5A]) + packed[half + 1 :],
        "a byte after it": packed + b"\n",
        "zstd, bytes after it": zstandard.ZstdCompressor().compress(form) + b"\n",
    }[damage]
    coding = "zstd" if damage.startswith("zstd") else "br"
    document = fetch(capture_id(post_compressed(client, sent, coding)))
    if damage == "one byte broken" and document["secret"]["verdict"] == "missing":
        # The fault was found before the key: what could be read was kept, no more.
        assert "br body is broken" in document["notes"]["encoding"]
    else:
        assert document["secret"]["verdict"] == "verified"
    if damage.endswith("after it"):
        stored = base64.b64decode(document["body_base64"])
        decoded = (zstd_readable if coding == "zstd" else brotli_readable)(stored)
        assert len(decoded) == len(form) - len(KEY) + len("[secrettoken:xxxxxxxx]")
    assert_secret_hidden(KEY, document, database_url, caplog.text)


def test_bytes_after_brotli_data_are_set_apart_and_kept_when_a_key_is_masked(runner, client, fetch):
    add_secret(runner, "prod", KEY)
    packed = brotli.compress(urlencode(delivery(secrettoken=KEY)).encode())
    document = fetch(capture_id(post_compressed(client, packed + b"TRAILING-BYTES-XYZ", "br")))
    assert document["secret"]["verdict"] == "verified"
    assert "18 byte(s) after the end of the br data" in document["notes"]["encoding"]
    stored = base64.b64decode(document["body_base64"])
    assert stored.endswith(b"TRAILING-BYTES-XYZ")
    decoded = brotli.Decompressor().process(stored[: -len(b"TRAILING-BYTES-XYZ")])
    assert decoded.startswith(b"event=QR_CODE_SCANNED&")
    assert KEY.encode() not in decoded
    assert "followed by the bytes that came after" in document["notes"]["redaction"]


def test_multipart_part_sizes_are_those_stored_not_the_key_length(client, fetch):
    response = client.post(
        "/hooks/default",
        data={"event": "LEAD_CREATED", "secrettoken": KEY, "note": f"key {KEY} again {KEY}"},
        content_type="multipart/form-data",
    )
    document = fetch(capture_id(response))
    for part in document["parts"]:
        stored = client.get(f"/api/captures/{document['id']}/parts/{part['index']}").get_data()
        assert part["size"] == len(stored)
    assert document["parts"][1]["size"] != len(KEY)


def test_gzip_data_that_cannot_be_read_at_all_is_not_parsed_as_a_form(client, fetch):
    header_only = gzip.compress(b"event=LEAD_CREATED")[:8]
    response = post_compressed(client, header_only)
    document = fetch(capture_id(response))
    assert document["params"] == []
    assert base64.b64decode(document["body_base64"]) == header_only


@pytest.mark.parametrize(
    "encoding",
    ["gzip", "deflate", "deflate, gzip", "gzip, deflate", "br", "br, gzip", "zstd", "gzip, zstd"],
)
def test_compressed_body_stored_masked_still_decodes_per_its_header(
    runner, client, fetch, encoding
):
    add_secret(runner, "prod", KEY)
    params = delivery(secrettoken=KEY)
    body = urlencode(params).encode()
    for coding in [c.strip() for c in encoding.split(",")]:
        body = DO[coding](body)
    response = post_compressed(client, body, encoding)
    document = fetch(capture_id(response))
    assert document["secret"]["verdict"] == "verified"
    assert ["Content-Encoding", encoding] in document["headers"]
    try:
        stored = undo_content_codings(base64.b64decode(document["body_base64"]), encoding)
    except (OSError, zlib.error, brotli.error, zstandard.ZstdError) as exc:
        pytest.fail(f"stored body does not decode as Content-Encoding {encoding!r}: {exc}")
    assert KEY.encode() not in stored
    pairs = parse_qsl(stored.decode(), keep_blank_values=True)
    assert [name for name, _value in pairs] == [name for name, _value in params]


NAMED_IN_TEXT = {
    "quoted cookie": ({"Cookie": 'sid=1; secrettoken="{k}"'}, "text/plain", "event=LEAD_CREATED"),
    "quoted in a header": ({"User-Agent": "bot secrettoken='{k}'"}, "text/plain", "hello"),
    "XML element": ({}, "application/xml", "<hook><secrettoken>{k}</secrettoken></hook>"),
    "XML attribute": ({}, "application/xml", '<hook secrettoken="{k}" event="LEAD_CREATED"/>'),
    "a log line": ({}, "text/plain", "Fired WebHook\nsecrettoken: {k}\nevent: LEAD_CREATED"),
    "YAML": ({}, "application/yaml", "event: LEAD_CREATED\nsecrettoken: {k}\n"),
    "Python repr": ({}, "text/plain", "{{'event': 'LEAD_CREATED', 'secrettoken': '{k}'}}"),
}


@pytest.mark.parametrize("where", list(NAMED_IN_TEXT))
def test_a_key_named_in_other_kinds_of_text_is_hidden(client, fetch, database_url, caplog, where):
    """Senders that are not the platform name a key in their own ways."""
    key = "sk_live_Q7wErTy9UiOp2AsD"
    headers, content_type, body = NAMED_IN_TEXT[where]
    headers = {name: value.format(k=key) for name, value in headers.items()}
    caplog.set_level(logging.INFO)
    response = client.post(
        "/hooks/default", data=body.format(k=key), content_type=content_type, headers=headers
    )
    document = fetch(capture_id(response))
    assert key not in json.dumps(document)
    assert_secret_hidden(key, document, database_url, caplog.text)


@pytest.mark.parametrize("kind", list(SECRETS))
def test_a_secret_never_verified_is_hidden_too(client, fetch, database_url, caplog, kind):
    """No secret configured, or the wrong one: the received key is still a live key."""
    secret = SECRETS[kind]
    caplog.set_level(logging.INFO, logger="receiver.hooks")
    response = carrier_form_urlencode(client, secret)
    document = fetch(capture_id(response))
    assert document["secret"]["verdict"] == "not_configured"
    assert_secret_hidden(secret, document, database_url, caplog.text)


@pytest.mark.parametrize(
    "shape",
    [
        '{{"event": "QR_CODE_SCANNED", "secrettoken": ["{a}", "{b}"]}}',
        '{{"event": "QR_CODE_SCANNED", "secrettoken": ["{a}"]}}',
        '{{"event": "QR_CODE_SCANNED", "secrettoken": {{"live": "{a}", "old": "{b}"}}}}',
        '{{"event": "LEAD_CREATED", "data": {{"secrettoken": "{a}"}}, '
        '"x": [{{"secrettoken": "{b}"}}]}}',
    ],
)
def test_a_key_in_an_array_an_object_or_nested_json_is_hidden_and_the_body_stays_json(
    client, fetch, database_url, caplog, shape
):
    caplog.set_level(logging.INFO, logger="receiver.hooks")
    body = shape.format(a=KEY, b=OTHER_KEY)
    response = client.post("/hooks/default", data=body, content_type="application/json")
    assert response.status_code == 200
    document = fetch(capture_id(response))
    for secret in (KEY, OTHER_KEY):
        assert_secret_hidden(secret, document, database_url, caplog.text)
    stored = json.loads(base64.b64decode(document["body_base64"]))
    assert json.dumps(stored).count("[secrettoken:") == body.count("qrp_live_")


def php_urlencode(value: str, lower: bool = False) -> str:
    """PHP's urlencode: like quote_plus, but `~` is escaped too."""
    encoded = quote_plus(value).replace("~", "%7E")
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), encoded) if lower else encoded


@pytest.mark.parametrize("lower", [False, True])
def test_a_long_expected_key_is_hidden_in_every_spelling(
    runner, client, fetch, database_url, caplog, lower
):
    # Expected keys may be up to 1000 characters; past 256 a value that is not
    # expected is masked in its usual spellings only.
    long_key = "PHPk~/" * 50
    add_secret(runner, "long", long_key)
    caplog.set_level(logging.INFO, logger="receiver.hooks")
    body = "event=QR_CODE_SCANNED&user=u&secrettoken=" + php_urlencode(long_key, lower)
    document = fetch(capture_id(client.post("/hooks/default", data=body, content_type=FORM_TYPE)))
    assert document["secret"]["verdict"] == "verified"
    assert php_urlencode(long_key, lower) not in document["body_text"]
    assert_secret_hidden(long_key, document, database_url, caplog.text)


def test_a_long_unexpected_value_is_hidden_in_lower_case_escapes_too(client, fetch):
    value = "x~/" * 100
    body = "event=QR_CODE_SCANNED&secrettoken=" + php_urlencode(value, lower=True)
    document = fetch(capture_id(client.post("/hooks/default", data=body, content_type=FORM_TYPE)))
    assert document["body_text"].startswith("event=QR_CODE_SCANNED&secrettoken=[secrettoken:")
    assert document["body_text"].endswith("]")


@pytest.mark.parametrize("placeholder", ["e", "test", "changeme"])
def test_a_wrong_placeholder_key_is_hidden_where_it_is_the_secrettoken_only(
    client, fetch, caplog, placeholder
):
    """A placeholder sent as the key (`test`, `changeme`) is masked as the
    secrettoken's value, and nowhere else: the same word elsewhere in the
    delivery (its path, a header, a title) is the sender's data."""
    caplog.set_level(logging.INFO, logger="receiver.hooks")
    body = f"event=VOUCHER_UPDATED&title=Contest+winner+{placeholder}&secrettoken={placeholder}"
    response = client.post(
        f"/hooks/default/{placeholder}?secrettoken={placeholder}",
        data=body + "&code=7W",
        content_type=FORM_TYPE,
        headers={"User-Agent": "Tester", "X-Note": f"key {placeholder}"},
    )
    document = fetch(capture_id(response))
    assert document["event_type"] == "VOUCHER_UPDATED"
    params = [(p["name"], p["value"]) for p in document["params"]]
    assert ("title", f"Contest winner {placeholder}") in params
    hidden = mask(SECRET_KEY, placeholder)
    assert [v for n, v in params if n == "secrettoken"] == [hidden] * 2
    assert ["X-Note", f"key {placeholder}"] in document["headers"]
    assert document["path"] == f"/hooks/default/{placeholder}"
    assert document["query_string"] == "secrettoken=" + hidden
    assert document["body_text"] == (
        f"event=VOUCHER_UPDATED&title=Contest+winner+{placeholder}&secrettoken={hidden}&code=7W"
    )
    assert f"secrettoken: {placeholder}\n" not in caplog.text


def test_a_wrong_placeholder_key_does_not_rewrite_the_rest_of_a_json_body(client, fetch):
    sent = {"secrettoken": "42", "order": {"id": 42, "qty": 42}, "note": "answer 42", "ok": True}
    document = fetch(capture_id(client.post("/hooks/default", json=sent)))
    hidden = mask(SECRET_KEY, "42")
    assert json.loads(document["body_text"]) == {**sent, "secrettoken": hidden}
    params = {p["name"]: p["value"] for p in document["params"]}
    assert params["secrettoken"] == hidden
    assert params["order"] == '{"id": 42, "qty": 42}'


@pytest.mark.parametrize(
    ("body", "content_type", "masked"),
    [
        # As a number (masked as a string, so the JSON stays valid), and in an array.
        ('{"secrettoken": 1, "n": 1}', "application/json", '{"secrettoken": "{mask}", "n": 1}'),
        (
            '{"secrettoken": ["1", "2"], "n": [1, 2]}',
            "application/json",
            '{"secrettoken": ["{mask1}", "{mask2}"], "n": [1, 2]}',
        ),
        # JSON text in a form field, form-encoded; an XML element; a multipart part.
        (
            "data=%7B%22secrettoken%22%3A%221%22%2C%22n%22%3A%221%22%7D",
            FORM_TYPE,
            "data=%7B%22secrettoken%22%3A%22{mask}%22%2C%22n%22%3A%221%22%7D",
        ),
        (
            "<a><secrettoken>1</secrettoken><n>1</n></a>",
            "text/xml",
            "<a><secrettoken>{mask}</secrettoken><n>1</n></a>",
        ),
        (
            '--b\r\nContent-Disposition: form-data; name="secrettoken"\r\n\r\n1\r\n'
            '--b\r\nContent-Disposition: form-data; name="n"\r\n\r\n1\r\n--b--\r\n',
            "multipart/form-data; boundary=b",
            '--b\r\nContent-Disposition: form-data; name="secrettoken"\r\n\r\n{mask}\r\n'
            '--b\r\nContent-Disposition: form-data; name="n"\r\n\r\n1\r\n--b--\r\n',
        ),
    ],
)
def test_a_wrong_placeholder_key_is_masked_after_its_name_in_any_form(
    client, fetch, database_url, body, content_type, masked
):
    response = client.post(
        "/hooks/default/in/1?n=1",
        data=body,
        content_type=content_type,
        headers={"X-Secrettoken": "1", "X-Session": "secrettoken=1; n=1", "X-N": "1"},
    )
    document = fetch(capture_id(response))
    mask1, mask2 = (mask(SECRET_KEY, key) for key in ("1", "2"))
    expected = masked.replace("{mask}", mask1).replace("{mask1}", mask1)
    assert document["body_text"] == expected.replace("{mask2}", mask2)
    headers = dict(document["headers"])
    assert headers["X-Secrettoken"] == mask1
    assert headers["X-Session"] == f"secrettoken={mask1}; n=1"
    assert headers["X-N"] == "1"
    assert document["path"] == "/hooks/default/in/1"
    assert document["query_string"] == "n=1"
    assert headers["Host"] == "localhost"


def test_a_wrong_placeholder_key_cannot_swell_a_body(client, fetch):
    body = "secrettoken=1&data=" + "1+" * 100_000
    document = fetch(capture_id(client.post("/hooks/default", data=body, content_type=FORM_TYPE)))
    stored = base64.b64decode(document["body_base64"])
    assert stored == body.replace("secrettoken=1", "secrettoken=" + mask(SECRET_KEY, "1")).encode()


def test_a_short_key_after_an_escape_is_hidden_too(client, fetch, database_url, caplog):
    key = "Qx9vK"
    caplog.set_level(logging.INFO, logger="receiver.hooks")
    form = client.post(
        "/hooks/default?q=%20" + key,
        data=f"secrettoken={key}&note=key%20{key}&c2a=https%3A%2F%2Fx.io%2F%3Fkey%3D{key}",
        content_type=FORM_TYPE,
        headers={"X-Tok": f"tok%3D{key}"},
    )
    as_json = client.post(
        "/hooks/default",
        data=json.dumps({"secrettoken": key, "a": f"line\n{key}", "b": f"a\u0020{key}"}),
        content_type="application/json",
    )
    for response in (form, as_json):
        document = fetch(capture_id(response))
        assert key not in json.dumps(document)
        assert key not in base64.b64decode(document["body_base64"]).decode()
    assert key not in caplog.text


def test_a_key_encoded_twice_in_a_url_inside_a_parameter_is_hidden(
    runner, client, fetch, database_url, caplog
):
    key = "pa$$/w0rd+Long=01&x"
    add_secret(runner, "prod", key)
    caplog.set_level(logging.INFO, logger="receiver.hooks")
    inner = "https://app.example/cb?k=" + quote(key, safe="")
    params = urlencode({"secrettoken": key, "return_to": inner})
    response = client.post(f"/hooks/default?{params}", data=params, content_type=FORM_TYPE)
    document = fetch(capture_id(response))
    assert document["secret"]["verdict"] == "verified"
    twice = quote(quote(key, safe=""), safe="")
    assert twice not in document["body_text"] and twice not in document["query_string"]
    assert_secret_hidden(key, document, database_url, caplog.text)


def test_a_header_named_secrettoken_is_hidden_though_not_verified(
    client, fetch, database_url, caplog
):
    caplog.set_level(logging.INFO, logger="receiver.hooks")
    response = client.post("/hooks/default", data=b"x", headers={"SecretToken": KEY})
    document = fetch(capture_id(response))
    assert document["secret"]["verdict"] == "not_configured"
    value = next(v for name, v in document["headers"] if name.lower() == "secrettoken")
    assert value.startswith("[secrettoken:")
    assert_secret_hidden(KEY, document, database_url, caplog.text)


def test_many_keys_in_a_json_body_are_refused_at_once(client):
    body = json.dumps({"secrettoken": [f"k{n}" for n in range(200_000)]})
    started = time.monotonic()
    response = client.post("/hooks/default", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "too_many_secrettokens"
    assert time.monotonic() - started < 5


def test_a_rejected_delivery_is_hidden_too(runner, client, fetch, database_url, caplog):
    add_secret(runner, "prod", KEY)
    enforce(runner, "on")
    caplog.set_level(logging.INFO, logger="receiver.hooks")
    response = client.post(
        "/hooks/default?secrettoken=" + quote_plus(WRONG_KEY),
        data=urlencode(delivery(secrettoken=WRONG_KEY)),
        content_type=FORM_TYPE,
        headers={"X-Echo": WRONG_KEY},
    )
    assert response.status_code == 401
    assert WRONG_KEY not in response.get_data(as_text=True)
    document = fetch(capture_id(response))
    assert document["rejected"] is True
    assert_secret_hidden(WRONG_KEY, document, database_url, caplog.text)


# --- fingerprints ---


@pytest.mark.parametrize("kind", list(SECRETS))
def test_same_key_same_fingerprint_whatever_the_carrier(runner, client, fetch, kind):
    secret = SECRETS[kind]
    add_secret(runner, "prod", secret)
    fingerprints = {
        fetch(capture_id(CARRIERS[carrier](client, secret)))["secret"]["fingerprint"]
        for carrier in ("form, urlencode", "json, UTF-8", "query, urlencode", "multipart field")
    }
    assert fingerprints == {listed_secrets(runner)["prod"][0]}


def test_different_keys_different_fingerprints(client, fetch):
    keys = [KEY, OTHER_KEY, WRONG_KEY, KEY[:-1] + "S", *list(SECRETS.values())[1:]]
    fingerprints = [
        fetch(capture_id(carrier_form_urlencode(client, key)))["secret"]["fingerprint"]
        for key in keys
    ]
    assert len(set(fingerprints)) == len(keys)
    again = fetch(capture_id(carrier_form_urlencode(client, KEY)))["secret"]["fingerprint"]
    assert again == fingerprints[0]


@pytest.mark.parametrize(
    "secret", ["x", "xy", "xyz", "wxyz", "vwxyz", "uvwxyzq", "k3y", *SECRETS.values()]
)
def test_fingerprint_shows_at_most_half_of_the_secret(runner, client, fetch, secret):
    add_secret(runner, "prod", secret)
    listed = listed_secrets(runner)["prod"][0]
    fingerprint = fetch(capture_id(carrier_form_urlencode(client, secret)))["secret"]["fingerprint"]
    assert fingerprint == listed
    shown, _, tag = fingerprint.partition("…")
    assert secret.startswith(shown)
    assert len(shown) <= len(secret) // 2
    assert len(tag) == 8 and int(tag, 16) >= 0
    # No run of more than half the secret's characters appears anywhere in it.
    run = len(secret) // 2 + 1
    for start in range(len(secret) - run + 1):
        assert secret[start : start + run] not in fingerprint


# --- the CLI ---


@pytest.mark.parametrize(
    "args",
    [
        ["inbox", "add-secret", "nope", "--label", "prod", "--secret", KEY],
        ["inbox", "secrets", "nope"],
        ["inbox", "remove-secret", "nope", "prod"],
        ["inbox", "enforce", "nope", "on"],
    ],
)
def test_unknown_inbox_is_a_clear_cli_error(runner, args):
    result = runner.invoke(args=args)
    assert result.exit_code != 0
    assert "No inbox named 'nope'." in result.output
    assert KEY not in result.output


def test_add_secret_refuses_an_empty_secret(runner):
    result = runner.invoke(args=["inbox", "add-secret", "default", "--label", "x", "--secret", ""])
    assert result.exit_code != 0
    assert "empty" in result.output
    assert listed_secrets(runner) == {}


def test_add_secret_reads_the_key_from_stdin(runner, client, fetch):
    result = runner.invoke(
        args=["inbox", "add-secret", "default", "--label", "prod", "--secret", "-"],
        input=KEY + "\n",
    )
    assert result.exit_code == 0, result.output
    assert KEY not in result.output
    document = fetch(capture_id(carrier_form_urlencode(client, KEY)))
    assert document["secret"]["verdict"] == "verified"


def test_remove_secret_unknown_label_is_an_error(runner):
    add_secret(runner, "prod", KEY)
    result = runner.invoke(args=["inbox", "remove-secret", "default", "staging"])
    assert result.exit_code != 0
    assert "no secret labelled 'staging'" in result.output
    assert list(listed_secrets(runner)) == ["prod"]


def test_remove_secret_removes_it(runner, client, fetch):
    add_secret(runner, "old", KEY)
    add_secret(runner, "new", OTHER_KEY)

    def verdict(secret):
        document = fetch(capture_id(carrier_form_urlencode(client, secret)))
        return document["secret"]["verdict"], document["secret"]["label"]

    assert verdict(KEY) == ("verified", "old")
    result = runner.invoke(args=["inbox", "remove-secret", "default", "old"])
    assert result.exit_code == 0, result.output
    assert list(listed_secrets(runner)) == ["new"]
    assert verdict(KEY) == ("mismatch", None)
    assert verdict(OTHER_KEY) == ("verified", "new")

    assert runner.invoke(args=["inbox", "remove-secret", "default", "new"]).exit_code == 0
    assert listed_secrets(runner) == {}
    assert verdict(OTHER_KEY) == ("not_configured", None)
    assert verdict(KEY) == ("not_configured", None)


def test_secrets_belong_to_their_inbox(runner, client, fetch):
    assert runner.invoke(args=["inbox", "create", "other"]).exit_code == 0
    add_secret(runner, "theirs", KEY, inbox="other")
    assert listed_secrets(runner) == {}
    assert list(listed_secrets(runner, "other")) == ["theirs"]
    here = fetch(capture_id(carrier_form_urlencode(client, KEY)))
    assert here["secret"]["verdict"] == "not_configured"
    response = client.post(
        "/hooks/other", data=urlencode(delivery(secrettoken=KEY)), content_type=FORM_TYPE
    )
    assert fetch(capture_id(response))["secret"] == {
        "verdict": "verified",
        "label": "theirs",
        "fingerprint": listed_secrets(runner, "other")["theirs"][0],
    }


def test_the_secret_is_masked_in_multipart_names_notes_and_the_event_type(client):
    import io as _io

    secret = "Sk3yValue9-part"
    response = client.post(
        "/hooks/default",
        data={
            "secrettoken": secret,
            "event": "Sk3yValue9\x00-part",  # cleaning the name must not rebuild the key
            "upload": (_io.BytesIO(b"x"), f"{secret}.txt", f"text/{secret}"),
        },
        content_type="multipart/form-data",
        headers={"Content-Encoding": secret},
    )
    document = client.get(f"/api/captures/{response.get_json()['id']}").get_json()
    assert secret not in json.dumps(document)
    assert secret not in document["event_type"]


@pytest.mark.parametrize(
    ("setting", "value"),
    [("response_headers", [["X-Note", "café ✓"]]), ("response_content_type", "text/✓")],
)
def test_response_settings_that_cannot_be_sent_as_headers_are_refused(client, setting, value):
    response = client.patch("/api/inboxes/default", json={setting: value})
    assert response.status_code == 422
    assert client.post("/hooks/default").status_code == 200


UNREADABLE_KEYS = {
    # A real key with something after it that is not text: the key must still be masked.
    "JSON, unpaired surrogate escape": (
        b'{"event": "LEAD_CREATED", "secrettoken": "sk_live_REALKEY42\\ud800"}',
        "application/json",
    ),
    "form, percent-escaped byte that is not UTF-8": (
        b"event=LEAD_CREATED&secrettoken=sk_live_REALKEY42%FF%FE",
        FORM_TYPE,
    ),
    "form, raw byte that is not UTF-8": (
        b"event=LEAD_CREATED&secrettoken=sk_live_REALKEY42\xff",
        FORM_TYPE,
    ),
}


@pytest.mark.parametrize("case", list(UNREADABLE_KEYS))
def test_a_key_followed_by_what_is_not_text_is_stored_masked_not_refused(
    client, fetch, database_url, caplog, case
):
    caplog.set_level(logging.INFO, logger="receiver.hooks")
    body, content_type = UNREADABLE_KEYS[case]
    response = client.post("/hooks/default", data=body, content_type=content_type)
    assert response.status_code == 200
    document = fetch(capture_id(response))
    assert document["event_type"] == "LEAD_CREATED"
    assert document["secret"]["verdict"] == "not_configured"
    stored_body = base64.b64decode(document["body_base64"])
    assert b"[secrettoken:" in stored_body
    for where in (json.dumps(document), stored_body.decode("latin-1"), caplog.text):
        assert "REALKEY42" not in where
    assert b"REALKEY42" not in database_bytes(database_url)


def test_json_with_unpaired_surrogate_escapes_is_captured_with_a_note(client, fetch):
    raw = b'{"event": "LEAD_CREATED", "note": "a\\ud800b", "\\udfffkey": ["\\ud83d\\ude00"]}'
    response = client.post("/hooks/default", data=raw, content_type="application/json")
    assert response.status_code == 200
    document = fetch(capture_id(response))
    assert base64.b64decode(document["body_base64"]) == raw
    values = {p["name"]: p["value"] for p in document["params"]}
    assert values["note"] == "a\ufffdb"
    assert values["\ufffdkey"] == '["\U0001f600"]'  # a proper pair stays one character
    assert "surrogate" in document["notes"]["json"]


def test_an_enforcing_inbox_with_no_key_yet_refuses_every_delivery(runner, client, fetch):
    """Not open to all while it says it enforces: nothing can verify yet."""
    enforce(runner, "on")
    for sent in (delivery(secrettoken=KEY), delivery(secrettoken=None)):
        response = post_form(client, sent)
        assert response.status_code == 401
        document = fetch(capture_id(response))
        assert document["secret"]["verdict"] == "not_configured" and document["rejected"]
    page = client.get("/inboxes/default/settings").get_data(as_text=True)
    assert "No key is expected yet, so every delivery is answered 401" in page
    add_secret(runner, "prod", KEY)
    assert post_form(client, delivery(secrettoken=KEY)).status_code == 200
    page = client.get("/inboxes/default/settings").get_data(as_text=True)
    assert "No key is expected yet" not in page


def test_adding_a_key_without_the_servers_secret_key_warns_when_servers_share_a_database(
    database_url, tmp_path, monkeypatch
):
    """A key is kept as a hash keyed with SECRET_KEY. On SQLite the file and
    its instance/secret_key go together; on PostgreSQL, app servers elsewhere
    have their own SECRET_KEY, and a key hashed with another never verifies."""
    from conftest import close_app, make_app

    from receiver.extensions import db

    monkeypatch.setenv("RECEIVER_INSTANCE_PATH", str(tmp_path))
    app = make_app(str(database_url), SECRET_KEY=None)
    try:
        args = ["inbox", "add-secret", "default", "--label", "prod", "--secret", KEY]
        result = app.test_cli_runner().invoke(args=args)
        assert result.exit_code == 0, result.output
        warned = "Warning: SECRET_KEY is not set here" in result.output
        with app.app_context():
            assert warned is (db.engine.dialect.name != "sqlite")
    finally:
        close_app(app)


def test_a_plain_short_key_the_inbox_expects_is_masked_everywhere_though_not_verified(
    runner, client, fetch
):
    """Kept for another user, `changeme` does not verify a delivery from this
    one; it is still a key the inbox expects, and masked wherever it stands."""
    add_secret(runner, "alice", "changeme", user="alice")
    body = {"user": "bob", "secrettoken": "changeme", "note": "pw changeme"}
    document = fetch(capture_id(post_form(client, body)))
    assert document["secret"]["verdict"] == "mismatch"
    assert "changeme" not in json.dumps(document)
    # A placeholder the inbox does not expect is left where it is not the key.
    body = {"user": "bob", "secrettoken": "letmein", "note": "pw letmein"}
    document = fetch(capture_id(post_form(client, body)))
    assert {p["name"]: p["value"] for p in document["params"]}["note"] == "pw letmein"
