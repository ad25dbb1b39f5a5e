"""Capture: every request is stored exactly and read back through the API."""

from __future__ import annotations

import base64
import gzip
import io
import json
import logging
import sqlite3
import threading
import time
import zlib
from datetime import UTC, datetime, timedelta

import brotli
import pytest
import zstandard
from conftest import capture_row
from sqlalchemy import text

from receiver.extensions import db

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
BODIES = [
    ("application/x-www-form-urlencoded", b"event=QR_CODE_SCANNED&redirects=3"),
    ("application/json", b'{"event": "LEAD_CREATED", "email": "a@example.com"}'),
    ("text/plain; charset=utf-8", "héllo wörld".encode()),
    ("application/octet-stream", bytes(range(256))),
    ("application/xml", b"<?xml version='1.0'?><a>1</a>"),
    ("", b"no content type at all"),
]
ALL_BYTES = bytes(range(256)) * 4


def raw_body(document) -> bytes:
    return base64.b64decode(document["body_base64"])


def params_of(document) -> list[tuple[str, str, str]]:
    return [(p["source"], p["name"], p["value"]) for p in document["params"]]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("content_type", "body"), BODIES)
def test_any_method_and_content_type_is_stored_byte_for_byte(
    client, fetch, method, content_type, body
):
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.open(
        "/hooks/default/some/sub/path?a=1", method=method, data=body, headers=headers
    )
    assert response.status_code == 200
    answer = response.get_json()
    assert answer["ok"] is True
    assert response.headers["X-Capture-Id"] == str(answer["id"])

    stored = fetch(answer["id"])
    assert stored["method"] == method
    assert stored["path"] == "/hooks/default/some/sub/path"
    assert stored["subpath"] == "some/sub/path"
    assert stored["query_string"] == "a=1"
    assert raw_body(stored) == body
    assert stored["content_length"] == len(body)
    assert stored["content_type"] == content_type


def test_head_gets_the_status_without_a_body(client, fetch):
    response = client.head("/hooks/default")
    assert response.status_code == 200
    assert response.get_data() == b""
    stored = fetch(int(response.headers["X-Capture-Id"]))
    assert stored["method"] == "HEAD"


def test_unusual_methods_are_captured_too(client, fetch):
    response = client.open("/hooks/default/dav", method="PROPFIND", data=b"<propfind/>")
    assert response.status_code == 200
    stored = fetch(response.get_json()["id"])
    assert stored["method"] == "PROPFIND"
    assert raw_body(stored) == b"<propfind/>"


@pytest.mark.parametrize(
    ("path", "subpath"),
    [
        ("/hooks/default/", ""),
        ("/hooks/default///", "//"),
        ("/hooks/default//x", "/x"),
        ("/hooks/default/a//b/", "a//b/"),
        ("/hooks/default/x//", "x//"),
    ],
)
@pytest.mark.parametrize("method", ["POST", "GET", "PROPFIND"])
def test_slashes_in_a_capture_url_are_captured_as_sent_never_redirected(
    client, fetch, path, subpath, method
):
    response = client.open(path + "?x=1", method=method, data=b"a=1")
    assert response.status_code == 200, response.get_data(as_text=True)
    stored = fetch(int(response.headers["X-Capture-Id"]))
    assert (stored["method"], stored["path"], stored["subpath"]) == (method, path, subpath)
    assert stored["query_string"] == "x=1"


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/hooks/default/"), ("POST", "/hooks/default//x"), ("PROPFIND", "/hooks/default/")],
)
def test_a_body_over_the_limit_on_any_capture_url_is_a_413(app, client, method, path):
    app.config["MAX_CONTENT_LENGTH"] = 10
    response = client.open(path, method=method, data=b"x" * 100)
    assert response.status_code == 413
    assert response.get_json()["error"] == {
        "code": "request_entity_too_large",
        "message": "The body is larger than this server's limit of 10 bytes "
        "(RECEIVER_MAX_BODY_BYTES); nothing was stored.",
    }


def test_slashes_after_an_unknown_inbox_are_its_404(client):
    response = client.post("/hooks/nope//x", data=b"a=1")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "unknown_inbox"


def test_unusual_method_elsewhere_is_a_json_405(client):
    response = client.open("/api/captures/1", method="PROPFIND")
    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"


def test_binary_body_round_trips_and_has_no_text(client, fetch):
    response = client.post("/hooks/default", data=ALL_BYTES, content_type="image/png")
    stored = fetch(response.get_json()["id"])
    assert raw_body(stored) == ALL_BYTES
    assert stored["body_text"] is None


def test_invalid_utf8_round_trips(client, fetch):
    body = b"event=QR_CODE_SCANNED&name=\xff\xfe\xc3(&x=1"
    response = client.post(
        "/hooks/default", data=body, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    stored = fetch(response.get_json()["id"])
    assert raw_body(stored) == body
    assert stored["body_text"] is None
    # The parameter view replaces undecodable bytes; the raw body keeps them.
    names = [name for _source, name, _value in params_of(stored)]
    assert names == ["event", "name", "x"]


def test_gzip_body_is_decoded_for_parsing_and_kept_raw(client, fetch):
    plain = b"event=QR_CODE_CREATED&code=7W&user=alice"
    packed = gzip.compress(plain)
    response = client.post(
        "/hooks/default",
        data=packed,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Content-Encoding": "gzip",
        },
    )
    stored = fetch(response.get_json()["id"])
    assert raw_body(stored) == packed
    assert ("post", "code", "7W") in params_of(stored)
    assert stored["event_type"] == "QR_CODE_CREATED"
    assert stored["notes"] == {}


@pytest.mark.parametrize("wrap", [zlib.compress, lambda data: zlib.compress(data)[2:-4]])
def test_deflate_zlib_and_raw_are_both_decoded(client, fetch, wrap):
    packed = wrap(b'{"event": "JOB_FINISHED"}')
    response = client.post(
        "/hooks/default",
        data=packed,
        headers={"Content-Type": "application/json", "Content-Encoding": "deflate"},
    )
    stored = fetch(response.get_json()["id"])
    assert raw_body(stored) == packed
    assert stored["event_type"] == "JOB_FINISHED"


@pytest.mark.parametrize(
    ("encoding", "body"),
    [("gzip", b"not gzip at all"), ("gzip", gzip.compress(b"a=1")[:-6]), ("br", b"\x0b\x02")],
)
def test_undecodable_body_is_kept_raw_with_the_reason(client, fetch, encoding, body):
    response = client.post(
        "/hooks/default",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Content-Encoding": encoding},
    )
    assert response.status_code == 200
    stored = fetch(response.get_json()["id"])
    assert raw_body(stored) == body
    assert "encoding" in stored["notes"]


def test_brotli_body_is_decoded_for_parsing_and_kept_raw(client, fetch):
    plain = b'{"event": "QR_CODE_CREATED", "code": "7W", "user": "alice"}'
    packed = brotli.compress(plain)
    headers = {"Content-Type": "application/json", "Content-Encoding": "br"}
    stored = fetch(client.post("/hooks/default", data=packed, headers=headers).get_json()["id"])
    assert raw_body(stored) == packed
    assert ("json", "code", "7W") in params_of(stored)
    assert stored["event_type"] == "QR_CODE_CREATED"
    assert stored["notes"] == {}
    # Cut short, it is read as far as it goes; with bytes after it, they are said.
    noise = base64.b64encode(bytes(range(256)) * 64).decode()  # compresses little
    long = f"event=LEAD_CREATED&name=Ana&note={noise}".encode()
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    cut = brotli.compress(long)[:-100]
    stored = fetch(client.post("/hooks/default", data=cut, headers=headers).get_json()["id"])
    assert params_of(stored)[:2] == [("post", "event", "LEAD_CREATED"), ("post", "name", "Ana")]
    assert "br body is truncated: shown decoded" in stored["notes"]["encoding"]
    assert raw_body(stored) == cut
    trailing = brotli.compress(b"event=LEAD_CREATED") + b"&junk=1"
    stored = fetch(client.post("/hooks/default", data=trailing, headers=headers).get_json()["id"])
    assert params_of(stored) == [("post", "event", "LEAD_CREATED")]
    assert "7 byte(s) after the end of the br data" in stored["notes"]["encoding"]
    assert raw_body(stored) == trailing


def test_zstd_frames_are_all_decoded_and_damage_noted(client, fetch):
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Content-Encoding": "zstd"}
    zstd = zstandard.ZstdCompressor().compress
    packed = zstd(b"event=LEAD_CREATED&a=1") + zstd(b"&b=2")  # two frames, as `cat` makes
    stored = fetch(client.post("/hooks/default", data=packed, headers=headers).get_json()["id"])
    assert params_of(stored) == [
        ("post", "event", "LEAD_CREATED"),
        ("post", "a", "1"),
        ("post", "b", "2"),
    ]
    assert stored["notes"] == {}
    assert raw_body(stored) == packed
    trailing = zstd(b"event=LEAD_CREATED") + b"&junk=1"
    stored = fetch(client.post("/hooks/default", data=trailing, headers=headers).get_json()["id"])
    assert params_of(stored) == [("post", "event", "LEAD_CREATED")]
    assert "7 byte(s) after the end of the zstd data" in stored["notes"]["encoding"]
    assert raw_body(stored) == trailing
    unreadable = b"\x28\xb5\x2f\xfd" + b"\xff" * 20
    stored = fetch(client.post("/hooks/default", data=unreadable, headers=headers).get_json()["id"])
    assert "zstd body could not be decoded" in stored["notes"]["encoding"]
    assert raw_body(stored) == unreadable


def test_gzip_members_are_all_decoded_and_trailing_bytes_noted(client, fetch):
    # `cat a.gz b.gz` is a valid gzip file: gzip -d reads every member.
    packed = gzip.compress(b"event=LEAD_CREATED&a=1") + gzip.compress(b"&b=2")
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Content-Encoding": "gzip"}
    stored = fetch(client.post("/hooks/default", data=packed, headers=headers).get_json()["id"])
    assert params_of(stored) == [
        ("post", "event", "LEAD_CREATED"),
        ("post", "a", "1"),
        ("post", "b", "2"),
    ]
    assert stored["notes"] == {}
    # Bytes after the gzip data that are not another member are said, not hidden.
    trailing = gzip.compress(b"event=LEAD_CREATED") + b"&junk=1"
    stored = fetch(client.post("/hooks/default", data=trailing, headers=headers).get_json()["id"])
    assert params_of(stored) == [("post", "event", "LEAD_CREATED")]
    assert "7 byte(s) after the end of the gzip data" in stored["notes"]["encoding"]
    assert raw_body(stored) == trailing


def test_a_gzip_body_of_many_members_is_read_in_bounded_time_with_a_note(client, fetch):
    # 20-byte empty members inflate to nothing, so no size limit stops them.
    packed = gzip.compress(b"event=LEAD_CREATED") + gzip.compress(b"") * 100_000
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Content-Encoding": "gzip"}
    started = time.monotonic()
    response = client.post("/hooks/default", data=packed, headers=headers)
    assert time.monotonic() - started < 5
    stored = fetch(response.get_json()["id"])
    assert params_of(stored) == [("post", "event", "LEAD_CREATED")]
    assert "first 1,000 gzip members only" in stored["notes"]["encoding"]
    # Bytes after a member that only look like another one are trailing bytes.
    looks = gzip.compress(b"event=LEAD_CREATED") + b"\x1f\x8bnot gzip"
    stored = fetch(client.post("/hooks/default", data=looks, headers=headers).get_json()["id"])
    assert params_of(stored) == [("post", "event", "LEAD_CREATED")]
    assert "10 byte(s) after the end of the gzip data" in stored["notes"]["encoding"]


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
def test_a_compression_bomb_is_not_inflated_past_the_limit(app, client, fetch, coding):
    compress = {
        "gzip": gzip.compress,
        "br": brotli.compress,
        "zstd": zstandard.ZstdCompressor(level=19).compress,
    }[coding]
    bomb = compress(b"a" * 1024 * 1024)  # 1 MiB of 'a', at most about 1 KiB packed
    assert len(bomb) <= 1024 * 2
    app.config["MAX_CONTENT_LENGTH"] = len(bomb) + 10
    response = client.post("/hooks/default", data=bomb, headers={"Content-Encoding": coding})
    assert response.status_code == 200
    stored = fetch(response.get_json()["id"])
    assert "exceeds" in stored["notes"]["encoding"]
    assert raw_body(stored) == bomb


def test_multipart_fields_and_files_are_listed_and_raw_kept(client, fetch):
    response = client.post(
        "/hooks/default",
        data={
            "event": "LEAD_CREATED",
            "note": "first",
            "upload": (io.BytesIO(ALL_BYTES), "bytes.bin", "application/octet-stream"),
            "photo": (io.BytesIO(b"\x89PNG\r\n"), "p.png", "image/png"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    stored = fetch(response.get_json()["id"])
    parts = {part["name"]: part for part in stored["parts"]}
    assert parts["upload"]["filename"] == "bytes.bin"
    assert parts["upload"]["size"] == len(ALL_BYTES)
    assert parts["upload"]["content_type"] == "application/octet-stream"
    assert parts["photo"]["filename"] == "p.png"
    assert parts["note"]["filename"] is None
    assert ("post", "event", "LEAD_CREATED") in params_of(stored)
    # The stored body is exactly what was sent, binary file included.
    assert ALL_BYTES in raw_body(stored)
    assert stored["event_type"] == "LEAD_CREATED"


def test_multipart_parts_without_a_name_are_captured_with_a_note(client, fetch):
    body = (
        b"--XyZ\r\nContent-Disposition: form-data\r\n\r\nhello\r\n"
        b'--XyZ\r\nContent-Disposition: form-data; filename="f.txt"\r\n\r\nfile\r\n'
        b'--XyZ\r\nContent-Disposition: form-data; name="event"\r\n\r\nLEAD_CREATED\r\n'
        b"--XyZ--\r\n"
    )
    response = client.post(
        "/hooks/default", data=body, content_type="multipart/form-data; boundary=XyZ"
    )
    assert response.status_code == 200
    stored = fetch(response.get_json()["id"])
    assert ("post", "", "hello") in params_of(stored)
    assert ("post", "event", "LEAD_CREATED") in params_of(stored)
    assert [(p["name"], p["filename"]) for p in stored["parts"]] == [
        ("", None),
        ("", "f.txt"),
        ("event", None),
    ]
    assert "2 part(s) without a name" in stored["notes"]["multipart"]
    assert raw_body(stored) == body


@pytest.mark.parametrize(
    "content_type",
    ["Application/X-WWW-Form-URLEncoded", "MULTIPART/FORM-DATA"],
)
def test_media_types_are_matched_whatever_their_case(client, content_type):
    fields = {"event": "LEAD_CREATED", "n": "1"}
    if content_type.startswith("MULTIPART"):
        data = b"".join(
            b'--b\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
            % (k.encode(), v.encode())
            for k, v in fields.items()
        )
        data += b"--b--\r\n"
        content_type += "; boundary=b"
    else:
        data = b"event=LEAD_CREATED&n=1"
    response = client.post("/hooks/default", data=data, content_type=content_type)
    document = client.get(f"/api/captures/{response.get_json()['id']}").get_json()
    assert [(p["name"], p["value"]) for p in document["params"]] == list(fields.items())
    assert document["event_type"] == "LEAD_CREATED"


def test_a_json_media_type_in_capitals_is_declared_json(client, fetch):
    # Any body starting with { is read as JSON; only declared JSON gets a note
    # when it does not parse.
    response = client.post("/hooks/default", data=b'{"event": ', content_type="Application/JSON")
    assert fetch(response.get_json()["id"])["notes"]["json"].startswith("Invalid JSON")


def test_a_json_object_with_repeated_keys_lists_every_value(client, fetch):
    response = client.post(
        "/hooks/default",
        data=b'{"event": "LEAD_CREATED", "a": 1, "a": 2, "nested": {"b": 1, "b": 2}}',
        content_type="application/json",
    )
    stored = fetch(response.get_json()["id"])
    assert params_of(stored) == [
        ("json", "event", "LEAD_CREATED"),
        ("json", "a", "1"),
        ("json", "a", "2"),
        ("json", "nested", '{"b": 1, "b": 2}'),  # nested objects as sent, too
    ]
    assert stored["notes"]["json_keys"].startswith('Repeated keys in a JSON object ("a", "b")')


def test_json_numbers_are_kept_as_sent_in_parameters_and_log(client, fetch, caplog):
    body = (
        b'{"event": "QR_CODE_SCANNED", "lat": 52.5200080000, "redirects": 1284, '
        b'"big": 1e400, "geo": {"lng": 13.40, "alt": [1.0, -0]}, "n": NaN}'
    )
    with caplog.at_level("INFO", logger="receiver.hooks"):
        response = client.post("/hooks/default", data=body, content_type="application/json")
    stored = fetch(response.get_json()["id"])
    assert params_of(stored)[1:] == [
        ("json", "lat", "52.5200080000"),
        ("json", "redirects", "1284"),
        ("json", "big", "1e400"),
        ("json", "geo", '{"lng": 13.40, "alt": [1.0, -0]}'),
        ("json", "n", "NaN"),
    ]
    assert "lat: 52.5200080000\n" in caplog.text


@pytest.mark.parametrize(
    "number", ["-0", "1" * 5000, "5e-324", "0.30000000000000004", "100", "-12.5", "1.0"]
)
def test_a_json_number_is_kept_as_sent_however_python_would_read_it(client, fetch, number):
    body = f'{{"event": "LEAD_CREATED", "n": {number}, "in": {{"n": [{number}]}}}}'
    response = client.post("/hooks/default", data=body, content_type="application/json")
    params = {p["name"]: p["value"] for p in fetch(response.get_json()["id"])["params"]}
    assert params["n"] == number[:65536]
    assert params["in"] == f'{{"n": [{number}]}}'


def test_a_multipart_boundary_that_is_not_latin1_is_noted_not_a_500(client, fetch):
    response = client.post(
        "/hooks/default",
        data=b"--\xe2\x82\xac\r\n",
        content_type="multipart/form-data; boundary*=UTF-8''%E2%82%AC",
    )
    assert response.status_code == 200
    assert "could not be parsed" in fetch(response.get_json()["id"])["notes"]["multipart"]


def test_a_multipart_part_that_cannot_be_read_keeps_the_parts_before_it(client, fetch):
    # A latin-1 file name (not UTF-8) stops the parser at that part's header.
    body = (
        b"--b0\r\n"
        b'Content-Disposition: form-data; name="event"\r\n\r\nLEAD_CREATED\r\n'
        b"--b0\r\n"
        b'Content-Disposition: form-data; name="email"\r\n\r\nzoe@example.com\r\n'
        b"--b0\r\n"
        b'Content-Disposition: form-data; name="f"; filename="caf\xe9.txt"\r\n\r\nx\r\n'
        b"--b0--\r\n"
    )
    response = client.post(
        "/hooks/default", data=body, content_type="multipart/form-data; boundary=b0"
    )
    assert response.status_code == 200
    document = fetch(response.get_json()["id"])
    assert [(p["name"], p["value"]) for p in document["params"]] == [
        ("event", "LEAD_CREATED"),
        ("email", "zoe@example.com"),
    ]
    assert document["event_type"] == "LEAD_CREATED"
    note = document["notes"]["multipart"]
    assert "could not be parsed" in note and "the 2 part(s) before it are listed" in note
    assert base64.b64decode(document["body_base64"]) == body


def test_every_multipart_part_downloads_as_its_exact_bytes_in_body_order(client, fetch):
    body = (
        b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\nfirst\r\n'
        b'--b\r\nContent-Disposition: form-data; name="f"; filename="x.bin"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n\x00\xff\r\n"
        b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\nsecond\r\n'
        b'--b\r\nContent-Disposition: form-data; name="city"\r\n'
        b"Content-Type: text/plain; charset=latin-1\r\n\r\nZ\xfcrich\r\n"
        b"--b--\r\n"
    )
    response = client.post(
        "/hooks/default", data=body, content_type="multipart/form-data; boundary=b"
    )
    capture_id = response.get_json()["id"]
    stored = fetch(capture_id)
    assert [(p["index"], p["name"], p["size"]) for p in stored["parts"]] == [
        (0, "a", 5),
        (1, "f", 2),
        (2, "a", 6),
        (3, "city", 6),
    ]
    assert stored["parts"][3]["content_type"] == "text/plain; charset=latin-1"
    downloads = [client.get(f"/api/captures/{capture_id}/parts/{i}").get_data() for i in range(4)]
    assert downloads == [b"first", b"\x00\xff", b"second", b"Z\xfcrich"]
    # Fields are parameters too, read as UTF-8 (the raw bytes stay downloadable).
    assert params_of(stored) == [
        ("post", "a", "first"),
        ("post", "a", "second"),
        ("post", "city", "Z\ufffdrich"),
    ]


def test_repeated_and_php_style_parameters_are_kept_as_sent(client, fetch):
    response = client.post(
        "/hooks/default?a=1&a=2&items[]=x&items[]=y",
        data=b"tag=one&tag=two&list[]=p&list[]=q&empty=",
        content_type="application/x-www-form-urlencoded",
    )
    stored = fetch(response.get_json()["id"])
    assert params_of(stored) == [
        ("post", "tag", "one"),
        ("post", "tag", "two"),
        ("post", "list[]", "p"),
        ("post", "list[]", "q"),
        ("post", "empty", ""),
        ("get", "a", "1"),
        ("get", "a", "2"),
        ("get", "items[]", "x"),
        ("get", "items[]", "y"),
    ]


def test_parameters_follow_the_platform_script_order_post_get_json(client, fetch):
    # A JSON body under a form content type is not form data; send JSON with
    # query parameters, and a form with query parameters, and check both orders.
    response = client.post(
        "/hooks/default?from=query",
        data=json.dumps({"event": "LEAD_CREATED", "nested": {"a": [1, 2]}, "n": 3}),
        content_type="application/json",
    )
    stored = fetch(response.get_json()["id"])
    assert params_of(stored) == [
        ("get", "from", "query"),
        ("json", "event", "LEAD_CREATED"),
        ("json", "nested", '{"a": [1, 2]}'),
        ("json", "n", "3"),
    ]
    response = client.post("/hooks/default?from=query", data={"from": "form"})
    stored = fetch(response.get_json()["id"])
    assert params_of(stored) == [("post", "from", "form"), ("get", "from", "query")]


@pytest.mark.parametrize(
    ("content_type", "body", "note"),
    [
        ("application/json", b'{"event": "QR_CODE_SCANNED",', "Invalid JSON"),
        ("application/json", b"", "empty"),
        ("application/vnd.api+json", b"{nope}", "Invalid JSON"),
        ("application/json", b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        ("application/json", b"\xff\xfe{}", "Invalid JSON"),
    ],
)
def test_bad_json_under_a_json_type_is_recorded_with_the_reason(
    client, fetch, content_type, body, note
):
    response = client.post("/hooks/default", data=body, content_type=content_type)
    assert response.status_code == 200
    stored = fetch(response.get_json()["id"])
    assert note in stored["notes"]["json"]
    assert raw_body(stored) == body


def test_json_body_without_a_json_type_is_still_read(client, fetch):
    response = client.post("/hooks/default", data=b'{"event": "VOUCHER_EXPIRED"}')
    stored = fetch(response.get_json()["id"])
    assert stored["event_type"] == "VOUCHER_EXPIRED"
    assert stored["notes"] == {}


HOSTILE = {
    "deep json object": ("application/json", b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
    "10,000 form fields": (
        "application/x-www-form-urlencoded",
        "&".join(f"f{i}={i}" for i in range(10_000)).encode(),
    ),
    "multipart, no boundary": ("multipart/form-data", b"--x\r\n\r\nhello"),
    "truncated multipart": (
        "multipart/form-data; boundary=XyZ",
        b'--XyZ\r\nContent-Disposition: form-data; name="a"\r\n\r\nvalue-without-end',
    ),
    "garbage multipart": ("multipart/form-data; boundary=XyZ", bytes(range(256)) * 10),
    "json type, binary": ("application/json", bytes(range(256))),
    "form type, binary": ("application/x-www-form-urlencoded", bytes(range(256))),
    "malformed content type": (";;;===; boundary", b"a=1"),
    "empty body": ("application/x-www-form-urlencoded", b""),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_bodies_are_captured_never_a_500(client, fetch, name):
    content_type, body = HOSTILE[name]
    response = client.post("/hooks/default", data=body, headers={"Content-Type": content_type})
    assert response.status_code == 200, response.get_data(as_text=True)
    stored = fetch(response.get_json()["id"])
    assert raw_body(stored) == body


def test_ten_thousand_form_fields_all_become_parameters(client, fetch):
    body = "&".join(f"f{i}={i}" for i in range(10_000)).encode()
    response = client.post(
        "/hooks/default", data=body, content_type="application/x-www-form-urlencoded"
    )
    stored = fetch(response.get_json()["id"])
    assert len(stored["params"]) == 10_000
    assert stored["params"][-1] == {"source": "post", "name": "f9999", "value": "9999"}


def test_huge_header_value_is_kept(client, fetch):
    value = "v" * 60_000
    response = client.post("/hooks/default", headers={"X-Huge": value})
    assert response.status_code == 200
    stored = fetch(response.get_json()["id"])
    assert ["X-Huge", value] in stored["headers"]


def test_body_over_the_limit_is_413_and_nothing_is_stored(app, client):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    response = client.post("/hooks/default", data=b"x" * 1001)
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "request_entity_too_large"
    ok = client.post("/hooks/default", data=b"x" * 1000)
    assert ok.status_code == 200
    # The rejected body took no id: the next capture is the first.
    assert ok.get_json()["id"] == 1


def test_chunked_body_over_the_limit_is_413_while_reading(app, client):
    app.config["MAX_CONTENT_LENGTH"] = 1000

    def chunks():
        for _ in range(20):
            yield b"y" * 100

    response = client.post(
        "/hooks/default",
        input_stream=io.BytesIO(b"".join(chunks())),
        headers={"Transfer-Encoding": "chunked"},
        # What gunicorn says of a chunked body: read it to its end.
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413


def test_unknown_inbox_is_404_json(client):
    response = client.post("/hooks/nobody-here", data={"a": "1"})
    assert response.status_code == 404
    assert response.get_json() == {
        "error": {"code": "unknown_inbox", "message": "No inbox named 'nobody-here'."}
    }


def deleted_by_another_worker(app, client, slug: str) -> None:
    """An inbox this worker has read the settings of (its id among them, cached),
    then deleted by another worker (past this one's cache)."""
    assert client.post("/api/inboxes", json={"slug": slug}).status_code == 201
    assert client.post(f"/hooks/{slug}", data={"a": "1"}).status_code == 200
    with app.app_context():
        db.session.execute(text("DELETE FROM inbox WHERE slug = :slug"), {"slug": slug})
        db.session.commit()


@pytest.mark.parametrize("app_config", [{"RECEIVER_SETTINGS_CACHE_SECONDS": 60}])
def test_a_delivery_to_an_inbox_deleted_in_another_worker_is_404_and_lands_nowhere(
    app, client
):
    # The new inbox must not take the deleted one's id.
    deleted_by_another_worker(app, client, "going")
    assert client.post("/api/inboxes", json={"slug": "next"}).status_code == 201
    response = client.post("/hooks/going", data={"a": "2"})
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "unknown_inbox"
    assert client.get("/api/inboxes/next/captures").get_json()["captures"] == []
    # The stale settings are gone: the next delivery is an ordinary 404.
    assert client.post("/hooks/going", data={"a": "3"}).status_code == 404


@pytest.mark.parametrize("app_config", [{"RECEIVER_SETTINGS_CACHE_SECONDS": 60}])
def test_a_delivery_to_an_inbox_made_again_under_its_name_is_asked_again_not_lost(
    app, client
):
    deleted_by_another_worker(app, client, "again")
    assert client.post("/api/inboxes", json={"slug": "again"}).status_code == 201
    response = client.post("/hooks/again", data={"a": "2"})
    assert response.status_code == 503  # a sender sends it again; a 404 it would drop
    assert response.headers["Retry-After"] == "1"
    retried = client.post("/hooks/again", data={"a": "2"})
    assert retried.status_code == 200
    captures = client.get("/api/inboxes/again/captures").get_json()["captures"]
    assert [c["id"] for c in captures] == [retried.get_json()["id"]]


@pytest.mark.parametrize("app_config", [{"RECEIVER_AUTO_CREATE_INBOXES": True}])
def test_auto_creation_makes_unknown_inboxes(client, fetch):
    response = client.post("/hooks/acme-prod/QR_CODE_SCANNED", data={"a": "1"})
    assert response.status_code == 200
    assert fetch(response.get_json()["id"])["inbox"] == "acme-prod"
    # Names that would make unreadable URLs are still refused, and told why.
    refused = client.post("/hooks/Not%20A%20Slug")
    assert refused.status_code == 404
    assert "only for names of 1-64 lower-case letters" in refused.get_json()["error"]["message"]


@pytest.mark.parametrize("app_config", [{"RECEIVER_INBOX_CAPACITY": 3}])
def test_a_full_inbox_drops_its_oldest_captures(client):
    ids = [client.post("/hooks/default", data={"n": str(i)}).get_json()["id"] for i in range(5)]
    assert client.get(f"/api/captures/{ids[0]}").status_code == 404
    assert client.get(f"/api/captures/{ids[1]}").status_code == 404
    for kept in ids[2:]:
        assert client.get(f"/api/captures/{kept}").status_code == 200


def test_received_time_is_utc_with_microseconds(client, fetch):
    before = datetime.now(UTC)
    stored = fetch(client.post("/hooks/default").get_json()["id"])
    received = datetime.fromisoformat(stored["received_at"].replace("Z", "+00:00"))
    assert stored["received_at"].endswith("Z")
    assert len(stored["received_at"].split(".")[1]) == 7  # six digits and the Z
    assert before - timedelta(seconds=1) <= received <= datetime.now(UTC)


@pytest.mark.parametrize(
    ("app_config", "forwarded", "expected"),
    [
        ({}, "203.0.113.9", "127.0.0.1"),
        ({"RECEIVER_TRUSTED_PROXIES": 1}, "198.51.100.1, 203.0.113.9", "203.0.113.9"),
        ({"RECEIVER_TRUSTED_PROXIES": 2}, "198.51.100.1, 203.0.113.9", "198.51.100.1"),
    ],
)
def test_client_address_comes_through_trusted_proxies_only(client, fetch, forwarded, expected):
    response = client.post("/hooks/default", headers={"X-Forwarded-For": forwarded})
    assert fetch(response.get_json()["id"])["remote_addr"] == expected


def test_capture_is_logged_like_the_platform_script_with_the_secret_masked(client, caplog):
    caplog.set_level(logging.INFO, logger="receiver.hooks")
    client.post(
        "/hooks/default/scan?via=query",
        data={"event": "QR_CODE_SCANNED", "secrettoken": "abc-very-secret", "redirects": "3"},
    )
    lines = "\n".join(record.getMessage() for record in caplog.records).splitlines()
    assert lines[0] == "Fired WebHook"
    assert lines[1] == "event: QR_CODE_SCANNED"
    assert lines[2].startswith("secrettoken: [secrettoken:")
    assert lines[3:] == ["redirects: 3", "via: query"]
    assert "abc-very-secret" not in caplog.text


def test_log_lines_cannot_be_forged_with_newlines(client, caplog):
    caplog.set_level(logging.INFO, logger="receiver.hooks")
    client.post("/hooks/default", data={"name": "x\nFired WebHook\nevent: FAKE"})
    lines = caplog.records[-1].getMessage().splitlines()
    assert lines == ["Fired WebHook", "name: x\\nFired WebHook\\nevent: FAKE"]


def test_log_lines_keep_joiners_in_words_and_escape_direction_controls(client, caplog):
    caplog.set_level(logging.INFO, logger="receiver.hooks")
    client.post("/hooks/default", data={"name": "می\u200cخواهم", "user": "\u202enimda"})
    lines = caplog.records[-1].getMessage().splitlines()
    assert lines == ["Fired WebHook", "name: می\u200cخواهم", "user: \\u202enimda"]


def test_a_form_declaring_another_charset_says_how_it_was_read(client, fetch):
    latin1 = "application/x-www-form-urlencoded; charset=ISO-8859-1"
    response = client.post("/hooks/default", data=b"name=Jos%E9", content_type=latin1)
    document = fetch(response.get_json()["id"])
    assert document["params"][0]["value"] == "Jos\ufffd"
    assert "charset=ISO-8859-1" in document["notes"]["charset"]
    assert base64.b64decode(document["body_base64"]) == b"name=Jos%E9"
    # Nothing to say when the bytes read as UTF-8 anyway.
    response = client.post("/hooks/default", data=b"name=Jos%C3%A9", content_type=latin1)
    assert "charset" not in fetch(response.get_json()["id"])["notes"]


def test_nan_and_infinity_are_read_but_said_not_to_be_json(client, fetch):
    body = b'{"event": "LEAD_CREATED", "a": NaN, "b": [-Infinity, Infinity], "c": 1}'
    response = client.post("/hooks/default", data=body, content_type="application/json")
    document = fetch(response.get_json()["id"])
    assert {p["name"]: p["value"] for p in document["params"]}["a"] == "NaN"
    note = document["notes"]["json_constants"]
    assert note.startswith("The body uses NaN, -Infinity, Infinity, which JSON")
    plain = client.post("/hooks/default", json={"a": 1.5}).get_json()["id"]
    assert "json_constants" not in fetch(plain)["notes"]


def test_missing_capture_is_a_json_404(client):
    response = client.get("/api/captures/999")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_a_database_failure_is_a_503_and_never_a_false_acknowledgement(app, client, monkeypatch):
    from receiver.writer import writer_for

    with app.app_context():
        from receiver.extensions import db

        writer = writer_for(app, db.engine)

    def broken(*_args, **_kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(writer, "_store", broken)
    response = client.post("/hooks/default", data={"event": "LEAD_CREATED"})
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "storage_unavailable"
    assert response.headers["Retry-After"] == "1"
    monkeypatch.undo()
    assert client.post("/hooks/default").status_code == 200


def test_a_writer_connection_lost_while_idle_is_replaced_without_refusing_a_delivery(
    app, client, caplog
):
    """A database restart, or a proxy that closes idle connections, leaves the
    writer holding a dead connection: the next delivery is still stored, once."""
    from sqlalchemy import create_engine

    from receiver.writer import writer_for

    first = client.post("/hooks/default", data={"n": "1"}).get_json()["id"]
    with app.app_context():
        writer = writer_for(app, db.engine)
        if db.engine.dialect.name == "postgresql":
            backend = writer._connection.dbapi_connection.info.backend_pid
            other = create_engine(db.engine.url)
            with other.connect() as connection:
                connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
            other.dispose()
        else:
            writer._connection.dbapi_connection.close()
    caplog.set_level(logging.WARNING, logger="receiver.writer")
    response = client.post("/hooks/default", data={"n": "2"})
    assert response.status_code == 200, response.get_json()
    assert "the database connection was lost" in caplog.text
    with app.app_context():
        stored = db.session.execute(text("SELECT id FROM capture WHERE id > :id"), {"id": first})
        assert [row.id for row in stored] == [response.get_json()["id"]]


def test_a_connection_cut_off_mid_batch_with_an_unclear_error_is_replaced_too(
    app, client, monkeypatch
):
    """psycopg's pipeline, cut off during the inserts, reports only "cannot
    exit pipeline mode while busy": a connection that cannot even roll back
    is dead, and nothing of the batch was committed on it."""
    from receiver.writer import writer_for

    client.post("/hooks/default", data={"n": "1"})
    with app.app_context():
        writer = writer_for(app, db.engine)
    real_store, tries = writer._store, []

    def cut_off_once(connection, batch):
        tries.append(len(batch))
        if len(tries) == 1:
            connection.dbapi_connection.close()
            raise RuntimeError("cannot exit pipeline mode while busy")
        real_store(connection, batch)

    monkeypatch.setattr(writer, "_store", cut_off_once)
    response = client.post("/hooks/default", data={"n": "2"})
    assert response.status_code == 200
    assert tries == [1, 1]
    with app.app_context():
        stored = db.session.execute(text("SELECT count(*) FROM capture")).scalar()
    assert stored == 2


def test_a_connection_lost_during_the_commit_is_not_written_again(app, client, monkeypatch):
    """Whether a commit the connection dropped under went through cannot be
    known: storing the batch again could store it twice. 503: the sender
    sends it again, and the dashboard marks a repeat."""
    from receiver.writer import writer_for

    client.post("/hooks/default", data={"n": "1"})
    with app.app_context():
        writer = writer_for(app, db.engine)
    real_store, tries = writer._store, []

    def store_then_lose_the_connection_at_commit(connection, batch):
        tries.append(len(batch))
        real_commit = connection.commit

        def commit():
            connection.dbapi_connection.close()  # gone just as the commit is sent
            real_commit()

        monkeypatch.setattr(connection, "commit", commit)
        real_store(connection, batch)

    monkeypatch.setattr(writer, "_store", store_then_lose_the_connection_at_commit)
    response = client.post("/hooks/default", data={"n": "2"})
    assert response.status_code == 503
    assert tries == [1]  # not stored a second time on a new connection
    monkeypatch.undo()
    assert client.post("/hooks/default", data={"n": "3"}).status_code == 200


@pytest.mark.parametrize("app_config", [{"RECEIVER_SETTINGS_CACHE_SECONDS": 0}])
def test_a_database_away_before_the_inbox_is_read_is_a_503_too(client, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from receiver import storage

    def away(_slug):
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr(storage, "find_inbox", away)
    response = client.post("/hooks/default", data={"event": "LEAD_CREATED"})
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "storage_unavailable"
    assert response.headers["Retry-After"] == "1"
    monkeypatch.undo()
    assert client.post("/hooks/default").status_code == 200


@pytest.mark.parametrize("app_config", [{"MAX_CONTENT_LENGTH": 1024 * 1024}])
def test_many_different_secrettokens_are_refused_not_stored(client):
    query = "&".join(f"secrettoken=key{i}" for i in range(17))
    response = client.post(f"/hooks/default?{query}")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "too_many_secrettokens"
    assert client.get("/api/inboxes/default/captures").get_json()["captures"] == []


def test_a_huge_secrettoken_is_masked_quickly(client, fetch):
    secret = "k" * 100_000
    response = client.post("/hooks/default", data={"secrettoken": secret, "echo": secret})
    stored = fetch(response.get_json()["id"])
    assert secret not in json.dumps(stored)
    assert secret not in base64.b64decode(stored["body_base64"]).decode()


def test_concurrent_deliveries_each_get_their_own_committed_capture(app, client, fetch):
    # Many requests in one process share commits (one leads, the rest wait on
    # their own job): every one is answered with its own id and stored exactly.
    results: dict[int, int] = {}
    errors: list[BaseException] = []

    def send(sender: int) -> None:
        own = app.test_client()
        try:
            for n in range(8):
                body = f"event=LEAD_CREATED&sender={sender}&n={n}"
                response = own.post(
                    "/hooks/default",
                    data=body,
                    content_type="application/x-www-form-urlencoded",
                )
                assert response.status_code == 200
                results[response.get_json()["id"]] = sender * 100 + n
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(sender,)) for sender in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(results) == 16 * 8
    for capture_id, tag in results.items():
        stored = fetch(capture_id)
        sender, n = divmod(tag, 100)
        assert base64.b64decode(stored["body_base64"]).decode() == (
            f"event=LEAD_CREATED&sender={sender}&n={n}"
        )
    # The per-inbox counts moved by exactly what was stored.
    assert client.get("/api/inboxes/default/stats").get_json()["total"] == 16 * 8


def _form_reference(data: bytes) -> list[tuple[str, str]]:
    """A form read the plain way: split, `+` to space, percent-decode to bytes,
    then read those bytes as UTF-8 (what PHP hands a UTF-8 page)."""
    from urllib.parse import unquote_to_bytes

    def read(raw: bytes) -> str:
        return unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8", "replace")

    pairs = []
    for item in data.split(b"&"):
        if item:
            name, _, value = item.partition(b"=")
            pairs.append((read(name), read(value)))
    return pairs


@pytest.mark.parametrize("in_place_over", [0, 10**9], ids=["read in place", "split"])
def test_form_pairs_are_read_as_utf8_bytes_after_percent_decoding(monkeypatch, in_place_over):
    # Both ways of reading a form (small bodies are split, large ones read in
    # place) give the plain reading, on awkward random input: raw UTF-8 and
    # percent-escapes mixed, bytes that are not UTF-8, stray `%` and `=`.
    import random

    from receiver import capture

    monkeypatch.setattr(capture, "IN_PLACE_OVER", in_place_over)
    pieces = [bytes([b]) for b in b"ab=&+zZ\xc3\xa4\xff% ;"]
    pieces += [b"%2F", b"%C3%A4", b"%e4", b"%zz", b"==", b"&&", b"%", b"+%2B", b"\xe2\x82\xac"]
    rng = random.Random(7)
    for _ in range(20_000):
        data = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 24)))
        assert capture.parse_pairs(data) == _form_reference(data), data


def test_raw_utf8_in_a_form_body_reads_as_the_text_sent(client, fetch):
    # curl -d 'name=José' sends the UTF-8 bytes as they are, unescaped.
    response = client.post(
        "/hooks/default/utf",
        data=b"name=Jos\xc3\xa9&city=Z\xc3\xbcrich%20Stadt&mixed=\xc3%A4&bad=caf\xe9",
        content_type="application/x-www-form-urlencoded",
    )
    params = params_of(fetch(response.get_json()["id"]))
    assert params == [
        ("post", "name", "José"),
        ("post", "city", "Zürich Stadt"),
        ("post", "mixed", "ä"),  # a raw byte and an escaped one make one character
        ("post", "bad", "caf\ufffd"),  # latin-1, not UTF-8: replaced, the raw body keeps it
    ]


def test_a_huge_parameter_value_is_stored_cut_and_the_body_whole(client, fetch):
    from receiver.capture import STORED_VALUE_MAX

    note = "n" * (STORED_VALUE_MAX + 5000)
    body = f"event=LEAD_CREATED&note={note}&after=1"
    response = client.post(
        "/hooks/default", data=body, content_type="application/x-www-form-urlencoded"
    )
    stored = fetch(response.get_json()["id"])
    assert base64.b64decode(stored["body_base64"]).decode() == body
    values = {p["name"]: p["value"] for p in stored["params"]}
    assert values["after"] == "1"
    assert values["note"].startswith("n" * STORED_VALUE_MAX + "… [cut: ")
    assert f"{len(note):,} characters in all" in values["note"]
    assert len(values["note"]) < STORED_VALUE_MAX + 100
    assert stored["notes"]["params"] == (
        f"1 parameter value longer than {STORED_VALUE_MAX:,} characters is stored cut; "
        "the raw body holds it whole."
    )


def test_the_log_gives_a_long_values_true_length_and_names_at_most_1000_fields(
    client, caplog
):
    from receiver.capture import STORED_VALUE_MAX

    caplog.set_level(logging.INFO, logger="receiver.hooks")
    note = "n" * (STORED_VALUE_MAX + 5000)
    response = client.post("/hooks/default", data={"event": "LEAD_CREATED", "note": note})
    logged = caplog.records[-1].getMessage().splitlines()
    assert logged[2] == "note: " + "n" * 500 + f"… ({len(note):,} characters)"
    # The page's copy of the log, from the stored (cut) value, says the same.
    page = client.get(f"/inboxes/default/captures/{response.get_json()['id']}")
    assert f"… ({len(note):,} characters)" in page.get_data(as_text=True)

    fields = "&".join(f"f{n}=1" for n in range(5000))
    client.post("/hooks/default", data=fields, content_type="application/x-www-form-urlencoded")
    logged = caplog.records[-1].getMessage().splitlines()
    assert len(logged) == 1 + 1000 + 1
    assert logged[-1] == "… and 4,000 more parameters"


def test_ids_are_handed_out_in_commit_order(app, client):
    # Another writer (another worker or app server) is mid-batch: it has its id
    # but has not committed. A delivery now must wait for it, and get a higher
    # id, so a live stream that follows ids never misses the slower capture.
    from receiver import storage
    from receiver.extensions import db
    from receiver.writer import CaptureWriter, _Job

    release = threading.Event()
    with app.app_context():
        inbox_id = storage.inbox_config("default", 0).id
        connection = db.engine.raw_connection()
        other = CaptureWriter(db.engine)

    class PausedBeforeCommit:
        def cursor(self):
            return connection.cursor()

        def commit(self):
            release.wait(10)
            connection.commit()

    row = capture_row(inbox_id, body=b"slow", content_length=4)
    slow = _Job(row, 10_000)
    writing = threading.Thread(target=other._store, args=(PausedBeforeCommit(), [slow]))
    writing.start()
    deadline = time.monotonic() + 10
    while slow.capture_id is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert slow.capture_id is not None

    answered = {}
    delivering = threading.Thread(
        # Another event type: its count row is not the one the slow writer holds.
        target=lambda: answered.update(
            client.post("/hooks/default", data={"event": "LEAD_CREATED"}).get_json()
        )
    )
    delivering.start()
    delivering.join(0.5)
    assert delivering.is_alive(), "a delivery committed ahead of a lower id"
    release.set()
    writing.join(10)
    delivering.join(30)
    assert answered["id"] > slow.capture_id
    connection.close()


@pytest.mark.parametrize(
    ("method", "path", "subpath"),
    [
        ("POST", "/hooks/default/ws", "ws"),
        ("GET", "/hooks/default", ""),
        ("PROPFIND", "/hooks/default/ws", "ws"),
        ("POST", "/hooks/default/", ""),
        ("POST", "/hooks/default//x", "/x"),
    ],
)
def test_a_websocket_upgrade_request_is_captured_as_any_other(
    client, fetch, method, path, subpath
):
    # No rule here is a WebSocket rule: the router alone would refuse it (400).
    response = client.open(
        path,
        method=method,
        headers={"Upgrade": "websocket", "Connection": "Upgrade"},
        data=b"hi",
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert "Upgrade" not in response.headers
    stored = fetch(response.get_json()["id"])
    assert (stored["method"], stored["path"], stored["subpath"]) == (method, path, subpath)
    assert ["Upgrade", "websocket"] in stored["headers"]
    assert ["Connection", "Upgrade"] in stored["headers"]
    assert raw_body(stored) == b"hi"


def test_a_websocket_upgrade_to_an_unknown_inbox_is_404_and_elsewhere_still_400(client):
    response = client.get("/healthz", headers={"Upgrade": "websocket", "Connection": "Upgrade"})
    assert response.status_code == 400
    response = client.post(
        "/hooks/no-such-inbox/ws", headers={"Upgrade": "websocket", "Connection": "Upgrade"}
    )
    assert response.status_code == 404


def test_a_sqlite_file_moved_away_while_open_is_noticed_and_no_capture_is_lost(tmp_path, caplog):
    """An open connection would write on into the moved or deleted file, and
    answer 200 for captures no one would ever see: the writer looks first."""
    import os
    import shutil

    from conftest import close_app, make_app

    from receiver.cli import setup_database
    from receiver.writer import writer_for

    path = tmp_path / "receiver.sqlite3"
    # Settings cached, as served: the delivery itself asks the database nothing first.
    app = make_app(f"sqlite:///{path}", RECEIVER_SETTINGS_CACHE_SECONDS=60)
    caplog.set_level(logging.WARNING, logger="receiver")
    try:
        with app.app_context():
            setup_database()
        logging.getLogger().addHandler(caplog.handler)  # the migrations' log setup took it off
        client = app.test_client()
        assert client.post("/hooks/default", data={"n": "1"}).status_code == 200
        os.rename(path, tmp_path / "moved.sqlite3")
        refused = client.post("/hooks/default", data={"n": "2"})
        assert refused.status_code == 503
        assert refused.get_json()["error"]["code"] == "storage_unavailable"
        assert not path.exists()  # not made anew, empty
        assert "database file" in caplog.text and "is gone" in caplog.text
        for n in range(10):  # the log says so once in a while, not once per delivery
            assert client.post("/hooks/default", data={"n": f"x{n}"}).status_code == 503
        said = [r for r in caplog.records if "not stored" in r.getMessage()]
        assert len(said) == 2, [r.getMessage() for r in said]  # the writer's and the answer's
        assert client.get("/readyz").status_code == 503
        # A worker started meanwhile (gunicorn replaces one that stopped) makes
        # no empty file either: the database was set up here before.
        fresh = make_app(f"sqlite:///{path}", RECEIVER_SETTINGS_CACHE_SECONDS=60)
        try:
            assert fresh.test_client().post("/hooks/default").status_code == 503
            assert fresh.test_client().get("/readyz").status_code == 503
        finally:
            close_app(fresh)
        assert not path.exists()
        # Back where it was: captures are stored again, in it.
        os.rename(tmp_path / "moved.sqlite3", path)
        assert client.post("/hooks/default", data={"n": "3"}).status_code == 200
        assert client.get("/readyz").status_code == 200
        # Replaced by another file (a backup moved into place): every open
        # connection still has the old one, so nothing is written until a restart.
        with app.app_context():
            writer_for(app, db.engine)._outage._last -= 60  # its next line is not held back
        shutil.copy(path, tmp_path / "restored.sqlite3")
        os.replace(tmp_path / "restored.sqlite3", path)
        assert client.post("/hooks/default", data={"n": "4"}).status_code == 503
        assert "was replaced by another file while open: restart the server" in caplog.text
    finally:
        close_app(app)
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stored = [row[0] for row in check.execute("SELECT count(*) FROM capture")]
    assert stored == [2]  # n=1 and n=3; neither 2 nor 4 was acknowledged


@pytest.mark.parametrize(
    ("body", "noted"),
    [
        (b"name=M%FCller", True),  # Latin-1, percent-encoded
        (b"name=M\xfcller", True),  # Latin-1, raw
        (b"name=M%C3%BCller", False),  # UTF-8
        (b"name=%EF%BF%BD", False),  # U+FFFD itself, sent as such
    ],
)
def test_bytes_that_are_not_utf8_are_said_to_be_shown_replaced(client, fetch, body, noted):
    response = client.post(
        "/hooks/default", data=body, content_type="application/x-www-form-urlencoded"
    )
    stored = fetch(response.get_json()["id"])
    assert ("utf8" in stored["notes"]) is noted
    assert raw_body(stored) == body  # the bytes themselves are kept as sent


def test_a_nul_character_anywhere_in_a_delivery_is_captured_not_refused(client, fetch):
    """PostgreSQL's text cannot hold NUL: the list's columns show it as ␀, and
    the raw path, parameters and body keep it as sent."""
    response = client.post(
        "/hooks/default/a%00b?code=%00",
        data="event=QR_CODE_SCANNED&code=A%00B&user=u%00",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200, response.get_json()
    document = fetch(response.get_json()["id"])
    assert document["path"] == "/hooks/default/a\u2400b"
    assert document["subpath"] == "a\u2400b"
    assert document["raw_path"] == "/hooks/default/a%00b"
    assert (document["code"], document["user"]) == ("A\u2400B", "u\u2400")
    params = [(p["name"], p["value"]) for p in document["params"]]
    assert ("code", "A\x00B") in params and ("user", "u\x00") in params
    assert ("code", "\x00") in params
    as_json = client.post("/hooks/default", json={"code": "a\u0000b", "note": "\u0000"})
    assert as_json.status_code == 200
    assert fetch(as_json.get_json()["id"])["code"] == "a\u2400b"


def test_an_inbox_name_with_a_nul_character_is_not_found(client):
    response = client.post("/hooks/a%00b", data="event=QR_CODE_SCANNED")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "unknown_inbox"


def test_raw_path_bytes_that_are_not_utf8_are_said_to_be_shown_escaped(client, fetch):
    sent = "/hooks/default/\xff\xfe"  # as gunicorn hands raw bytes over: Latin-1 text
    response = client.get("/x", environ_overrides={"RAW_URI": sent, "PATH_INFO": sent})
    stored = fetch(response.get_json()["id"])
    assert stored["raw_path"] == "/hooks/default/%FF%FE"
    assert stored["path"] == "/hooks/default/\ufffd\ufffd"
    assert "not UTF-8" in stored["notes"]["path"]
    utf8 = "/hooks/default/caf\xc3\xa9"
    response = client.get("/x", environ_overrides={"RAW_URI": utf8, "PATH_INFO": utf8})
    assert "path" not in fetch(response.get_json()["id"])["notes"]
