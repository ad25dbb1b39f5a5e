"""The app as the README starts it: gunicorn with gunicorn.conf.py, over real sockets."""

from __future__ import annotations

import base64
import gzip
import html
import os
import re
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time

import pytest
import requests
from conftest import ROOT, LiveServer

pytestmark = pytest.mark.slow


def raw_request(server, data: bytes, *, end_sending: bool = False) -> bytes:
    """Send bytes exactly as written (names' case, repeats, chunking) and read the answer.
    With `end_sending`, the sender then closes its side, as a client that gave up would."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        conn.sendall(data)
        if end_sending:
            conn.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def capture_id_of(answer: bytes) -> int:
    return int(answer.split(b"X-Capture-Id: ")[1].split(b"\r\n")[0])


def wait_for_log(server, text: str, seconds: float = 5) -> None:
    """Until the server's log shows `text` (its lines are written a moment after the answer)."""
    deadline = time.monotonic() + seconds
    while text not in server.log() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_readme_curl_example_is_captured_logged_masked_and_readable(live_server):
    result = subprocess.run(
        [
            "curl",
            "-s",
            "-d",
            "event=QR_CODE_SCANNED&secrettoken=abc&redirects=3",
            f"{live_server.url}/hooks/default/scan",
        ],
        capture_output=True,
        check=True,
        text=True,
    )
    answer = requests.models.complexjson.loads(result.stdout)
    assert answer["ok"] is True
    capture_id = answer["id"]

    stored = requests.get(f"{live_server.url}/api/captures/{capture_id}", timeout=5).json()
    assert stored["event_type"] == "QR_CODE_SCANNED"
    assert stored["subpath"] == "scan"
    assert {"source": "post", "name": "redirects", "value": "3"} in stored["params"]

    # The server log shows the platform script's lines, the secret masked.
    wait_for_log(live_server, "redirects: 3")
    log = live_server.log()
    assert "Fired WebHook\nevent: QR_CODE_SCANNED\nsecrettoken: [secrettoken:" in log
    assert "secrettoken: abc" not in log
    assert "Capture URL: http://127.0.0.1:" in log


def test_the_access_log_never_shows_a_secret_sent_in_the_path(live_server):
    key = "pathkey-" + "7f3a9c1e5b"
    response = requests.post(
        f"{live_server.url}/hooks/default/by/{key}/x", data={"secrettoken": key}, timeout=5
    )
    capture_id = response.json()["id"]
    wait_for_log(live_server, f"capture={capture_id} ")
    line = next(line for line in live_server.log().splitlines() if f"capture={capture_id} " in line)
    assert 'path="/hooks/default/by/[secrettoken:' in line
    # Refused deliveries too: an unknown inbox, a body over the limit.
    for url, body in (
        (f"/hooks/no-such-inbox/{key}/x", b""),
        (f"/hooks/default/{key}/big", b"x" * (10 * 1024 * 1024 + 1)),
    ):
        answer = requests.post(f"{live_server.url}{url}?secrettoken={key}", data=body, timeout=30)
        assert answer.status_code in (404, 413)
    # Each worker writes its line once its answer is sent: wait for both.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not (
        "status=413" in live_server.log() and "/hooks/no-such-inbox/" in live_server.log()
    ):
        time.sleep(0.05)
    assert 'path="/hooks/no-such-inbox/[secrettoken:' in live_server.log()
    assert key not in live_server.log()
    # A key named in the path alone, for an inbox that does not exist.
    other = "segmentkey-" + "c4e1a9f07b"
    answer = requests.post(f"{live_server.url}/hooks/typo/secrettoken/{other}", timeout=5)
    assert answer.status_code == 404
    wait_for_log(live_server, "/hooks/typo/")
    assert 'path="/hooks/typo/secrettoken/[secrettoken:' in live_server.log()
    assert other not in live_server.log()


def test_a_request_path_cannot_forge_or_break_an_access_log_line(live_server):
    answer = raw_request(
        live_server,
        b"POST /hooks/default/v%0D%0Aat=access%20forged=1%00%5C%22q%C2%85%E2%80%A8 HTTP/1.1\r\n"
        b"Host: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    capture_id = capture_id_of(answer)
    wait_for_log(live_server, f"capture={capture_id} ")
    lines = [line for line in live_server.log().splitlines() if "at=access" in line]
    line = next(line for line in lines if f"capture={capture_id} " in line)
    # U+0085 and U+2028 are line breaks to some readers too. gunicorn hands the
    # path over as its UTF-8 bytes, one Latin-1 character each: the C1 ones
    # (\x85, \x80) are escaped, the rest written as they are.
    assert 'path="/hooks/default/v\\x0d\\x0aat=access forged=1\\x00\\\\\\"q' in line
    assert 'q\u00c2\\x85\u00e2\\x80\u00a8" status=200' in line
    assert not any(line.startswith("at=access forged") for line in lines)
    assert "\x00" not in live_server.log()
    # The capture keeps the path as sent.
    stored = requests.get(f"{live_server.url}/api/captures/{capture_id}", timeout=5).json()
    # (A NUL shown as U+2400 in the path column, which PostgreSQL's text cannot hold.)
    assert stored["path"] == '/hooks/default/v\r\nat=access forged=1\u2400\\"q\x85\u2028'
    assert stored["raw_path"].startswith("/hooks/default/v%0D%0Aat=access%20forged=1%00")


def test_the_server_log_never_shows_a_secret_in_a_user_agent_or_a_refused_request_line(
    live_server,
):
    key = "agentkey-" + "51c0d7e2a9"
    response = requests.get(
        f"{live_server.url}/hooks/default/ua?secrettoken={key}",
        headers={"User-Agent": f"agent-{key}"},
        timeout=5,
    )
    capture_id = response.json()["id"]
    # A method with a space: gunicorn refuses the request line itself and logs it,
    # query and all.
    answer = raw_request(
        live_server,
        b"BAD METHOD /hooks/default/x?secrettoken=" + key.encode() + b"&name=x HTTP/1.1\r\n"
        b"Host: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 400")
    wait_for_log(live_server, "Invalid request")
    log = live_server.log()
    line = next(line for line in log.splitlines() if f"capture={capture_id} " in line)
    assert 'agent="agent-[secrettoken:' in line
    assert "secrettoken=[hidden]&name=x" in log
    assert key not in log


def test_raw_utf8_in_a_url_is_captured_as_sent(live_server):
    # curl sends a pasted URL's non-ASCII characters as raw UTF-8 bytes.
    answer = raw_request(
        live_server,
        b"POST /hooks/default/caf\xc3\xa9/%C3%A9t\xc3\xa9?name=Jos\xc3\xa9&city=M%C3%BCnchen "
        b"HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 200")
    capture_id = capture_id_of(answer)
    stored = requests.get(f"{live_server.url}/api/captures/{capture_id}", timeout=5).json()
    assert stored["subpath"] == "café/été"
    assert stored["path"] == "/hooks/default/café/été"
    assert stored["raw_path"] == "/hooks/default/café/%C3%A9té"
    assert [(p["name"], p["value"]) for p in stored["params"]] == [
        ("name", "José"),
        ("city", "München"),
    ]
    # Bytes that are not UTF-8 are kept, percent-encoded, not replaced.
    answer = raw_request(
        live_server,
        b"GET /hooks/default/\xff/\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    capture_id = capture_id_of(answer)
    stored = requests.get(f"{live_server.url}/api/captures/{capture_id}", timeout=5).json()
    assert stored["raw_path"] == "/hooks/default/%FF/%FE"


def test_headers_keep_their_case_order_and_repeats(live_server):
    body = b"event=LEAD_CREATED"
    answer = raw_request(
        live_server,
        b"POST /hooks/default/lead HTTP/1.1\r\n"
        b"Host: 127.0.0.1\r\n"
        b"X-GitHub-Event: push\r\n"
        b"x-lower-case: yes\r\n"
        b"X-Repeat: one\r\n"
        b"X-Repeat: two\r\n"
        # WSGI cannot tell _ from -, so gunicorn keeps these from the app; the
        # capture still shows them (a proxy's SCRIPT_NAME is not taken either).
        b"X_Api_Key: abc\r\n"
        b"SCRIPT_NAME: /elsewhere\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n"
        b"Connection: close\r\n\r\n" + body,
    )
    assert answer.startswith(b"HTTP/1.1 200")
    capture_id = capture_id_of(answer)
    stored = requests.get(f"{live_server.url}/api/captures/{capture_id}", timeout=5).json()
    names = [name for name, _value in stored["headers"]]
    assert names[:4] == ["Host", "X-GitHub-Event", "x-lower-case", "X-Repeat"]
    assert ["X-Repeat", "one"] in stored["headers"]
    assert ["X-Repeat", "two"] in stored["headers"]
    assert names.count("X-Repeat") == 2
    assert ["X_Api_Key", "abc"] in stored["headers"]
    assert ["SCRIPT_NAME", "/elsewhere"] in stored["headers"]
    assert stored["path"] == "/hooks/default/lead"


def test_more_than_100_headers_are_refused_whichever_gunicorn_keeps(live_server):
    # Headers named with _ are kept from the app but captured: they count too.
    many = b"".join(b"X_H%d: v\r\n" % n for n in range(101))
    answer = raw_request(
        live_server,
        b"POST /hooks/default HTTP/1.1\r\nHost: x\r\n"
        + many
        + b"Content-Length: 0\r\nConnection: close\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 431") or answer.startswith(b"HTTP/1.1 400")


def test_chunked_body_is_captured_byte_for_byte(live_server):
    payload = bytes(range(256)) * 8
    chunks = b"".join(
        f"{len(payload[i : i + 700]):x}\r\n".encode() + payload[i : i + 700] + b"\r\n"
        for i in range(0, len(payload), 700)
    )
    answer = raw_request(
        live_server,
        b"PUT /hooks/default HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: application/octet-stream\r\nConnection: close\r\n\r\n"
        + chunks
        + b"0\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 200")
    capture_id = capture_id_of(answer)
    stored = requests.get(f"{live_server.url}/api/captures/{capture_id}", timeout=5).json()
    assert base64.b64decode(stored["body_base64"]) == payload


def test_chunked_trailer_fields_are_kept_after_the_headers_with_a_note(live_server):
    key = "trailerkey-" + "0c9b7d1e3f"
    body = f"event=LEAD_CREATED&secrettoken={key}".encode()
    answer = raw_request(
        live_server,
        b"POST /hooks/default/t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n\r\n"
        + f"{len(body):x}\r\n".encode()
        + body
        + b"\r\n0\r\nX-Body-Sig: sha256=abc123\r\nx-echo: "
        + key.encode()
        + b"\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 200")
    capture_id = capture_id_of(answer)
    stored = requests.get(f"{live_server.url}/api/captures/{capture_id}", timeout=5).json()
    assert stored["headers"][-2] == ["X-Body-Sig", "sha256=abc123"]
    name, value = stored["headers"][-1]
    assert name == "x-echo" and value.startswith("[secrettoken:")
    assert (
        "2 trailer field(s) came after the chunked body (X-Body-Sig, x-echo)"
        in (stored["notes"]["trailers"])
    )
    assert key not in str(stored)


def _total_captures(server) -> int:
    return requests.get(f"{server.url}/api/inboxes/default/stats", timeout=5).json()["total"]


@pytest.mark.parametrize(
    ("sent", "message"),
    [
        (
            b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
            "The chunked body is malformed (InvalidChunkSize)",
        ),
        (
            b"Transfer-Encoding: chunked\r\n\r\n10\r\nabc",
            "The connection ended before the whole body arrived",
        ),
        (
            b"Content-Length: 20\r\n\r\nevent=LEAD_CREATED",
            "The body ended after 18 of the 20 bytes its Content-Length announced",
        ),
    ],
    ids=["bad chunk size", "chunked body cut off", "shorter than Content-Length"],
)
def test_a_body_that_cannot_be_read_whole_is_a_400_and_nothing_is_stored(
    live_server, sent, message
):
    before = _total_captures(live_server)
    answer = raw_request(
        live_server,
        b"POST /hooks/default/cut HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n" + sent,
        end_sending=True,
    )
    assert answer.startswith(b"HTTP/1.1 400"), answer
    assert message.encode() in answer
    assert b"nothing was stored" in answer
    assert _total_captures(live_server) == before
    assert "Traceback" not in live_server.log()


def test_oversized_body_is_refused_with_413(live_server):
    too_big = b"x" * (10 * 1024 * 1024 + 1)
    response = requests.post(f"{live_server.url}/hooks/default", data=too_big, timeout=30)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_entity_too_large"


def test_a_long_get_query_is_captured_and_a_request_line_past_the_limit_is_414(live_server):
    # Some senders put a whole delivery in a GET query string.
    query = "event=LEAD_CREATED&note=" + "x" * 6000
    response = requests.get(f"{live_server.url}/hooks/default/long?{query}", timeout=10)
    assert response.status_code == 200
    stored = requests.get(f"{live_server.url}/api/captures/{response.json()['id']}", timeout=5)
    assert stored.json()["query_string"] == query
    too_long = requests.get(f"{live_server.url}/hooks/default?a={'x' * 8200}", timeout=10)
    assert too_long.status_code == 414


def test_default_inbox_and_health_endpoints(live_server):
    assert requests.get(f"{live_server.url}/healthz", timeout=5).json() == {"ok": True}
    assert requests.get(f"{live_server.url}/readyz", timeout=5).json() == {"ok": True}
    assert requests.get(f"{live_server.url}/hooks/default", timeout=5).status_code == 200


def metric(text: str, name: str, *labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(label in line for label in labels):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_add_up_across_workers(live_server):
    def scrape():
        return requests.get(f"{live_server.url}/metrics", timeout=5).text

    lead = ('event_type="LEAD_CREATED"', 'inbox="default"')
    before = scrape()
    for _ in range(12):
        # A new connection each time spreads the deliveries over both workers.
        requests.post(f"{live_server.url}/hooks/default/m", data={"event": "LEAD_CREATED"})
    requests.post(f"{live_server.url}/hooks/no-such-inbox", timeout=5)
    after = scrape()
    assert (
        metric(after, "receiver_captures_total", *lead)
        - metric(before, "receiver_captures_total", *lead)
        == 12
    )
    unknown = 'reason="unknown_inbox"'
    assert (
        metric(after, "receiver_rejected_requests_total", unknown)
        - metric(before, "receiver_rejected_requests_total", unknown)
        == 1
    )
    assert metric(after, "receiver_request_seconds_count", 'area="hooks"') >= 13


def test_graceful_shutdown_finishes_captures_in_flight(tmp_path):
    """SIGTERM while a delivery is being answered: it still gets its 200 and is stored."""
    server = LiveServer(ROOT, tmp_path, env={"RECEIVER_WORKERS": "1"})
    try:
        requests.patch(
            f"{server.url}/api/inboxes/default", json={"response_delay_ms": 1500}, timeout=5
        )
        outcome = {}

        def deliver():
            outcome["response"] = requests.post(
                f"{server.url}/hooks/default", data={"event": "LEAD_CREATED"}, timeout=30
            )

        sender = threading.Thread(target=deliver)
        sender.start()
        time.sleep(0.5)  # the capture is stored; its answer is being delayed
        server.process.terminate()
        sender.join()
        server.process.wait(timeout=30)
    finally:
        server.stop()
    assert outcome["response"].status_code == 200
    capture_id = outcome["response"].json()["id"]
    with sqlite3.connect(server.database) as conn:
        stored = conn.execute("SELECT count(*) FROM capture WHERE id = ?", (capture_id,))
        assert stored.fetchone()[0] == 1


def test_a_metrics_folder_given_in_the_environment_keeps_everything_but_its_samples(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "notes.txt").write_text("someone else's")
    (shared / "stale_counter_123.db").write_bytes(b"from an earlier run")
    server = LiveServer(ROOT, tmp_path, env={"PROMETHEUS_MULTIPROC_DIR": str(shared)})
    try:
        assert not (shared / "stale_counter_123.db").exists()
        assert requests.post(f"{server.url}/hooks/default", timeout=10).status_code == 200
        assert "receiver_captures_total" in requests.get(f"{server.url}/metrics", timeout=10).text
    finally:
        server.stop()
    assert (shared / "notes.txt").read_text() == "someone else's"
    assert not list(shared.glob("*.db"))


def _stored(server, answer: bytes) -> dict:
    assert answer.startswith(b"HTTP/1.1 200"), answer
    capture_id = capture_id_of(answer)
    return requests.get(f"{server.url}/api/captures/{capture_id}", timeout=5).json()


HASH_NOTE = "The request target held a '#'"


def test_a_hash_in_the_request_target_is_kept_as_sent(live_server):
    # `#` may not be sent in a target, but senders do (unescaped colours, anchors):
    # it is an ordinary character, not the start of a fragment to drop.
    end = b" HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    answer = raw_request(live_server, b"POST /hooks/default/colors?color=#ff0000&size=2" + end)
    stored = _stored(live_server, answer)
    assert stored["path"] == "/hooks/default/colors"
    assert stored["query_string"] == "color=#ff0000&size=2"
    assert [(p["name"], p["value"]) for p in stored["params"]] == [
        ("color", "#ff0000"),
        ("size", "2"),
    ]
    assert stored["notes"]["target"].startswith(HASH_NOTE)

    stored = _stored(live_server, raw_request(live_server, b"GET /hooks/default/a#b/c?x=1" + end))
    assert stored["path"] == "/hooks/default/a#b/c"
    assert stored["subpath"] == "a#b/c"
    assert stored["raw_path"] == "/hooks/default/a#b/c"
    assert stored["query_string"] == "x=1"
    assert stored["notes"]["target"].startswith(HASH_NOTE)

    # Absolute-form, with percent-encoding and raw UTF-8 read as without a `#`.
    stored = _stored(
        live_server,
        raw_request(
            live_server, b"GET http://x/hooks/default/caf\xc3\xa9#%C3%A9?n=Jos%C3%A9#1" + end
        ),
    )
    assert stored["path"] == "/hooks/default/café#é"
    assert stored["subpath"] == "café#é"
    assert stored["raw_path"] == "/hooks/default/café#%C3%A9"
    assert stored["query_string"] == "n=Jos%C3%A9#1"
    assert [(p["name"], p["value"]) for p in stored["params"]] == [("n", "José#1")]

    stored = _stored(live_server, raw_request(live_server, b"GET /hooks/default/plain?x=1" + end))
    assert "target" not in stored["notes"]


def test_a_key_after_a_hash_in_the_query_is_masked_everywhere(live_server):
    key = "hashkey-" + "5e1a9c0b77"
    answer = raw_request(
        live_server,
        f"POST /hooks/default/k?a=#&secrettoken={key} HTTP/1.1\r\nHost: x\r\n"
        "Content-Length: 0\r\nConnection: close\r\n\r\n".encode(),
    )
    stored = _stored(live_server, answer)
    assert stored["query_string"].startswith("a=#&secrettoken=[secrettoken:")
    assert [p["name"] for p in stored["params"]] == ["a", "secrettoken"]
    assert stored["params"][0]["value"] == "#"
    assert key not in str(stored)
    wait_for_log(live_server, f"capture={stored['id']} ")
    assert f"capture={stored['id']} " in live_server.log()
    assert key not in live_server.log()


def test_a_websocket_upgrade_request_is_captured_not_switched(live_server):
    answer = raw_request(
        live_server,
        b"POST /hooks/default/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nContent-Length: 2\r\n\r\nhi",
        end_sending=True,
    )
    head = answer.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nUpgrade:" not in head
    stored = _stored(live_server, answer)
    assert stored["subpath"] == "ws"
    assert stored["headers"] == [
        ["Host", "x"],
        ["Upgrade", "websocket"],
        ["Connection", "Upgrade"],
        ["Content-Length", "2"],
    ]
    assert base64.b64decode(stored["body_base64"]) == b"hi"


def test_a_body_gzipped_as_a_transfer_coding_is_read_and_its_key_masked(live_server):
    key = "tekey-" + "8d1f0c6a2b"
    packed = gzip.compress(f"event=LEAD_CREATED&secrettoken={key}&email=a@example.com".encode())
    answer = raw_request(
        live_server,
        b"POST /hooks/default/te HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Transfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n"
        + b"%x\r\n" % len(packed)
        + packed
        + b"\r\n0\r\n\r\n",
    )
    stored = _stored(live_server, answer)
    assert ["event", "LEAD_CREATED"] in [[p["name"], p["value"]] for p in stored["params"]]
    assert stored["event_type"] == "LEAD_CREATED"
    assert "Transfer-Encoding gzip" in stored["notes"]["transfer"]
    body = base64.b64decode(stored["body_base64"])
    assert key.encode() not in gzip.decompress(body)
    assert key not in str(stored)


@pytest.mark.parametrize(
    "target",
    [
        b"/hooks/default/secrettoken/{key}\x01",
        b"/hooks/default?data[secrettoken]={key}\x01",
        b"/hooks/default?secret%74oken={key}\x01",
        b'/hooks/default?d={{"secrettoken":"{key}"}}\x01',
    ],
)
def test_a_refused_request_line_is_logged_without_its_key_in_any_form(live_server, target):
    key = "refusedkey-" + "7f3b91c2d4"
    answer = raw_request(
        live_server,
        b"GET "
        + target.replace(b"{key}", key.encode()).replace(b"{{", b"{").replace(b"}}", b"}")
        + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 400")
    wait_for_log(live_server, "[hidden]")
    assert "[hidden]" in live_server.log()
    assert key not in live_server.log()


def test_behind_a_proxy_path_prefix_the_addresses_it_gives_carry_it(tmp_path):
    server = LiveServer(ROOT, tmp_path, env={"RECEIVER_TRUSTED_PROXIES": "1"})
    # What a proxy serving the receiver at https://localhost/recv/ adds.
    proxied = {
        "X-Forwarded-For": "127.0.0.1",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "localhost",
        "X-Forwarded-Prefix": "/recv",
    }
    session = requests.Session()
    session.headers.update(proxied)
    try:
        page = session.get(f"{server.url}/inboxes/default", timeout=10).text
        token = re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)
        # Served over HTTPS (the proxy says so), the session cookie is Secure: a
        # browser sends it back to the proxy over HTTPS; this test reaches the
        # server over plain HTTP, so sends it itself.
        assert all(cookie.secure for cookie in session.cookies)
        session.headers["Cookie"] = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
        # "Send a test event" goes straight to this server, without the prefix.
        sent = session.post(
            f"{server.url}/inboxes/default/send-test",
            data={"event": "LEAD_CREATED", "encoding": "form", "secret_case": "none"},
            headers={"X-CSRFToken": token, "HX-Request": "true", "Referer": "https://localhost/"},
            timeout=10,
        )
        capture_id = int(re.search(r"capture #(\d+)", sent.text).group(1))
        detail = session.get(f"{server.url}/inboxes/default/captures/{capture_id}", timeout=10)
        assert "https://localhost/recv/hooks/default/LEAD_CREATED" in detail.text  # Copy as cURL
        har = session.get(f"{server.url}/api/inboxes/default/export?format=har", timeout=10)
        urls = [entry["request"]["url"] for entry in har.json()["log"]["entries"]]
        assert urls == ["https://localhost/recv/hooks/default/LEAD_CREATED"]
        document = session.get(f"{server.url}/api/openapi.json", timeout=10).json()
        assert document["servers"] == [{"url": "/recv"}]
    finally:
        server.stop()


def test_the_instance_folder_can_be_put_elsewhere(tmp_path):
    data = tmp_path / "data"
    # No DATABASE_URL and no SECRET_KEY: both default to files in the instance folder.
    env = {"RECEIVER_INSTANCE_PATH": str(data), "DATABASE_URL": "", "SECRET_KEY": ""}
    server = LiveServer(ROOT, tmp_path, env=env)
    try:
        assert requests.post(f"{server.url}/hooks/default", timeout=10).status_code == 200
    finally:
        server.stop()
    assert (data / "secret_key").is_file()
    with sqlite3.connect(data / "receiver.sqlite3") as con:
        assert con.execute("SELECT count(*) FROM capture").fetchone() == (1,)


# --- Copy as cURL, run as a pasted command runs ---


def copied_as_curl(server, capture_id: int) -> str:
    """The command the capture's page shows under "Copy as cURL"."""
    page = requests.get(f"{server.url}/inboxes/default/captures/{capture_id}", timeout=60).text
    shown = re.search(r'<pre class="curl-command"[^>]*>(.*?)</pre>', page, re.S).group(1)
    return html.unescape(shown)


def replayed_with_curl(server, capture_id: int) -> int:
    """Runs the copied command in bash and returns the new capture's id. Read from
    standard input, as a pasted command is: as `bash -c`'s argument a command for
    a long body would itself be over the kernel's limit."""
    command = copied_as_curl(server, capture_id) + " --silent --show-error --max-time 60"
    # A large body's command reads the raw body download, saved beside it as the page says.
    body_file = re.search(r"--data-binary @(capture-\S+)", command)
    with tempfile.TemporaryDirectory() as folder:
        if body_file:
            raw = requests.get(f"{server.url}/api/captures/{capture_id}/raw", timeout=60)
            assert body_file.group(1) in raw.headers["Content-Disposition"]
            with open(os.path.join(folder, body_file.group(1)), "wb") as saved:
                saved.write(raw.content)
        result = subprocess.run(
            ["bash"], input=command.encode(), capture_output=True, timeout=120, cwd=folder
        )
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    return requests.models.complexjson.loads(result.stdout)["id"]


def assert_replayed_as_captured(server, original_id: int) -> None:
    replay_id = replayed_with_curl(server, original_id)
    original, replay = (
        requests.get(f"{server.url}/api/captures/{n}", timeout=60).json()
        for n in (original_id, replay_id)
    )
    for key in ("method", "raw_path", "query_string", "content_type", "body_base64"):
        assert replay[key] == original[key], key

    def headers(capture: dict) -> list:
        # Connection is about the one connection: not replayed, and curl sends none.
        return sorted((n, v) for n, v in capture["headers"] if n.lower() != "connection")

    assert headers(replay) == headers(original)


def send_raw(server, body: bytes, content_type: str, *extra: bytes) -> int:
    """A POST with only the headers given, and the Host that curl sends."""
    lines = [
        b"POST /hooks/default/copied HTTP/1.1",
        b"Host: 127.0.0.1:%d" % server.port,
        b"Content-Type: " + content_type.encode(),
        *extra,
        b"Content-Length: %d" % len(body),
        b"Connection: close",
    ]
    answer = raw_request(server, b"".join(line + b"\r\n" for line in lines) + b"\r\n" + body)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
    return capture_id_of(answer)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        # Just over Linux's 128 KiB for one argument (MAX_ARG_STRLEN).
        (b"a" * 200 * 1024, "text/plain"),
        # The largest body written into the command, all of it characters that bash
        # and printf treat specially.
        ((b"'\"%s%%\\n\\x41 $(id) `id` " * 256 * 1024)[: 256 * 1024], "text/plain"),
        # The largest body taken: the command reads the raw body download.
        ((bytes(range(256)) * 40 * 1024)[: 10 * 1024 * 1024], "application/octet-stream"),
    ],
    ids=["text-200KiB", "text-256KiB-specials", "binary-10MiB"],
)
def test_copy_as_curl_replays_a_long_body_byte_for_byte(live_server, body, content_type):
    assert_replayed_as_captured(live_server, send_raw(live_server, body, content_type))


def test_copy_as_curl_replays_a_target_holding_a_hash(live_server):
    # Kept as sent (with a note); curl alone would cut the target at the `#`.
    request = (
        b"POST /hooks/default/a#b?x=1#2&y=%%2B HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
        b"Content-Type: text/plain\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx"
    )
    answer = raw_request(live_server, request % live_server.port)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
    capture_id = capture_id_of(answer)
    stored = requests.get(f"{live_server.url}/api/captures/{capture_id}", timeout=10).json()
    assert (stored["raw_path"], stored["query_string"]) == ("/hooks/default/a#b", "x=1#2&y=%2B")
    assert_replayed_as_captured(live_server, capture_id)


def test_copy_as_curl_replays_an_empty_header_value(live_server):
    capture_id = send_raw(live_server, b"x", "text/plain", b"X-Empty:", b"X-After: 1")
    stored = requests.get(f"{live_server.url}/api/captures/{capture_id}", timeout=10).json()
    assert ["X-Empty", ""] in stored["headers"]
    assert_replayed_as_captured(live_server, capture_id)


def test_copy_as_curl_keeps_curl_from_adding_expect_to_a_large_body(live_server):
    # Over 1 MiB, curl would send `Expect: 100-continue`; the sender here did not.
    body = (bytes(range(256)) * 4097)[: 1024 * 1024 + 1]
    assert_replayed_as_captured(
        live_server, send_raw(live_server, body, "application/octet-stream")
    )
