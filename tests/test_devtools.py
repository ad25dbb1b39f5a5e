"""Developer tools: the test-event sender, replay, forwarding, and the outbound (SSRF) rules.

Outbound requests in these tests only ever reach servers on loopback: a guard below
fails any test whose process tries to connect anywhere else.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests
from conftest import ROOT, SECRET_KEY

from receiver import outbound, relay, sender
from receiver.catalog import EVENTS
from receiver.extensions import db
from receiver.models import Capture, Inbox, RelayAttempt
from receiver.present import NOT_REPLAYED
from receiver.storage import utcnow

KEY = "qrp_live_8f2K9xYz3Lm7Qw1R"
# Survives no encoding unchanged: URL-special and JSON-special characters.
ODD_KEY = 'k3y/with+plus&amp=and "quote" \\ back'
ALLOW_LOOPBACK = ["127.0.0.0/8", "::1"]
ENABLED = {"RECEIVER_OUTBOUND_ENABLED": True, "RECEIVER_OUTBOUND_ALLOW": ALLOW_LOOPBACK}
ANYWHERE = {"RECEIVER_OUTBOUND_ENABLED": True, "RECEIVER_OUTBOUND_ALLOW": ["0.0.0.0/0", "::/0"]}
SOURCES = {"form": "post", "json": "json", "query": "get"}


# --- fixtures and helpers ---


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """No test may send traffic beyond this machine, whatever the code under test does."""
    connect = socket.socket.connect

    def guarded(self, address):
        if isinstance(address, tuple):
            ip = ipaddress.ip_address(address[0].split("%", 1)[0])
            assert ip.is_loopback, f"a test tried to connect to {address}"
        return connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture
def app_config():
    return {"RECEIVER_OUTBOUND_ENABLED": True}


@pytest.fixture
def app(app):
    yield app
    assert relay.drain(10), "forwarding did not finish"


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield


@pytest.fixture
def fast_retries(monkeypatch):
    monkeypatch.setattr(relay, "BACKOFF_SECONDS", [0.01, 0.01, 0.01, 0.01])


def add_secret(runner, secret=KEY, inbox="default"):
    result = runner.invoke(
        args=["inbox", "add-secret", inbox, "--label", "prod", "--secret", secret]
    )
    assert result.exit_code == 0, result.output


def deliver(client, delivery: sender.Delivery, path="/hooks/default", headers=None) -> int:
    response = client.post(
        delivery.url(path), data=delivery.body, headers={**delivery.headers, **(headers or {})}
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["id"]


def problems(document) -> list[dict]:
    return [f for f in document["findings"] if f["level"] in ("error", "warning")]


def set_forward_url(capture_id: int, url: str | None) -> None:
    capture = db.session.get(Capture, capture_id)
    db.session.get(Inbox, capture.inbox_id).forward_url = url
    db.session.commit()


def attempts_of(capture_id: int) -> list[RelayAttempt]:
    db.session.expire_all()
    return relay.attempts(capture_id)


def free_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Received:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for n, v in self.headers if n.lower() == name.lower()), None)


class Target:
    """A tiny HTTP server on loopback: records each request, answers from a script.

    Each answer is (status, headers, body) or a function of the request returning one;
    once the script is used up it answers 201 "created".
    """

    def __init__(self, answers=(), host="127.0.0.1"):
        self.requests: list[Received] = []
        self.answers = list(answers)
        target = self

        class Handler(BaseHTTPRequestHandler):
            def __getattr__(self, name):
                if name.startswith("do_"):
                    return self.answer
                raise AttributeError(name)

            def answer(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received = Received(self.command, self.path, list(self.headers.items()), body)
                target.requests.append(received)
                status, headers, reply = target.next_answer(received)
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_port}"
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def next_answer(self, received: Received):
        answer = self.answers.pop(0) if self.answers else (201, [], b"created")
        return answer(received) if callable(answer) else answer

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def target():
    server = Target()
    yield server
    server.stop()


# --- the test-event sender ---


@pytest.mark.parametrize("encoding", sender.ENCODINGS)
@pytest.mark.parametrize("event", list(EVENTS))
def test_generated_delivery_is_captured_clean_and_verified(client, runner, fetch, event, encoding):
    add_secret(runner)
    delivery = sender.build(event, secret=KEY, encoding=encoding)
    stored = fetch(deliver(client, delivery))

    assert stored["event_type"] == event
    assert problems(stored) == []
    assert stored["secret"]["verdict"] == "verified"
    received = {p["name"]: p for p in stored["params"]}
    assert {p.name for p in EVENTS[event].all_params} <= set(received)
    assert {p["source"] for p in stored["params"]} == {SOURCES[encoding]}
    assert KEY not in json.dumps(stored)


def test_each_encoding_is_sent_as_the_platform_would():
    form = sender.build("LEAD_CREATED", secret=KEY, encoding="form")
    assert form.headers == {"Content-Type": "application/x-www-form-urlencoded"}
    assert parse_qs(form.body.decode())["email"] and form.query == ""

    body = json.loads(sender.build("LEAD_CREATED", secret=KEY, encoding="json").body)
    assert body["event"] == "LEAD_CREATED" and body["secrettoken"] == KEY

    query = sender.build("LEAD_CREATED", secret=KEY, encoding="query")
    assert query.body == b"" and query.headers == {}
    assert query.url("http://x/hooks/a?k=1").startswith("http://x/hooks/a?k=1&event=LEAD_CREATED")


@pytest.mark.parametrize(
    ("secret", "verdict"),
    [(KEY, "verified"), (sender.wrong_secret(), "mismatch"), (None, "missing")],
)
@pytest.mark.parametrize("encoding", sender.ENCODINGS)
def test_secret_choice_gives_the_matching_verdict(client, runner, fetch, secret, verdict, encoding):
    add_secret(runner)
    delivery = sender.build("QR_CODE_SCANNED", secret=secret, encoding=encoding)
    stored = fetch(deliver(client, delivery))
    assert stored["secret"]["verdict"] == verdict
    if secret is None:
        assert "secrettoken" not in {p["name"] for p in stored["params"]}


def test_wrong_secret_is_random():
    assert sender.wrong_secret() != sender.wrong_secret()


def test_set_replaces_or_adds_parameters(client, fetch):
    delivery = sender.build(
        "QR_CODE_SCANNED",
        secret=KEY,
        settings=[("country", "FR"), ("campaign", "spring")],
    )
    stored = fetch(deliver(client, delivery))
    values = [(p["name"], p["value"]) for p in stored["params"]]
    assert ("country", "FR") in values and ("country", "DE") not in values
    assert ("campaign", "spring") in values
    assert any(f["code"] == "extra_param" for f in stored["findings"])


# --- send-event on the command line ---


def live_cli(server, *args: str) -> str:
    """The project's CLI against the live server's database."""
    flask = os.path.join(os.path.dirname(sys.executable), "flask")
    result = subprocess.run(
        [flask, "--app", "wsgi", *args],
        cwd=ROOT,
        env={
            **os.environ,
            "DATABASE_URL": f"sqlite:///{server.database}",
            "SECRET_KEY": SECRET_KEY,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def live_inbox(live_server):
    live_cli(live_server, "inbox", "create", "devtools")
    live_cli(live_server, "inbox", "add-secret", "devtools", "--label", "prod", "--secret", KEY)
    return f"{live_server.url}/hooks/devtools"


def live_capture(live_server, capture_id: int) -> dict:
    return requests.get(f"{live_server.url}/api/captures/{capture_id}", timeout=5).json()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("flags", "verdict"),
    [
        (["--secret", KEY], "verified"),
        (["--wrong-secret"], "mismatch"),
        (["--no-secret"], "missing"),
    ],
)
def test_send_event_prints_status_latency_and_body(runner, live_server, live_inbox, flags, verdict):
    result = runner.invoke(
        args=["send-event", "voucher_redeemed", "--to", live_inbox, "--as", "json", *flags]
    )
    assert result.exit_code == 0, result.output
    status_line, body = result.stdout.splitlines()[:2]
    assert status_line.startswith("200 in ") and status_line.endswith(" ms")
    answer = json.loads(body)
    assert answer["ok"] is True

    stored = live_capture(live_server, answer["id"])
    assert stored["event_type"] == "VOUCHER_REDEEMED"
    assert stored["secret"]["verdict"] == verdict
    if verdict == "verified":
        assert problems(stored) == []


@pytest.mark.slow
def test_send_event_many_prints_a_summary(runner, live_server, live_inbox):
    before = requests.get(f"{live_server.url}/api/inboxes/devtools/captures", timeout=5).json()[
        "captures"
    ]
    result = runner.invoke(
        args=[
            "send-event",
            "QR_CODE_SCANNED",
            "--to",
            live_inbox,
            "--secret",
            KEY,
            "--as",
            "query",
            "--count",
            "5",
            "--concurrency",
            "2",
        ]
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"5 sent to {live_inbox}: 5 ok, 0 failed"
    assert "  status 200: 5" in lines
    latency = next(line for line in lines if line.startswith("Latency (ms): "))
    assert all(f"{name} " in latency for name in ("min", "median", "p95", "max"))

    after = requests.get(f"{live_server.url}/api/inboxes/devtools/captures", timeout=5).json()[
        "captures"
    ]
    new = after[: len(after) - len(before)]
    assert len(new) == 5
    assert {c["verdict"] for c in new} == {"verified"}
    assert {c["event_type"] for c in new} == {"QR_CODE_SCANNED"}


@pytest.mark.slow
def test_send_event_reports_failures_and_exits_non_zero(runner, live_server):
    result = runner.invoke(
        args=["send-event", "JOB_FINISHED", "--to", f"{live_server.url}/hooks/no-such-inbox"]
    )
    assert result.exit_code == 1
    assert result.stdout.startswith("404 in ")
    assert "unknown_inbox" in result.stdout


URL = "http://127.0.0.1:9/hooks/default"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["NO_SUCH_EVENT", "--to", URL], "Valid events: QR_CODE_CREATED, QR_CODE_SCANNED"),
        (["LEAD_CREATED", "--to", URL, "--set", "country"], "is not NAME=VALUE"),
        (["LEAD_CREATED", "--to", URL, "--set", "=x"], "is not NAME=VALUE"),
        (["LEAD_CREATED", "--to", URL, "--count", "0"], "--count"),
        (["LEAD_CREATED", "--to", URL, "--concurrency", "0"], "--concurrency"),
        (["LEAD_CREATED", "--to", URL, "--as", "xml"], "--as"),
        (
            ["LEAD_CREATED", "--to", URL, "--secret", KEY, "--no-secret"],
            "--secret and --no-secret cannot be used together",
        ),
        (
            ["LEAD_CREATED", "--to", URL, "--wrong-secret", "--no-secret"],
            "--wrong-secret and --no-secret cannot be used together",
        ),
        (["LEAD_CREATED", "--to", "ftp://example.com/x"], "is not an http:// or https:// URL"),
        (["LEAD_CREATED", "--to", "example.com/hooks"], "is not an http:// or https:// URL"),
        (["LEAD_CREATED"], "Missing option '--to'"),
    ],
)
def test_send_event_refuses_bad_arguments_clearly(runner, args, message):
    result = runner.invoke(args=["send-event", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_send_event_to_an_unreachable_url_fails_clearly(runner):
    url = f"http://127.0.0.1:{free_port()}/hooks/default"
    result = runner.invoke(args=["send-event", "LEAD_CREATED", "--to", url])
    assert result.exit_code == 1
    assert f"Could not reach {url}: Could not connect: Connection refused" in result.output
    assert "Traceback" not in result.output

    many = runner.invoke(args=["send-event", "LEAD_CREATED", "--to", url, "--count", "3"])
    assert many.exit_code == 1
    assert "0 ok, 3 failed" in many.output
    assert "error (3): Could not connect" in many.output


def test_summary_latencies():
    outcomes = [outbound.Outcome(200, latency_ms=float(ms)) for ms in range(1, 21)]
    outcomes.append(outbound.Outcome(None, latency_ms=5000.0, error="Timed out"))
    summary = sender.summarize(outcomes)
    assert (summary.sent, summary.ok, summary.failed) == (21, 20, 1)
    assert summary.latency_ms == {"min": 1.0, "median": 10.5, "p95": 19.0, "max": 20.0}


# --- replay ---

BINARY = bytes(range(256)) * 3 + b"\r\n\x00end"


def test_replay_sends_the_same_request_byte_for_byte(app, client, ctx, target):
    response = client.post(
        "/hooks/default/deep/path?x=1&y=%20z",
        data=BINARY,
        headers={"Content-Type": "application/octet-stream", "X-Custom": "kept"},
    )
    capture = db.session.get(Capture, response.get_json()["id"])

    attempt = relay.replay(capture, target.url + "/in", with_subpath=True)

    (received,) = target.requests
    assert received.method == "POST"
    assert received.path == "/in/deep/path?x=1&y=%20z"
    assert received.body == BINARY
    expected = [(n, v) for n, v in capture.header_list if n.lower() not in NOT_REPLAYED]
    assert [(n, v) for n, v in received.headers if n.lower() not in NOT_REPLAYED] == expected
    assert attempt.kind == "replay" and attempt.attempt == 1
    assert attempt.status == 201
    assert attempt.response_body == b"created"
    assert attempt.latency_ms > 0 and attempt.error is None
    assert ["Content-Length", "7"] in json.loads(attempt.response_headers)
    assert relay.attempts(capture.id) == [attempt]


def test_replay_sends_a_query_with_a_stray_percent_and_lower_case_escapes_as_sent(
    app, client, ctx, target
):
    query = "sig=abc%2bdef&bad=100%&pc=%2B%20&odd=%ZZ"
    response = client.get("/hooks/default/q?" + query)
    capture = db.session.get(Capture, response.get_json()["id"])
    relay.replay(capture, target.url + "/in", with_subpath=True)
    (received,) = target.requests
    assert received.path == "/in/q?" + query


def test_replay_sends_a_query_holding_a_hash_whole(app, client, ctx, target):
    # requests takes a `#` for a fragment's start and sent nothing after it.
    # As gunicorn hands over `GET /hooks/default/q?x=1#2&y=%2B` (see wire.py).
    response = client.get("/hooks/default/q", environ_overrides={"QUERY_STRING": "x=1#2&y=%2B"})
    capture = db.session.get(Capture, response.get_json()["id"])
    assert capture.query_string == b"x=1#2&y=%2B"
    relay.replay(capture, target.url + "/in", with_subpath=True)
    relay.replay(capture, target.url + "/in?t=1#frag")  # the target's fragment is not sent
    relay.replay(capture, target.url + "/dést")  # a path requests encodes itself
    assert [received.path for received in target.requests] == [
        "/in/q?x=1#2&y=%2B",
        "/in?t=1&x=1#2&y=%2B",
        "/d%C3%A9st?x=1#2&y=%2B",
    ]


def test_replay_without_subpath_keeps_the_query(app, client, ctx, target):
    response = client.put("/hooks/default/sub?a=1", data=b"x")
    capture = db.session.get(Capture, response.get_json()["id"])
    relay.replay(capture, target.url + "/base?t=2")
    (received,) = target.requests
    assert (received.method, received.path, received.body) == ("PUT", "/base?t=2&a=1", b"x")


def test_replay_response_body_is_kept_up_to_64_kib(app, client, ctx, target):
    target.answers.append((200, [], b"x" * 100_000))
    capture = db.session.get(Capture, client.post("/hooks/default").get_json()["id"])
    attempt = relay.replay(capture, target.url)
    assert attempt.response_body == b"x" * outbound.MAX_RESPONSE_BYTES
    assert relay.attempt_document(attempt)["response_body_truncated"] is True


@pytest.mark.parametrize("where", ["body", "headers"])
def test_an_answer_trickling_in_is_cut_at_the_attempts_timeout(app, ctx, where):
    # requests' timeout bounds each wait for bytes: a byte every half second
    # never trips it, in the body or in the status line and headers.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 60\r\n"

    def trickle():
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            pieces = [head + b"\r\n"] if where == "body" else [head]
            pieces += [b"x"] * 60 if where == "body" else [b"X-Slow: %d\r\n" % n for n in range(60)]
            for piece in pieces:
                try:
                    connection.sendall(piece)
                except OSError:
                    return
                if stop.wait(0.5):
                    return

    threading.Thread(target=trickle, daemon=True).start()
    try:
        started = time.monotonic()
        outcome = outbound.send(
            "POST", f"http://127.0.0.1:{listener.getsockname()[1]}/", [], b"a", app.config, 1.5
        )
        took = time.monotonic() - started
    finally:
        stop.set()
        listener.close()
    assert took < 5, f"the attempt took {took:.1f} s against 1.5 s allowed"
    # Cut where it stood (headers end at the cut), and said so.
    assert "the 2 s allowed" in outcome.error  # 1.5 s, rounded


def test_an_attempt_that_was_answered_but_went_wrong_shows_why(app, client, ctx):
    capture_id = client.post("/hooks/default", data=b"x").get_json()["id"]
    late = "The answer took longer than the 10 s allowed; its body is cut short."
    outcome = outbound.Outcome(200, error=late, latency_ms=10_000)
    relay._record(capture_id, relay.FORWARD, "http://127.0.0.1:9/", 1, utcnow(), outcome)
    html = client.get(f"/inboxes/default/captures/{capture_id}").get_data(as_text=True)
    assert ">200</span>" in html and late in html


def test_an_attempt_for_a_capture_deleted_meanwhile_is_dropped_quietly(app, client, ctx):
    capture_id = client.post("/hooks/default", data=b"x").get_json()["id"]
    assert client.delete(f"/api/captures/{capture_id}").status_code in (200, 204)
    outcome = outbound.Outcome(201, latency_ms=5)
    relay._record(capture_id, relay.FORWARD, "http://127.0.0.1:9/", 1, utcnow(), outcome)
    assert attempts_of(capture_id) == []


def echo(received: Received):
    """Answers with everything it was sent, as a careless target might."""
    headers = [("X-Echo", received.header("X-Api-Key") or ""), ("X-Path", received.path)]
    return 200, headers, received.body


@pytest.mark.parametrize("encoding", sender.ENCODINGS)
def test_replay_with_the_typed_key_restores_it_for_that_request_only(
    app, client, ctx, target, encoding
):
    delivery = sender.build("LEAD_CREATED", secret=ODD_KEY, encoding=encoding)
    capture_id = deliver(client, delivery, headers={"X-Api-Key": ODD_KEY})
    capture = db.session.get(Capture, capture_id)
    stored = (capture.body, capture.query_string, capture.headers)
    assert all(ODD_KEY not in value for _name, value in capture.header_list)
    target.answers.append(echo)

    attempt = relay.replay(capture, target.url, secret=ODD_KEY)

    (received,) = target.requests
    assert received.header("X-Api-Key") == ODD_KEY
    if encoding == "form":
        assert parse_qs(received.body.decode())["secrettoken"] == [ODD_KEY]
    elif encoding == "json":
        assert json.loads(received.body)["secrettoken"] == ODD_KEY
    else:
        assert parse_qs(urlsplit(received.path).query)["secrettoken"] == [ODD_KEY]
    assert attempt.status == 200

    db.session.expire_all()
    capture = db.session.get(Capture, capture_id)
    assert (capture.body, capture.query_string, capture.headers) == stored
    (row,) = db.session.execute(db.select(RelayAttempt)).scalars()
    recorded = [row.target, row.error or "", row.response_body.decode("latin-1")]
    recorded += [text for pair in json.loads(row.response_headers) for text in pair]
    assert "[secrettoken:" in "".join(recorded)  # the target did echo the key
    for spelling in (ODD_KEY, quote(ODD_KEY, safe=""), json.dumps(ODD_KEY)[1:-1]):
        assert all(spelling not in text for text in recorded)


def test_replay_with_a_key_changes_nothing_else(app, client, ctx, target):
    delivery = sender.build("QR_CODE_SCANNED", secret=KEY, encoding="form")
    capture = db.session.get(Capture, deliver(client, delivery))
    relay.replay(capture, target.url, secret=KEY)
    (received,) = target.requests
    assert received.body == delivery.body


@pytest.mark.parametrize("codec", ["utf-16", "utf-32-be"])
def test_replay_restores_the_key_in_a_utf16_or_utf32_json_body(app, client, ctx, target, codec):
    document = {"event": "LEAD_CREATED", "secrettoken": ODD_KEY, "name": "Zoë"}
    sent = json.dumps(document, ensure_ascii=False).encode(codec)
    response = client.post("/hooks/default", data=sent, content_type="application/json")
    capture = db.session.get(Capture, response.get_json()["id"])
    assert capture.body != sent  # stored masked, in its own encoding
    relay.replay(capture, target.url, secret=ODD_KEY)
    (received,) = target.requests
    assert received.body == sent


def test_replay_refuses_a_key_with_control_characters(app, client, ctx, target):
    capture = db.session.get(Capture, client.post("/hooks/default").get_json()["id"])
    with pytest.raises(ValueError, match="control characters"):
        relay.replay(capture, target.url, secret="a\r\nX-Injected: 1")
    assert target.requests == []


def test_replay_command(app, client, runner, target):
    capture_id = client.post("/hooks/default/x", data=b"hello").get_json()["id"]
    result = runner.invoke(args=["replay", str(capture_id), "--to", target.url, "--with-subpath"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"201 from {target.url}/x in ")
    assert "created" in result.output
    assert target.requests[0].body == b"hello"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--to", "http://192.0.2.7/hook"],
            "Not sent: 192.0.2.7 is not in RECEIVER_OUTBOUND_ALLOW",
        ),
        (["--to", "file:///etc/passwd"], "Not sent: Only http and https URLs"),
    ],
)
def test_replay_command_shows_why_it_refused(app, client, runner, args, message):
    capture_id = client.post("/hooks/default").get_json()["id"]
    result = runner.invoke(args=["replay", str(capture_id), *args])
    assert result.exit_code == 1
    assert message in result.output


def test_replay_command_unknown_capture(runner, target):
    result = runner.invoke(args=["replay", "999999", "--to", target.url])
    assert result.exit_code == 1
    assert "No capture with id 999999." in result.output


@pytest.mark.parametrize("app_config", [{"RECEIVER_OUTBOUND_ENABLED": False}])
def test_replay_is_refused_while_outbound_is_disabled(app, client, ctx, target):
    capture = db.session.get(Capture, client.post("/hooks/default").get_json()["id"])
    with pytest.raises(outbound.Refused, match="RECEIVER_OUTBOUND_ENABLED"):
        relay.replay(capture, target.url)
    assert target.requests == []
    assert relay.attempts(capture.id) == []


# --- forwarding ---


def test_forwarding_retries_until_the_target_accepts(app, client, ctx, target, fast_retries):
    target.answers += [(500, [], b"down"), (500, [], b"still down"), (200, [], b"thanks")]
    capture_id = client.post(
        "/hooks/default/scan?q=1", data=b"event=QR_CODE_SCANNED", content_type="text/plain"
    ).get_json()["id"]
    set_forward_url(capture_id, target.url + "/fwd")

    relay.forward_later(app, capture_id)
    assert relay.drain(10)

    rows = attempts_of(capture_id)
    assert [(r.kind, r.attempt, r.status) for r in rows] == [
        ("forward", 1, 500),
        ("forward", 2, 500),
        ("forward", 3, 200),
    ]
    assert rows[-1].response_body == b"thanks"
    assert rows[0].target == target.url + "/fwd/scan?q=1"
    assert len(target.requests) == 3
    for received in target.requests:
        assert received.header("X-Receiver-Forwarded") == "1"
        assert (received.method, received.path) == ("POST", "/fwd/scan?q=1")
        assert received.body == b"event=QR_CODE_SCANNED"


def test_a_delivery_to_a_forwarding_inbox_is_forwarded_with_its_key(
    app, client, runner, ctx, target, fast_retries
):
    """End to end: the capture endpoint hands the new capture to the forwarder,
    which sends it with the key the delivery carried (kept in memory only)."""
    add_secret(runner)
    target.answers += [(503, [], b"busy"), (200, [], b"ok")]
    client.patch("/api/inboxes/default", json={"forward_url": target.url + "/webhook"})
    delivery = sender.build("LEAD_CREATED", secret=KEY, encoding="form")
    response = client.post(
        delivery.url("/hooks/default"), data=delivery.body, headers=delivery.headers
    )
    assert response.status_code == 200  # answered without waiting for the forward
    capture_id = response.get_json()["id"]
    assert relay.drain(10)
    assert [(r.attempt, r.status) for r in attempts_of(capture_id)] == [(1, 503), (2, 200)]
    received = target.requests[-1]
    assert received.path == "/webhook"
    assert received.body == delivery.body  # the real key, for the developer's own check
    assert KEY not in json.dumps(client.get(f"/api/captures/{capture_id}/attempts").get_json())


@pytest.mark.parametrize(
    "app_config", [{"RECEIVER_OUTBOUND_ENABLED": True, "RECEIVER_FORWARD_RETRIES": 2}]
)
def test_forwarding_gives_up_after_the_configured_retries(app, client, ctx, fast_retries):
    capture_id = client.post("/hooks/default").get_json()["id"]
    set_forward_url(capture_id, f"http://127.0.0.1:{free_port()}/down")
    relay.forward_later(app, capture_id)
    assert relay.drain(10)
    rows = attempts_of(capture_id)
    assert [r.attempt for r in rows] == [1, 2, 3]
    assert all(r.status is None and r.error.startswith("Could not connect") for r in rows)


def test_forwarding_does_not_retry_what_the_target_refused(app, client, ctx, target, fast_retries):
    target.answers.append((400, [], b"bad"))
    capture_id = client.post("/hooks/default").get_json()["id"]
    set_forward_url(capture_id, target.url)
    relay.forward_later(app, capture_id)
    assert relay.drain(10)
    assert [r.status for r in attempts_of(capture_id)] == [400]


def test_a_forwarded_capture_is_not_forwarded_again(app, client, ctx, target):
    capture_id = client.post(
        "/hooks/default", data=b"x", headers={"X-Receiver-Forwarded": "1"}
    ).get_json()["id"]
    set_forward_url(capture_id, target.url)
    relay.forward_later(app, capture_id)
    assert relay.drain(10)
    assert target.requests == []
    # Said on the capture, not silently skipped.
    (row,) = attempts_of(capture_id)
    assert (row.status, row.error) == (None, relay.NOT_AGAIN)


def test_a_password_in_a_forward_url_is_not_recorded(app, client, ctx, target):
    capture_id = client.post("/hooks/default", data=b"x").get_json()["id"]
    set_forward_url(capture_id, target.url.replace("//", "//hook:s3cr3t@") + "/in")
    relay.forward_later(app, capture_id)
    assert relay.drain(10)
    (row,) = attempts_of(capture_id)
    assert row.status == 201
    assert "s3cr3t" not in row.target and row.target.startswith("http://hook:***@127.0.0.1:")
    assert target.requests[0].header("Authorization").startswith("Basic ")  # still sent


def test_a_slow_forward_target_does_not_hold_back_other_forwards(app, client, ctx, target):
    arrived: dict[str, float] = {}
    release = threading.Event()

    def answer(received: Received):
        arrived[received.path] = time.monotonic()
        if received.path.startswith("/slow"):
            release.wait(10)  # answers only once the fast forward has arrived
        return (200, [], b"ok")

    target.answers += [answer] * 3
    slow = [client.post("/hooks/default", data=b"s").get_json()["id"] for _ in range(2)]
    fast = client.post("/hooks/default", data=b"f").get_json()["id"]
    for capture_id, path in [(slow[0], "/slow1"), (slow[1], "/slow2"), (fast, "/fast")]:
        set_forward_url(capture_id, target.url + path)
        relay.forward_later(app, capture_id)
    deadline = time.monotonic() + 5
    while "/fast" not in arrived and time.monotonic() < deadline:
        time.sleep(0.02)
    release.set()
    assert "/fast" in arrived, "the fast forward waited behind the slow ones"
    assert relay.drain(10)
    assert [r.status for r in attempts_of(fast)] == [200]


def test_forwards_still_queued_when_a_worker_stops_are_recorded_as_not_sent(
    app, client, ctx, target, monkeypatch
):
    monkeypatch.setattr(relay, "_worker", None)  # a forwarder of its own, stopped below
    capture_id = client.post("/hooks/default/sub", data=b"x").get_json()["id"]
    set_forward_url(capture_id, target.url + "/in")
    # A retry due in a minute: still queued when the worker stops.
    relay._forwarder().put((app, capture_id, 2, ([], None)), delay=60)
    assert relay.stop(timeout=0.2) == 1
    (row,) = attempts_of(capture_id)
    assert (row.kind, row.attempt, row.status) == ("forward", 2, None)
    assert row.error == relay.STOPPED and row.target == target.url + "/in/sub"
    assert target.requests == []
    assert relay.drain(1)  # nothing left behind
    # A delivery forwarded after the stop (a request still being answered) is
    # recorded as not sent too.
    late = client.post("/hooks/default/late", data=b"x").get_json()["id"]
    (row,) = attempts_of(late)
    assert (row.status, row.error) == (None, relay.STOPPED)


def test_a_retry_asked_for_while_the_worker_stops_is_recorded_as_not_sent(
    app, client, ctx, target, fast_retries, monkeypatch
):
    monkeypatch.setattr(relay, "_worker", None)
    sending = threading.Event()
    release = threading.Event()

    def busy(received: Received):
        sending.set()
        release.wait(10)
        return (503, [], b"busy")  # asks for a retry

    target.answers.append(busy)
    capture_id = client.post("/hooks/default", data=b"x").get_json()["id"]
    set_forward_url(capture_id, target.url)
    relay.forward_later(app, capture_id)
    assert sending.wait(5)
    stopper = threading.Thread(target=relay.stop, args=(0.2,))
    stopper.start()
    stopper.join()  # gave up waiting: attempt 1 is still under way
    release.set()
    deadline = time.monotonic() + 5
    while len(attempts_of(capture_id)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
        db.session.rollback()
    first, second = attempts_of(capture_id)
    assert (first.attempt, first.status) == (1, 503)
    assert (second.attempt, second.status, second.error) == (2, None, relay.STOPPED)


def test_forwards_past_the_bytes_a_worker_may_hold_are_recorded_as_not_sent(
    app, client, ctx, target, monkeypatch
):
    monkeypatch.setattr(relay, "FORWARD_HELD_BYTES", 50_000)
    release = threading.Event()

    def held(received: Received):
        release.wait(10)  # the target is slow: the first forward stays held
        return (200, [], b"ok")

    target.answers.append(held)
    set_forward_url(client.post("/hooks/default").get_json()["id"], target.url)
    try:
        # Held (30 kB) while the target takes its time; the next would pass 50 kB.
        first = client.post("/hooks/default", data=b"x" * 30_000).get_json()["id"]
        second = client.post("/hooks/default", data=b"y" * 30_000).get_json()["id"]
        (row,) = attempts_of(second)
        assert (row.status, row.error) == (None, relay.FULL)
    finally:
        release.set()
    assert relay.drain(10)
    assert [r.status for r in attempts_of(first)] == [200]


def test_a_capture_is_forwarded_once(app, client, ctx, target):
    capture_id = client.post("/hooks/default", data=b"x").get_json()["id"]
    set_forward_url(capture_id, target.url)
    relay.forward_later(app, capture_id)
    relay.forward_later(app, capture_id)
    assert relay.drain(10)
    assert len(target.requests) == 1
    assert [r.status for r in attempts_of(capture_id)] == [201]


def test_forwarding_to_a_refused_target_is_logged_not_sent(app, client, ctx, fast_retries):
    capture_id = client.post("/hooks/default").get_json()["id"]
    set_forward_url(capture_id, "http://192.0.2.10/hook")
    relay.forward_later(app, capture_id)
    assert relay.drain(10)
    (row,) = attempts_of(capture_id)
    assert row.status is None
    assert row.error == "192.0.2.10 is not in RECEIVER_OUTBOUND_ALLOW."


GOOD_KEY, WRONG_KEY = "GOODkey123", "WRONGkey456"


def test_a_forward_puts_back_each_key_where_it_was(app, client, runner, ctx, target):
    """A delivery that carried a right and a wrong key is forwarded with both, each in
    its place: the target sees the mismatch enforce mode answered 401 for."""
    add_secret(runner, GOOD_KEY)
    client.patch(
        "/api/inboxes/default", json={"enforce_secret": True, "forward_url": target.url + "/in"}
    )
    response = client.post(  # through the capture endpoint, which hands over both keys
        f"/hooks/default/sub?secrettoken={WRONG_KEY}",
        data=f"event=QR_CODE_SCANNED&secrettoken={GOOD_KEY}",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 401
    capture_id = int(response.headers["X-Capture-Id"])
    assert relay.drain(10)
    (received,) = target.requests
    assert received.path == f"/in/sub?secrettoken={WRONG_KEY}"
    assert received.body == f"event=QR_CODE_SCANNED&secrettoken={GOOD_KEY}".encode()
    (row,) = attempts_of(capture_id)
    assert row.status == 201
    assert GOOD_KEY not in row.target and WRONG_KEY not in row.target


def test_a_mask_whose_key_is_not_known_stays_masked(app, client, ctx, target):
    response = client.post(
        f"/hooks/default/a/{WRONG_KEY}/b?secrettoken={WRONG_KEY}",
        data=json.dumps({"secrettoken": GOOD_KEY}),
        content_type="application/json",
    )
    capture_id = response.get_json()["id"]
    set_forward_url(capture_id, target.url)
    relay.forward_later(app, capture_id, [GOOD_KEY])  # only the first key
    assert relay.drain(10)
    (received,) = target.requests
    assert json.loads(received.body) == {"secrettoken": GOOD_KEY}
    path, _, query = received.path.partition("?")
    assert WRONG_KEY not in received.path and GOOD_KEY not in received.path
    assert re.fullmatch(r"/a/%5Bsecrettoken%3A[0-9a-f]{8}%5D/b", path)
    assert relay.MASK.fullmatch(parse_qs(query)["secrettoken"][0])


def test_a_key_with_a_control_character_is_forwarded_where_it_can_go(
    app, client, ctx, target, caplog
):
    """`echo $KEY` adds a newline: percent-encoded in the query, it is sent as it came."""
    capture_id = client.post("/hooks/default?secrettoken=CTRLkey%0A", data=b"x").get_json()["id"]
    set_forward_url(capture_id, target.url)
    relay.forward_later(app, capture_id, ["CTRLkey\n"])
    assert relay.drain(10)
    (received,) = target.requests
    assert received.path == "/?secrettoken=CTRLkey%0A"
    assert [r.status for r in attempts_of(capture_id)] == [201]
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize(
    ("key", "header", "query", "reason"),
    [("CTRLkey\n", "https://example.test/?secrettoken=CTRLkey%0A", "CTRLkey%0A", "control")],
)
@pytest.mark.parametrize(
    "app_config", [{"RECEIVER_OUTBOUND_ENABLED": True, "RECEIVER_FORWARD_RETRIES": 3}]
)
def test_a_forward_that_cannot_carry_its_key_is_logged_once(
    app, client, ctx, target, fast_retries, caplog, key, header, query, reason
):
    """The key stands in a header it cannot be written into: the attempt is recorded as
    failed, not dropped, and not retried (it would fail the same way)."""
    caplog.set_level(logging.DEBUG)
    capture_id = client.post(
        f"/hooks/default/u2?secrettoken={query}", data=b"x", headers={"X-Key": header}
    ).get_json()["id"]
    set_forward_url(capture_id, target.url + "/in")
    relay.forward_later(app, capture_id, [key])
    assert relay.drain(10)
    assert target.requests == []
    (row,) = attempts_of(capture_id)
    assert (row.kind, row.attempt, row.status) == ("forward", 1, None)
    assert row.error.startswith("The key cannot be sent in a header:")
    assert reason in row.error
    masked = r"/in/u2\?secrettoken=\[secrettoken:\w{8}\]"
    assert re.fullmatch(re.escape(target.url) + masked, row.target)
    for text in (row.error, row.target, caplog.text):
        assert key not in text and query not in text
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize("app_config", [{"RECEIVER_OUTBOUND_ENABLED": True}])
def test_a_key_outside_latin1_goes_back_into_a_header_as_the_bytes_it_came_as(
    app, client, runner, ctx, target
):
    key = "пароль99"
    capture_id = client.post(
        f"/hooks/default?secrettoken={quote(key)}",
        headers={"X-Key": key.encode().decode("latin-1")},  # its UTF-8 bytes, as sent
    ).get_json()["id"]
    set_forward_url(capture_id, target.url + "/in")
    relay.forward_later(app, capture_id, [key])
    assert relay.drain(10)
    response = client.post(
        f"/api/captures/{capture_id}/replay", json={"to": target.url, "secret": key}
    )
    assert response.status_code == 201 and response.get_json()["status"] == 201
    assert key not in response.get_data(as_text=True)
    for received in target.requests:  # the forward, then the replay
        assert received.header("X-Key") == key.encode().decode("latin-1")
        assert received.path.endswith(f"?secrettoken={quote(key)}")
    assert len(target.requests) == 2


@pytest.mark.parametrize("app_config", [{"RECEIVER_OUTBOUND_ENABLED": True}])
def test_raw_utf8_in_a_query_is_forwarded_percent_encoded(app, client, ctx, target):
    capture_id = client.get(
        "/hooks/default/q", environ_overrides={"QUERY_STRING": "name=Jos\xc3\xa9&a=1"}
    ).get_json()["id"]
    set_forward_url(capture_id, target.url + "/in")
    relay.forward_later(app, capture_id)
    assert relay.drain(10)
    (received,) = target.requests
    assert received.path == "/in/q?name=Jos%C3%A9&a=1"


def test_repeated_headers_go_out_joined_and_cookies_as_cookies(app, ctx, target):
    outbound.send(
        "POST",
        target.url,
        [("Cookie", "a=1"), ("Cookie", "b=2"), ("X-Rep", "one"), ("x-rep", "two")],
        b"",
        app.config,
        5,
    )
    (received,) = target.requests
    assert received.header("Cookie") == "a=1; b=2"
    assert received.header("X-Rep") == "one, two"


@pytest.mark.parametrize("key", ["..", "."])
def test_a_key_put_back_into_the_path_cannot_climb_out_of_the_target(
    app, client, ctx, target, key
):
    sent = f"/hooks/default/{key}/{key}/admin?secrettoken={key}"
    capture_id = client.post(sent, data=b"x").get_json()["id"]
    set_forward_url(capture_id, target.url + "/fw")
    relay.forward_later(app, capture_id, [key])
    assert relay.drain(10)
    (received,) = target.requests
    path = received.path.split("?")[0]
    assert path.startswith("/fw/") and "/./" not in path and "/../" not in path


@pytest.mark.parametrize("app_config", [{"RECEIVER_OUTBOUND_ENABLED": True}])
def test_a_forward_keeps_the_sub_path_as_sent(app, client, ctx, target):
    # Decoded, a%2Fb would become a/b (another path) and ; would be escaped.
    capture_id = client.post("/hooks/default/a%2Fb/semi;x=1/%7Euser", data=b"x").get_json()["id"]
    set_forward_url(capture_id, target.url + "/in")
    relay.forward_later(app, capture_id)
    assert relay.drain(10)
    (received,) = target.requests
    assert received.path == "/in/a%2Fb/semi;x=1/%7Euser"


@pytest.mark.parametrize("app_config", [{"RECEIVER_OUTBOUND_ENABLED": True}])
@pytest.mark.parametrize("sent", ["%2E%2E/%2E%2E/admin/delete", "./../admin/delete"])
def test_a_sub_path_cannot_climb_out_of_the_forward_target(app, client, ctx, target, sent):
    capture_id = client.post(f"/hooks/default/{sent}?x=1", data=b"x").get_json()["id"]
    set_forward_url(capture_id, target.url + "/fw")
    relay.forward_later(app, capture_id)
    assert relay.drain(10)
    (received,) = target.requests
    assert received.path.startswith("/fw/")
    assert "/../" not in received.path and "/./" not in received.path
    (row,) = attempts_of(capture_id)
    assert row.target == target.url + received.path  # recorded as sent


@pytest.mark.parametrize("app_config", [{"RECEIVER_OUTBOUND_ENABLED": True}])
@pytest.mark.parametrize(
    ("content_type", "body", "query"),
    [
        # Keys spelled other than the one way a stored key would be put back.
        (relay.FORM_TYPE, "secrettoken=Ключ-ünï-9876&a=1".encode(), b"secrettoken=pa%24%24/w0rd"),
        (relay.FORM_TYPE, b"secrettoken=pa%24%24%2fw0rd&a=1", b"k=pa$$/w0rd"),
        ("application/json", b'{"secrettoken": "pa$$\\/w0rd", "a": 1}', b""),
    ],
)
def test_a_forward_carries_the_delivery_byte_for_byte(
    app, client, ctx, target, content_type, body, query
):
    client.patch("/api/inboxes/default", json={"forward_url": target.url + "/in"})
    path = "/hooks/default/f" + (f"?{query.decode()}" if query else "")
    response = client.post(path, data=body, content_type=content_type)
    capture_id = response.get_json()["id"]
    assert client.get(f"/api/captures/{capture_id}/raw").get_data() != body  # stored masked
    assert relay.drain(10)
    (received,) = target.requests
    assert received.body == body
    assert received.path == "/in/f" + (f"?{query.decode()}" if query else "")


# --- outbound rules (SSRF) ---


@pytest.fixture
def resolver(monkeypatch):
    """Names resolve to the addresses given here; no DNS is asked."""
    names: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in names:
            if not names[host]:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return [
                (
                    socket.AF_INET6 if ":" in a else socket.AF_INET,
                    socket.SOCK_STREAM,
                    6,
                    "",
                    (a, port),
                )
                for a in names[host]
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names


def test_outbound_is_refused_unless_enabled():
    with pytest.raises(outbound.Refused, match="disabled; set RECEIVER_OUTBOUND_ENABLED=true"):
        outbound.check("http://127.0.0.1/", {"RECEIVER_OUTBOUND_ALLOW": ALLOW_LOOPBACK})


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/x", "file:///etc/passwd", "gopher://127.0.0.1:25/", "127.0.0.1:80/x"]
)
def test_only_http_and_https_targets(url):
    with pytest.raises(outbound.Refused, match="Only http and https URLs"):
        outbound.check(url, ENABLED)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://10.0.0.1/", "10.0.0.1 is not in RECEIVER_OUTBOUND_ALLOW."),
        ("http://192.0.2.1:8080/x", "192.0.2.1 is not in RECEIVER_OUTBOUND_ALLOW."),
        ("https://[2001:db8::1]/", "2001:db8::1 is not in RECEIVER_OUTBOUND_ALLOW."),
        ("http://0.0.0.0:8000/", "0.0.0.0 is not in RECEIVER_OUTBOUND_ALLOW."),
    ],
)
def test_addresses_outside_the_allow_list_are_refused(url, reason):
    with pytest.raises(outbound.Refused) as refused:
        outbound.check(url, ENABLED)
    assert str(refused.value) == reason


def test_loopback_is_allowed_by_default(resolver):
    resolver["local.test"] = ["127.0.0.1", "::1"]
    outbound.check("http://127.0.0.1:8000/", ENABLED)
    outbound.check("https://[::1]/", ENABLED)
    outbound.check("http://local.test/", ENABLED)


def test_every_address_of_a_name_must_be_allowed(resolver):
    resolver["internal.test"] = ["10.1.2.3"]
    resolver["mixed.test"] = ["127.0.0.1", "10.1.2.3"]
    with pytest.raises(outbound.Refused, match=r"internal\.test \(10\.1\.2\.3\) is not in"):
        outbound.check("http://internal.test/", ENABLED)
    with pytest.raises(outbound.Refused, match=r"mixed\.test \(10\.1\.2\.3\) is not in"):
        outbound.check("http://mixed.test/", ENABLED)


def test_a_name_that_does_not_resolve_is_refused(resolver):
    resolver["nowhere.test"] = []
    with pytest.raises(outbound.Refused, match=r"nowhere\.test could not be resolved"):
        outbound.check("http://nowhere.test/", ENABLED)


def test_allow_list_names_hosts_case_insensitively(resolver):
    resolver["hooks.internal"] = ["10.9.9.9"]
    config = {"RECEIVER_OUTBOUND_ENABLED": True, "RECEIVER_OUTBOUND_ALLOW": ["Hooks.Internal"]}
    outbound.check("http://HOOKS.internal./x", config)
    with pytest.raises(outbound.Refused):
        outbound.check("http://10.9.9.9/", config)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://169.254.10.1/",
        "http://[fe80::1]/",
        "http://[fd00:ec2::254]/",
        "http://100.100.100.200/",
        "http://[::ffff:169.254.169.254]/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://METADATA.google.internal./",
        "http://metadata.test/",
    ],
)
def test_link_local_and_metadata_are_refused_even_when_allowed(resolver, url):
    resolver["metadata.test"] = ["169.254.169.254"]
    config = {**ANYWHERE, "RECEIVER_OUTBOUND_ALLOW": ["0.0.0.0/0", "::/0", "metadata.test"]}
    with pytest.raises(outbound.Refused, match="never allowed"):
        outbound.check(url, config)


def test_a_redirect_to_a_refused_address_is_not_followed(target):
    target.answers.append((302, [("Location", "http://169.254.169.254/latest/meta-data/")], b""))
    outcome = outbound.send("POST", target.url + "/hook", [], b"x", ENABLED, timeout=5)
    assert outcome.status == 302
    assert outcome.error == (
        "Redirect to http://169.254.169.254/latest/meta-data/ not followed: "
        "169.254.169.254 is a link-local or cloud metadata address; never allowed."
    )
    assert len(target.requests) == 1


def test_a_redirect_is_recorded_with_the_replay(app, client, ctx, target):
    target.answers.append((301, [("Location", "http://10.0.0.8/")], b"moved"))
    capture = db.session.get(Capture, client.post("/hooks/default").get_json()["id"])
    attempt = relay.replay(capture, target.url)
    assert attempt.status == 301
    assert "not followed: 10.0.0.8 is not in RECEIVER_OUTBOUND_ALLOW" in attempt.error


def test_allowed_redirects_are_followed_by_hand(target):
    target.answers += [
        (307, [("Location", "/second")], b""),
        (303, [("Location", "/third")], b""),
        (200, [], b"done"),
    ]
    outcome = outbound.send(
        "POST", target.url + "/first", [("Content-Type", "text/plain")], b"body", ENABLED, 5
    )
    assert (outcome.status, outcome.body, outcome.error) == (200, b"done", None)
    assert [(r.method, r.path, r.body) for r in target.requests] == [
        ("POST", "/first", b"body"),
        ("POST", "/second", b"body"),
        ("GET", "/third", b""),
    ]


def test_redirects_stop_after_five(target):
    target.answers += [(302, [("Location", "/again")], b"")] * 10
    outcome = outbound.send("GET", target.url, [], b"", ENABLED, 5)
    assert outcome.status == 302
    assert outcome.error == "Stopped after 5 redirects."
    assert len(target.requests) == 6


def test_the_address_actually_reached_is_checked(monkeypatch):
    """DNS rebinding: the name passes the check, then resolves elsewhere to connect."""
    other = Target(host="127.0.0.2")
    real = socket.getaddrinfo
    lookups = []

    def rebinding(host, port, *args, **kwargs):
        if host == "rebind.test":
            lookups.append(host)
            host = "127.0.0.1" if len(lookups) == 1 else "127.0.0.2"
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    config = {**ENABLED, "RECEIVER_OUTBOUND_ALLOW": ["127.0.0.1/32"]}
    try:
        with pytest.raises(outbound.Refused, match=r"rebind\.test \(127\.0\.0\.2\) is not in"):
            outbound.send("GET", f"http://rebind.test:{other.port}/", [], b"", config, 5)
        assert len(lookups) == 2
        assert other.requests == []
    finally:
        other.stop()


def test_no_environment_proxy_or_default_headers(monkeypatch, target):
    monkeypatch.setenv("HTTP_PROXY", "http://10.0.0.1:3128")
    monkeypatch.setenv("NO_PROXY", "")
    outcome = outbound.send("POST", target.url, [("X-Only", "this")], b"", ENABLED, 5)
    assert outcome.status == 201
    (received,) = target.requests
    names = [n.lower() for n, _ in received.headers]
    assert "user-agent" not in names and "accept-encoding" not in names
    assert "x-only" in names


# --- the same tools from the dashboard ---


def dashboard_token(client) -> str:
    page = client.get("/inboxes/default").get_data(as_text=True)
    return re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)


@pytest.mark.parametrize(
    ("case", "verdict"), [("typed", "verified"), ("wrong", "mismatch"), ("none", "missing")]
)
def test_send_test_event_from_the_dashboard(client, runner, case, verdict):
    add_secret(runner)
    response = client.post(
        "/inboxes/default/send-test",
        data={"event": "VOUCHER_REDEEMED", "encoding": "json", "secret_case": case, "secret": KEY},
        headers={"HX-Request": "true", "X-CSRFToken": dashboard_token(client)},
    )
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    capture_id = int(re.search(r"capture #(\d+)", html).group(1))
    assert "<strong>200</strong>" in html
    stored = client.get(f"/api/captures/{capture_id}").get_json()
    assert stored["event_type"] == "VOUCHER_REDEEMED"
    assert stored["subpath"] == "VOUCHER_REDEEMED"
    assert stored["secret"]["verdict"] == verdict
    assert KEY not in html


def test_send_test_event_refuses_unknown_events_and_a_missing_key_in_its_result(client):
    # The answer replaces the last result (htmx swaps only a 200), so an old
    # "Sent ..." line never stays beside a refusal.
    headers = {"X-CSRFToken": dashboard_token(client)}
    before = client.get("/api/inboxes/default/stats").get_json()["total"]
    bad = client.post("/inboxes/default/send-test", data={"event": "NOPE"}, headers=headers)
    assert bad.status_code == 200
    assert "Not sent: Pick one of the documented events" in bad.get_data(as_text=True)
    no_key = client.post(
        "/inboxes/default/send-test",
        data={"event": "LEAD_CREATED", "secret_case": "typed", "secret": ""},
        headers=headers,
    )
    assert no_key.status_code == 200
    html = no_key.get_data(as_text=True)
    assert 'class="send-result bad"' in html
    assert "Not sent: Type the key to send" in html
    assert client.get("/api/inboxes/default/stats").get_json()["total"] == before


def test_send_test_event_goes_over_http_under_gunicorn(live_server):
    session = requests.Session()
    page = session.get(f"{live_server.url}/inboxes/default").text
    token = re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)
    response = session.post(
        f"{live_server.url}/inboxes/default/send-test",
        data={"event": "QR_CODE_SCANNED", "encoding": "form", "secret_case": "wrong"},
        headers={"X-CSRFToken": token, "HX-Request": "true"},
    )
    capture_id = int(re.search(r"capture #(\d+)", response.text).group(1))
    stored = session.get(f"{live_server.url}/api/captures/{capture_id}").json()
    assert stored["secret"]["fingerprint"].startswith("wron")  # a "wrong_…" key was sent
    # It came in through the network, like a real delivery.
    assert any(name == "Content-Length" for name, _ in stored["headers"])
    assert stored["remote_addr"] == "127.0.0.1"


def test_replay_from_the_capture_page_shows_the_answer(client, target):
    target.answers.append((202, [("X-Seen", "yes")], b"got it"))
    capture_id = client.post("/hooks/default/x", data=b"\x00\x01raw").get_json()["id"]
    page = client.get(f"/inboxes/default/captures/{capture_id}").get_data(as_text=True)
    assert "Replay" in page and 'name="to"' in page
    response = client.post(
        f"/inboxes/default/captures/{capture_id}/replay",
        data={"to": target.url + "/in", "with_subpath": "on"},
        headers={"HX-Request": "true", "X-CSRFToken": dashboard_token(client)},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<span class="badge good">202</span>' in html
    assert "got it" in html
    assert target.requests[-1].path == "/in/x"
    assert target.requests[-1].body == b"\x00\x01raw"
    refused = client.post(
        f"/inboxes/default/captures/{capture_id}/replay",
        data={"to": "http://169.254.169.254/latest"},
        headers={"HX-Request": "true", "X-CSRFToken": dashboard_token(client)},
    )
    assert "Not sent:" in refused.get_data(as_text=True)


@pytest.mark.parametrize("app_config", [{"RECEIVER_OUTBOUND_ENABLED": False}])
def test_capture_page_explains_how_to_enable_replay(client):
    capture_id = client.post("/hooks/default").get_json()["id"]
    page = client.get(f"/inboxes/default/captures/{capture_id}").get_data(as_text=True)
    assert "RECEIVER_OUTBOUND_ENABLED=true" in page
    assert 'name="to"' not in page
