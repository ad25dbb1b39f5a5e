"""The dashboard's pages and fragments, through the test client."""

from __future__ import annotations

import base64
import io
import re
import subprocess
import threading
import time
from datetime import timedelta
from html import unescape

import pytest
from markupsafe import escape

from receiver import catalog, live, storage
from receiver.extensions import db
from receiver.models import Capture
from receiver.present import curl_command, printf_command

HX = {"HX-Request": "true"}


def send(client, path="/hooks/default", **data):
    response = client.post(path, data=data)
    assert response.status_code == 200
    return response.get_json()["id"]


def csrf_token(client, path="/inboxes/default") -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)


def row_ids(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'id="capture-(\d+)"', html)]


def count_of(html: str, event_type: str) -> int:
    block = html.split(f'data-event-type="{event_type}"', 1)[1]
    return int(re.search(r"data-count>(\d+)<", block).group(1))


def test_home_lists_inboxes_with_capture_and_per_event_urls(client):
    send(client)
    html = client.get("/").get_data(as_text=True)
    assert "http://localhost/hooks/default" in html
    assert 'data-copy="http://localhost/hooks/default"' in html
    for name in catalog.EVENTS:
        assert f"http://localhost/hooks/default/{name}" in html
    assert "1 capture<" in html
    send(client)
    assert "2 captures<" in client.get("/").get_data(as_text=True)


def test_inbox_page_links_the_exports_and_they_download(client):
    send(client, event="LEAD_CREATED")
    html = client.get("/inboxes/default").get_data(as_text=True)
    links = re.findall(r'href="(/api/inboxes/default/export\?format=\w+)" download', html)
    assert [link.rsplit("=", 1)[1] for link in links] == ["ndjson", "csv", "har"]
    for link in links:
        response = client.get(link)
        assert response.status_code == 200
        assert "attachment" in response.headers["Content-Disposition"]
        assert b"LEAD_CREATED" in response.get_data()


def test_inbox_page_lists_all_documented_events_then_others_then_unknown(client):
    send(client, event="QR_CODE_SCANNED")
    send(client, event="QR_CODE_SCANNED")
    send(client, event="FUTURE_EVENT")
    send(client)
    html = client.get("/inboxes/default").get_data(as_text=True)
    order = re.findall(r'data-event-type="([^"]+)"', html)
    assert order == [*catalog.EVENTS, "FUTURE_EVENT", "UNKNOWN"]
    assert count_of(html, "QR_CODE_SCANNED") == 2
    assert count_of(html, "LEAD_CREATED") == 0
    assert count_of(html, "FUTURE_EVENT") == 1
    assert count_of(html, "UNKNOWN") == 1


def test_unknown_inbox_page_is_404(client):
    response = client.get("/inboxes/nope")
    assert response.status_code == 404
    assert "No inbox named" in response.get_data(as_text=True)


def test_same_url_serves_page_or_fragment_and_says_so(client):
    send(client, event="LEAD_CREATED")
    full = client.get("/inboxes/default")
    fragment = client.get("/inboxes/default", headers={**HX, "HX-Target": "capture-list"})
    boosted = client.get(
        "/inboxes/default", headers={**HX, "HX-Boosted": "true", "HX-Target": "capture-list"}
    )
    assert "<html" in full.get_data(as_text=True)
    assert "<html" not in fragment.get_data(as_text=True)
    assert 'id="rows"' in fragment.get_data(as_text=True)
    assert "<html" in boosted.get_data(as_text=True)
    for response in (full, fragment, boosted):
        assert "HX-Request" in response.headers["Vary"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("event=LEAD_CREATED", {"lead"}),
        ("verdict=not_configured", {"lead", "scan", "put"}),
        ("method=PUT", {"put"}),
        ("method=put", {"put"}),
        ("q=needle", {"scan"}),
        ("q=NEEDLE", {"scan"}),
        ("q=100%25", set()),
        ("event=QR_CODE_SCANNED&q=needle", {"scan"}),
        ("event=LEAD_CREATED&q=needle", set()),
    ],
)
def test_filters_narrow_the_list(client, query, expected):
    ids = {
        "lead": send(client, event="LEAD_CREATED"),
        "scan": send(client, event="QR_CODE_SCANNED", device="the-needle-phone"),
        "put": client.put("/hooks/default", data=b"x").get_json()["id"],
    }
    html = client.get(f"/inboxes/default?{query}").get_data(as_text=True)
    shown = set(row_ids(html.split('id="rows"')[1]))
    assert shown == {ids[name] for name in expected}


def test_list_pages_by_cursor_and_loads_more(client):
    ids = [send(client, n=str(i)) for i in range(60)]
    html = client.get("/inboxes/default").get_data(as_text=True)
    first = row_ids(html.split('id="rows"')[1])
    assert first == ids[::-1][:50]
    more = re.search(r'hx-get="(/inboxes/default/rows\?before=\d+)"', html).group(1)
    rest = row_ids(client.get(more).get_data(as_text=True))
    assert rest == ids[::-1][50:]
    assert "load-more" not in client.get(more).get_data(as_text=True)


def test_live_rows_bring_new_arrivals_and_move_the_cursor(client):
    old = send(client, event="LEAD_CREATED")
    new = [send(client, event="QR_CODE_SCANNED"), send(client, event="LEAD_CREATED")]
    html = client.get(f"/inboxes/default/rows?after={old}", headers=HX).get_data(as_text=True)
    assert row_ids(html) == new[::-1]
    assert "fresh" in html
    assert f"after={new[-1]}" in html  # the next fetch starts after the newest
    assert 'hx-swap-oob="true"' in html  # counts and cursor update out of band
    assert count_of(html, "LEAD_CREATED") == 2
    filtered = client.get(f"/inboxes/default/rows?after={old}&event=LEAD_CREATED", headers=HX)
    assert row_ids(filtered.get_data(as_text=True)) == [new[1]]


def test_capture_detail_is_a_page_and_a_fragment(client):
    capture_id = send(
        client,
        "/hooks/default/QR_CODE_SCANNED",
        device="Pixel",
        os="Android",
        country="FR",
        lat="48.85",
        lng="2.35",
    )
    url = f"/inboxes/default/captures/{capture_id}"
    full = client.get(url).get_data(as_text=True)
    fragment = client.get(url, headers={**HX, "HX-Target": "detail"}).get_data(as_text=True)
    assert "<html" in full and "<html" not in fragment
    for html in (full, fragment):
        assert f"Capture #{capture_id}" in html
        assert 'data-param="device"' in html and "Pixel" in html
        assert "openstreetmap.org/?mlat=48.85&amp;mlon=2.35" in html
        assert "Fired WebHook" in html


def test_list_and_detail_show_what_the_sender_was_answered(client):
    client.patch("/api/inboxes/default", json={"fail_remaining": 1, "fail_status": 503})
    response = client.post("/hooks/default", data={"event": "LEAD_CREATED"})
    assert response.status_code == 503
    failed = int(response.headers["X-Capture-Id"])
    client.patch("/api/inboxes/default", json={"response_status": 202})
    accepted = send_status(client, 202)
    client.patch("/api/inboxes/default", json={"response_status": 200})
    plain = send_status(client, 200)
    html = client.get("/inboxes/default").get_data(as_text=True)
    rows = {
        n: html.split(f'id="capture-{n}"', 1)[1].split("</tr>", 1)[0]
        for n in (failed, accepted, plain)
    }
    assert 'class="badge bad" title="the sender was answered 503">503<' in rows[failed]
    assert ">202<" in rows[accepted]
    assert "answered" not in rows[plain]
    detail = client.get(f"/inboxes/default/captures/{failed}").get_data(as_text=True)
    assert '<span class="bad-text">answered 503</span>' in detail


def test_list_rows_tell_codes_and_other_senders_apart(client):
    def row_of(capture_id: int) -> str:
        html = client.get("/inboxes/default").get_data(as_text=True)
        return html.split(f'id="capture-{capture_id}"', 1)[1].split("</tr>", 1)[0]

    scan = {"event": "QR_CODE_SCANNED", "user": "jane", "code": "https://qr.example.com/7W"}
    row = row_of(client.post("/hooks/default", data=scan).get_json()["id"])
    # The platform's full short URL: its last segment is what differs.
    assert 'title="code https://qr.example.com/7W">7W</span>' in row
    assert 'title="user jane">jane</span>' in row
    bare = client.post("/hooks/default", data={**scan, "code": "X9"}).get_json()["id"]
    assert ">X9</span>" in row_of(bare)
    github = client.post(
        "/hooks/default/github", json={"ref": "main"}, headers={"X-GitHub-Event": "push"}
    )
    row = row_of(github.get_json()["id"])
    assert '<span class="path" title="sent to /github">/github</span>' in row
    assert 'title="UNKNOWN">UNKNOWN</span>' in row


def send_status(client, status: int) -> int:
    response = client.post("/hooks/default", data={"event": "LEAD_CREATED"})
    assert response.status_code == status
    return int(response.headers["X-Capture-Id"])


def test_capture_of_another_inbox_is_404(app, client):
    with app.app_context():
        from receiver import storage

        storage.create_inbox("other")
    capture_id = send(client, "/hooks/other")
    assert client.get(f"/inboxes/default/captures/{capture_id}").status_code == 404
    assert client.get(f"/inboxes/other/captures/{capture_id}").status_code == 200


def test_job_download_shows_expiry_and_expired_badge(client):
    capture_id = send(
        client,
        event="JOB_FINISHED",
        timestamp="2020-01-01 00:00:00",
        download="https://example.com/job.zip",
    )
    html = client.get(f"/inboxes/default/captures/{capture_id}").get_data(as_text=True)
    assert "valid until 2020-01-31 00:00 UTC" in html
    assert '<span class="badge bad">expired</span>' in html


def test_direction_controls_are_shown_as_escapes_not_obeyed(client):
    # U+202E would show "\u202enimda" as "admin" and "\u202egnp.exe" as "exe.png".
    capture_id = client.post(
        "/hooks/default/\u202etxt.exe",
        data={"event": "LEAD_CREATED", "user": "\u202enimda", "note": "\u2067gnp.exe"},
    ).get_json()["id"]
    for url in (f"/inboxes/default/captures/{capture_id}", "/inboxes/default"):
        html = client.get(url).get_data(as_text=True)
        assert not any(c in html for c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068")
        assert "\\u202enimda" in html
    detail = client.get(f"/inboxes/default/captures/{capture_id}").get_data(as_text=True)
    assert "\\u2067gnp.exe" in detail and "/hooks/default/\\u202etxt.exe" in detail
    # What is stored and what the API gives stay exactly as sent.
    document = client.get(f"/api/captures/{capture_id}").get_json()
    assert {"name": "user", "source": "post", "value": "\u202enimda"} in document["params"]


def test_a_setting_with_direction_marks_is_shown_in_its_form_as_saved(client):
    # Right-to-left text holds such marks; the form must save them back as they are.
    body = "\u202bשלום\u202c"
    client.patch("/api/inboxes/default", json={"response_body": body})
    html = client.get("/inboxes/default/settings").get_data(as_text=True)
    assert body in html and "\\u202b" not in html


def test_a_code_that_is_not_quite_a_url_is_listed_as_sent(client):
    capture_id = send(client, event="QR_CODE_SCANNED", code="https://[qr.example/7W")
    html = client.get("/inboxes/default").get_data(as_text=True)
    assert ">https://[qr.example/7W</span>" in html
    assert client.get(f"/inboxes/default/captures/{capture_id}").status_code == 200


@pytest.mark.parametrize(
    "text", ["name=می\u200cخواهم", "family=👨\u200d👩\u200d👧\u200d👦 " * 5, "a\u00a0b " * 40]
)
def test_text_with_joiners_and_special_spaces_is_shown_as_text_not_hex(client, text):
    capture_id = client.post(
        "/hooks/default", data=text.encode(), content_type="text/plain; charset=utf-8"
    ).get_json()["id"]
    html = client.get(f"/inboxes/default/captures/{capture_id}").get_data(as_text=True)
    assert text.split("=")[-1].strip() in html
    assert "00000000 " not in html  # no hex dump


def test_sender_urls_only_become_links_when_http(client):
    evil = send(client, event="CALL_2_ACTION_BUTTON_CLICKED", c2a="javascript:alert(1)")
    good = send(client, event="CALL_2_ACTION_BUTTON_CLICKED", c2a="https://example.com/b")
    html = client.get(f"/inboxes/default/captures/{evil}").get_data(as_text=True)
    assert 'href="javascript:' not in html
    assert "javascript:alert(1)" in html
    html = client.get(f"/inboxes/default/captures/{good}").get_data(as_text=True)
    assert 'href="https://example.com/b"' in html


def test_captured_markup_is_escaped_everywhere(client):
    payload = "<script>alert(1)</script>"
    capture_id = client.post(
        f"/hooks/default/{payload}?{payload}=1",
        data={payload: payload, "code": payload, "user": payload},
        headers={"X-Evil": payload},
    ).get_json()["id"]
    for url in ("/inboxes/default", f"/inboxes/default/captures/{capture_id}"):
        html = client.get(url).get_data(as_text=True)
        assert payload not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.parametrize(
    ("content_type", "body"),
    [("application/json", b'{"a": "\\ud800", "b": ["\\udfff x"]}'), ("text/plain", b'["\\udfff"]')],
)
def test_a_body_with_unpaired_surrogate_escapes_is_shown_as_sent(client, content_type, body):
    capture_id = client.post("/hooks/default/sur", data=body, content_type=content_type).get_json()[
        "id"
    ]
    response = client.get(f"/inboxes/default/captures/{capture_id}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "\\udfff" in html  # escaped as in the body, not dropped or replaced


def test_body_view_says_what_was_decoded_and_reads_utf16_json(client):
    import gzip

    body = gzip.compress(b'{"event": "LEAD_CREATED", "email": "a@example.com"}')
    capture_id = client.post(
        "/hooks/default",
        data=body,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    ).get_json()["id"]
    html = client.get(f"/inboxes/default/captures/{capture_id}").get_data(as_text=True)
    assert f"json · gzip decoded: {len(body)} B received" in html
    assert "&#34;email&#34;: &#34;a@example.com&#34;" in html

    utf16 = '{"event": "LEAD_CREATED", "name": "Zoë"}'.encode("utf-16")
    capture_id = client.post(
        "/hooks/default", data=utf16, content_type="application/json"
    ).get_json()["id"]
    html = client.get(f"/inboxes/default/captures/{capture_id}").get_data(as_text=True)
    assert "&#34;name&#34;: &#34;Zoë&#34;" in html


def test_a_compressed_body_stored_again_with_its_key_masked_says_both_sizes(client):
    import gzip

    body = gzip.compress(b"event=LEAD_CREATED&secrettoken=sk_live_0123456789abcdef&n=1")
    capture_id = client.post(
        "/hooks/default",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Content-Encoding": "gzip"},
    ).get_json()["id"]
    stored = client.get(f"/api/captures/{capture_id}/raw").get_data()
    assert stored != body
    html = client.get(f"/inboxes/default/captures/{capture_id}").get_data(as_text=True)
    assert f"gzip decoded: {len(body)} B received, {len(stored)} B stored" in html


def test_a_multipart_body_with_a_file_is_shown_part_by_part(client):
    capture_id = client.post(
        "/hooks/default",
        data={
            "event": "LEAD_CREATED",
            "photo": (io.BytesIO(b"\x89PNG\r\n\x1a\n" + bytes(range(256))), "p.png", "image/png"),
            "notes": (io.BytesIO(b"line one\nline two"), "notes.txt", "text/plain"),
        },
        content_type="multipart/form-data",
    ).get_json()["id"]
    html = client.get(f"/inboxes/default/captures/{capture_id}").get_data(as_text=True)
    assert "Body <small>multipart" in html
    assert "── part 0: event, text/plain, 12 B\nLEAD_CREATED" in html
    assert "── part 1: photo, file p.png, image/png, 264 B\n[binary, 264 B: download" in html
    assert "file notes.txt, text/plain, 17 B\nline one\nline two" in html


def test_a_json_body_with_repeated_keys_is_shown_as_sent(client):
    body = b'{"a": "first-value", "a": "second-value"}'
    capture_id = client.post(
        "/hooks/default", data=body, content_type="application/json"
    ).get_json()["id"]
    html = client.get(f"/inboxes/default/captures/{capture_id}").get_data(as_text=True)
    shown = html.split('<pre class="body-view json"', 1)[1].split(">", 1)[1].split("</pre>", 1)[0]
    assert "first-value" in shown and "second-value" in shown


def test_json_numbers_are_shown_as_sent(client):
    # Read as floats, these would show as 19.9, Infinity, 1.2345678901234568e+19 and 0.
    body = b'{"price": 19.90, "huge": 1e400, "id": 12345678901234567890.5, "z": -0.000}'
    capture_id = client.post(
        "/hooks/default", data=body, content_type="application/json"
    ).get_json()["id"]
    html = client.get(f"/inboxes/default/captures/{capture_id}").get_data(as_text=True)
    shown = html.split('<pre class="body-view json"', 1)[1].split(">", 1)[1].split("</pre>", 1)[0]
    assert shown == (
        "{\n  &#34;price&#34;: 19.90,\n  &#34;huge&#34;: 1e400,"
        "\n  &#34;id&#34;: 12345678901234567890.5,\n  &#34;z&#34;: -0.000\n}"
    )


def test_a_documented_event_without_its_parameters_says_so(client):
    capture_id = client.get("/hooks/default/QR_CODE_SCANNED?secrettoken=x").get_json()["id"]
    html = client.get(f"/inboxes/default/captures/{capture_id}").get_data(as_text=True)
    assert "None of this event's parameters were sent." in html


def test_pages_carry_a_strict_content_security_policy(client):
    response = client.get("/inboxes/default")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    # No inline script anywhere in our own markup.
    assert not re.search(r"<script(?![^>]*\bsrc=)", response.get_data(as_text=True))


def test_forms_work_over_https_where_csrf_checks_the_referrer(client):
    # Behind an HTTPS proxy, Flask-WTF refuses a form without a same-origin
    # Referer; the pages' policy must let the browser send one to us.
    page = client.get("/inboxes/default", base_url="https://localhost")
    assert page.headers["Referrer-Policy"] == "same-origin"
    token = re.search(r'"X-CSRFToken": "([^"]+)"', page.get_data(as_text=True)).group(1)
    form = {"csrf_token": token, "slug": "over-https"}
    base = {"base_url": "https://localhost"}
    assert client.post("/inboxes", data=form, **base).status_code == 400  # no Referer
    sent = client.post("/inboxes", data=form, headers={"Referer": "https://localhost/"}, **base)
    assert sent.status_code == 303


def test_raw_body_and_parts_download_as_attachments(client):
    data = bytes(range(256))
    capture_id = client.post(
        "/hooks/default",
        data={"file": (io.BytesIO(data), "evil<name>.html", "text/html"), "field": "v"},
        content_type="multipart/form-data",
    ).get_json()["id"]
    raw = client.get(f"/api/captures/{capture_id}/raw")
    assert raw.headers["Content-Disposition"].startswith("attachment;")
    assert raw.headers["X-Content-Type-Options"] == "nosniff"
    assert raw.headers["Content-Type"].startswith("multipart/form-data")
    assert data in raw.get_data()
    document = client.get(f"/api/captures/{capture_id}").get_json()
    index = next(p["index"] for p in document["parts"] if p["name"] == "file")
    part = client.get(f"/api/captures/{capture_id}/parts/{index}")
    assert part.get_data() == data
    disposition = part.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="evil_name_.html.bin"')
    assert "sandbox" in part.headers["Content-Security-Policy"]
    assert client.get(f"/api/captures/{capture_id}/parts/99").status_code == 404


def test_delete_needs_csrf_and_updates_list_and_counts(client):
    keep = send(client, event="LEAD_CREATED")
    gone = send(client, event="LEAD_CREATED")
    url = f"/inboxes/default/captures/{gone}"
    assert client.delete(url, headers=HX).status_code == 400  # no CSRF token
    response = client.delete(url, headers={**HX, "X-CSRFToken": csrf_token(client)})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert f'id="capture-{gone}" hx-swap-oob="delete"' in html
    assert count_of(html, "LEAD_CREATED") == 1
    assert response.headers["HX-Push-Url"] == "/inboxes/default"
    assert client.get(f"/api/captures/{gone}").status_code == 404
    assert client.get(f"/api/captures/{keep}").status_code == 200


def test_clear_asks_then_deletes_with_csrf_and_redirects_303(client):
    for _ in range(3):
        send(client)
    confirm = client.get("/inboxes/default/clear").get_data(as_text=True)
    assert "Delete 3 captures" in confirm
    assert client.post("/inboxes/default/clear").status_code == 400
    token = re.search(r'name="csrf_token" value="([^"]+)"', confirm).group(1)
    response = client.post("/inboxes/default/clear", data={"csrf_token": token})
    assert response.status_code == 303
    assert response.headers["Location"] == "/inboxes/default"
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert row_ids(html.split('id="rows"')[1]) == []
    assert "Nothing captured yet" in html
    assert '<p class="saved" role="status">Inbox cleared: 3 captures deleted.</p>' in html
    # Said once, and no address can make the page say it.
    assert "Inbox cleared" not in client.get("/inboxes/default").get_data(as_text=True)
    # An empty inbox has nothing to clear, and the page says so.
    confirm = client.get("/inboxes/default/clear").get_data(as_text=True)
    assert "has no captures: there is nothing to clear" in confirm
    assert "Delete 0 captures" not in confirm


@pytest.mark.parametrize(
    "app_config",
    [{"RECEIVER_STREAM_SECONDS": 1, "RECEIVER_STREAM_HEARTBEAT_SECONDS": 0}],
)
def test_stream_announces_new_captures_and_honours_last_event_id(client):
    first = send(client)
    newest = send(client)
    response = client.get("/inboxes/default/stream?after=0")
    assert response.mimetype == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    text = response.get_data(as_text=True)  # the stream ends after its lifetime
    assert text.startswith("retry: ")
    assert f"id: {newest}.0\nevent: capture\ndata: {newest}\n\n" in text
    # A reconnecting page sends the last id it saw and is told only of newer ones.
    again = client.get("/inboxes/default/stream", headers={"Last-Event-ID": f"{newest}.0"})
    assert "event: capture" not in again.get_data(as_text=True)
    assert ": heartbeat" in again.get_data(as_text=True)
    caught_up = client.get("/inboxes/default/stream", headers={"Last-Event-ID": str(first)})
    assert f"id: {newest}.0\n" in caught_up.get_data(as_text=True)


@pytest.mark.parametrize(
    "app_config", [{"RECEIVER_STREAM_SECONDS": 1, "RECEIVER_STREAM_HEARTBEAT_SECONDS": 0}]
)
def test_after_the_newest_capture_is_deleted_the_next_one_still_reaches_open_pages(client):
    # Pages, API cursors and the live feed follow ids upward: an id is never
    # handed out twice, or the next delivery would hide below what a page saw.
    send(client)
    newest = send(client)
    assert client.delete(f"/api/captures/{newest}").status_code in (200, 204)
    following = send(client)
    assert following > newest
    seen = client.get("/inboxes/default/stream", headers={"Last-Event-ID": f"{newest}.0"})
    assert f"id: {following}.0\nevent: capture\n" in seen.get_data(as_text=True)
    assert client.delete("/api/inboxes/default/captures").status_code == 200
    assert send(client) > following


def removals_of(client, slug="default") -> int:
    with client.application.app_context():
        return storage.find_inbox(slug).removals


@pytest.mark.parametrize(
    "app_config", [{"RECEIVER_STREAM_SECONDS": 1, "RECEIVER_STREAM_HEARTBEAT_SECONDS": 0}]
)
def test_stream_tells_open_pages_when_captures_are_deleted_elsewhere(client):
    first, second, newest = send(client), send(client), send(client)
    assert client.delete(f"/api/captures/{second}").status_code in (200, 204)
    # A page that saw all three before the delete is told on reconnecting...
    text = client.get("/inboxes/default/stream", headers={"Last-Event-ID": f"{newest}.0"}).get_data(
        as_text=True
    )
    assert f"id: {newest}.1\nevent: removed\ndata: 1\n\n" in text
    assert "event: capture" not in text
    # ...and once it knows, it is not told again.
    text = client.get("/inboxes/default/stream", headers={"Last-Event-ID": f"{newest}.1"}).get_data(
        as_text=True
    )
    assert "event: removed" not in text
    # A page rendered before the delete names what it knew in its stream URL.
    text = client.get(f"/inboxes/default/stream?after={newest}&removals=0").get_data(as_text=True)
    assert "event: removed\ndata: 1" in text
    # Without either, a new stream starts from now.
    text = client.get(f"/inboxes/default/stream?after={newest}").get_data(as_text=True)
    assert "event: removed" not in text
    assert client.delete("/api/inboxes/default/captures").status_code == 200
    assert removals_of(client) == 2
    assert first  # cleared with the rest


def test_a_stream_ends_with_a_last_removed_event_when_its_inbox_is_deleted(client, app):
    assert client.post("/api/inboxes", json={"slug": "doomed"}).status_code == 201
    with app.app_context():
        inbox_id = storage.find_inbox("doomed").id
        watcher = live.watcher_for(app, db.engine)
    watcher.start()
    stream = live.events(watcher, inbox_id, 0, 0, lifetime=20, heartbeat=60)
    told: list[str] = []
    reader = threading.Thread(target=lambda: told.extend(stream))
    started = time.monotonic()
    reader.start()
    time.sleep(0.5)  # the stream is waiting for news
    assert client.delete("/api/inboxes/doomed").status_code == 204
    reader.join(timeout=10)
    assert not reader.is_alive()
    assert time.monotonic() - started < 5  # not its whole lifetime
    assert told[-1] == "event: removed\ndata: inbox\n\n"


def test_deletes_and_purges_move_the_removals_count_but_trims_do_not(client, app):
    kept = send(client)
    assert removals_of(client) == 0
    assert client.delete(f"/api/captures/{kept}").status_code in (200, 204)
    assert removals_of(client) == 1
    # Deleting what is already gone (a double click) removes nothing.
    assert client.delete(f"/api/captures/{kept}").status_code == 404
    assert client.delete("/api/inboxes/default/captures").get_json() == {"deleted": 0}
    assert removals_of(client) == 1
    old = send(client)
    with app.app_context():
        inbox_id = storage.find_inbox("default").id
        assert storage.purge_before(inbox_id, storage.utcnow() - timedelta(days=1)) == 0
        assert removals_of(client) == 1
        assert storage.purge_before(inbox_id, storage.utcnow() + timedelta(seconds=1)) == 1
    assert removals_of(client) == 2
    assert client.get(f"/api/captures/{old}").status_code == 404
    # An inbox at capacity drops its oldest at every write: not announced.
    assert client.patch("/api/inboxes/default", json={"capacity": 1}).status_code == 200
    send(client)
    send(client)
    assert removals_of(client) == 2


@pytest.mark.parametrize(
    "body",
    [
        bytes(range(256)),
        b"@/etc/passwd",
        b"100% '\"quoted'\" \\back\\slash\\x41 $HOME `id`",
        "unicode ✓ clé".encode(),
        b"--b0undary\r\nContent-Disposition: form-data",  # every multipart body
        b"---\nyaml: 1\n",
        b"-v",
        b"'%\\\x00" * 100_000,  # in several printf calls, each split between bytes
    ],
)
def test_printf_command_reproduces_every_byte_in_bash(body):
    command = printf_command(body)
    # On standard input, as pasted: a long command is too long for `bash -c`.
    sent = subprocess.run(["bash"], input=command.encode(), capture_output=True, check=True)
    assert sent.stdout == body


@pytest.mark.parametrize(
    ("path", "as_is"),
    [("/hooks/default/a/../b", True), ("/hooks/default/./x", True), ("/hooks/default/a..b", False)],
)
def test_curl_command_keeps_dot_segments_as_sent(app, client, path, as_is):
    capture_id = client.post(path, data=b"x").get_json()["id"]
    with app.app_context():
        command = curl_command(db.session.get(Capture, capture_id), "http://receiver.test")
    assert ("--path-as-is" in command) is as_is
    assert f" http://receiver.test{path} " in command


@pytest.mark.parametrize(
    ("target", "globoff"),
    [
        ("/hooks/default/a?secrettoken=k-123456789abc", True),
        ("/hooks/default/[x]", True),
        ("/hooks/default/a?b=c", False),
    ],
)
def test_curl_command_turns_off_url_globbing_where_the_url_has_brackets(
    app, client, target, globoff
):
    # The key in a query is stored as [secrettoken:...]: curl would read a range.
    capture_id = client.get(target).get_json()["id"]
    with app.app_context():
        command = curl_command(db.session.get(Capture, capture_id), "http://receiver.test")
    assert ("--globoff" in command) is globoff


def test_curl_command_replays_method_path_query_headers_and_body(app, client):
    capture_id = client.patch(
        "/hooks/default/sub/path?a=1&b=two%20words",
        data=b"\x00binary 'body'",
        headers={"X-Custom": "it's here", "Content-Type": "application/octet-stream"},
    ).get_json()["id"]
    with app.app_context():
        command = curl_command(db.session.get(Capture, capture_id), "http://receiver.test")
    assert command.startswith("printf -- ")
    assert "curl -X PATCH 'http://receiver.test/hooks/default/sub/path?a=1&b=two%20words'" in (
        command
    )
    assert "-H 'X-Custom: it'\"'\"'s here'" in command
    assert command.endswith("--data-binary @-")
    body = subprocess.run(
        ["bash", "-c", command.split(" | curl", 1)[0]], capture_output=True, check=True
    ).stdout
    assert body == base64.b64decode(
        client.get(f"/api/captures/{capture_id}").get_json()["body_base64"]
    )


def test_curl_command_sends_a_long_text_body_on_standard_input(app, client):
    # As one argument, it would stop curl from starting (Linux: 128 KiB at most).
    body = b"it's 100% text " * 12_000
    response = client.post("/hooks/default", data=body, content_type="text/plain")
    capture_id = response.get_json()["id"]
    with app.app_context():
        command = curl_command(db.session.get(Capture, capture_id), "http://h")
    assert command.endswith("--data-binary @-")
    sent = subprocess.run(
        ["bash"], input=command.split(" | curl", 1)[0].encode(), capture_output=True, check=True
    )
    assert sent.stdout == body


def test_curl_command_reads_a_large_body_from_the_raw_body_download(app, client):
    # Written into the command, 2 MiB of binary would put 8 MiB of text on the page.
    body = bytes(range(256)) * 8 * 1024
    capture_id = client.post("/hooks/default", data=body, content_type="image/png").get_json()["id"]
    with app.app_context():
        command = curl_command(db.session.get(Capture, capture_id), "http://h")
    assert command.endswith(f"--data-binary @capture-{capture_id}.png")
    assert len(command) < 1000
    page = client.get(f"/inboxes/default/captures/{capture_id}").get_data(as_text=True)
    assert len(page) < 100_000
    hint = page.split('<section class="curl">')[1]
    assert f"it reads the file <code>capture-{capture_id}.png</code>" in hint
    assert f'href="/api/captures/{capture_id}/raw" download>Download the raw body</a>' in hint
    # The download is that file, byte for byte.
    raw = client.get(f"/api/captures/{capture_id}/raw")
    assert f'filename="capture-{capture_id}.png"' in raw.headers["Content-Disposition"]
    assert raw.get_data() == body
    # At the limit, the body is still written into the command, and no file is named.
    small = client.post("/hooks/default", data=b"\x00" * (256 * 1024)).get_json()["id"]
    page = client.get(f"/inboxes/default/captures/{small}").get_data(as_text=True)
    assert "it reads the file" not in page
    assert "--data-binary @-" in page


def test_curl_command_sends_an_empty_header_value_as_curl_spells_it(app, client):
    capture_id = client.post("/hooks/default", data=b"x", headers={"X-Empty": ""}).get_json()["id"]
    with app.app_context():
        command = curl_command(db.session.get(Capture, capture_id), "http://h")
    assert " -H 'X-Empty;' " in command  # `X-Empty:` would tell curl to leave it out


@pytest.mark.parametrize(("size", "turned_off"), [(1024, False), (1025, True)])
def test_curl_command_keeps_curl_from_adding_expect_where_it_would(app, client, size, turned_off):
    capture_id = client.post("/hooks/default", data=b"\x00" * size).get_json()["id"]
    with app.app_context():
        command = curl_command(db.session.get(Capture, capture_id), "http://h")
    assert (" -H Expect: " in command) is turned_off


@pytest.mark.parametrize("app_config", [{"RECEIVER_MAX_STREAMS": 1}])
def test_open_streams_are_capped_per_worker_and_slots_come_back(client):
    first = client.get("/inboxes/default/stream", buffered=False)
    assert first.status_code == 200
    # Refused as a stream that says so (a 503 would close the browser's
    # EventSource, and its retries would space out to a minute).
    refused = client.get("/inboxes/default/stream")
    assert refused.status_code == 200
    assert refused.mimetype == "text/event-stream"
    assert refused.get_data(as_text=True) == "retry: 5000\nevent: unavailable\ndata: busy\n\n"
    first.close()  # the browser went away
    again = client.get("/inboxes/default/stream", buffered=False)
    assert again.status_code == 200
    again.close()


def test_a_burst_larger_than_a_page_reaches_the_live_list_whole(client):
    start = send(client)
    burst = [send(client, n=str(i)) for i in range(60)]
    first = client.get(f"/inboxes/default/rows?after={start}", headers=HX).get_data(as_text=True)
    shown = row_ids(first)
    assert shown == burst[:50][::-1]  # the oldest arrivals first, newest on top
    assert "sse:capture, load" in first  # a full page asks for the next one at once
    cursor = re.search(r"after=(\d+)", first.split('id="live"')[1]).group(1)
    second = client.get(f"/inboxes/default/rows?after={cursor}", headers=HX).get_data(as_text=True)
    assert row_ids(second) == burst[50:][::-1]
    assert "sse:capture, load" not in second


def test_deleting_twice_moves_the_counts_once(app, client):
    keep = send(client, event="LEAD_CREATED")
    gone = send(client, event="LEAD_CREATED")
    with app.app_context():
        from types import SimpleNamespace

        from receiver import storage

        # Two requests that both loaded the capture before either deleted it.
        loaded = SimpleNamespace(id=gone, inbox_id=db.session.get(Capture, gone).inbox_id)
        storage.delete_capture(loaded)
        storage.delete_capture(loaded)
    html = client.get("/inboxes/default").get_data(as_text=True)
    assert count_of(html, "LEAD_CREATED") == 1
    assert client.get(f"/api/captures/{keep}").status_code == 200


def test_huge_capture_ids_in_page_urls_are_404(client):
    assert client.get("/inboxes/default/captures/99999999999999999999").status_code == 404


def test_a_long_parameter_value_is_shown_clipped_with_a_pointer_to_the_body(client):
    note = "v" * 10_000
    response = client.post("/hooks/default", data={"event": "LEAD_CREATED", "note": note})
    page = client.get(f"/inboxes/default/captures/{response.get_json()['id']}")
    html = page.get_data(as_text=True)
    # The parameter table shows the start; the body preview has its own limit.
    cell = '<td class="value">' + "v" * 2000 + '<span class="clipped"> … the first 2,000'
    assert cell in html
    assert "characters; download the raw body for all of it" in html


def test_an_unusual_method_can_be_filtered_from_its_capture(client):
    propfind = client.open("/hooks/default/dav", method="PROPFIND").get_json()["id"]
    send(client)
    detail = client.get(f"/inboxes/default/captures/{propfind}").get_data(as_text=True)
    link = re.search(r'<a class="method" href="([^"]+)"', detail).group(1)
    assert link == "/inboxes/default?method=PROPFIND"
    html = client.get(link).get_data(as_text=True)
    assert set(row_ids(html.split('id="rows"')[1])) == {propfind}
    # The filter form shows the method it is filtering by, though it is off the list.
    assert "<option selected>PROPFIND</option>" in html


def test_event_types_sit_in_a_disclosure_saying_the_filter_in_use(client):
    send(client, event="LEAD_CREATED")
    send(client, event="CUSTOM_THING")
    html = client.get("/inboxes/default").get_data(as_text=True)
    nav = html.split('<nav id="event-types"', 1)[1].split("</nav>", 1)[0]
    # Open as rendered (wide screens, no script); app.js folds it on narrow ones.
    assert '<details class="types-fold" open>' in nav
    assert re.search(r'<summary class="types-summary">Event types \(2\)</summary>', nav)
    assert nav.index("</summary>") < nav.index('<ul class="types">') < nav.index("</details>")
    html = client.get("/inboxes/default?event=LEAD_CREATED").get_data(as_text=True)
    assert 'Event type: <span class="type-name">LEAD_CREATED</span></summary>' in html
    # The fragments that re-render it on live updates carry the same disclosure.
    live = client.get("/inboxes/default/rows?after=0", headers=HX).get_data(as_text=True)
    assert '<details class="types-fold" open>' in live


def method_choices(html: str) -> list[str]:
    select = html.split('id="filter-method"', 1)[1].split("</select>", 1)[0]
    return re.findall(r"<option ?(?:selected)?>([^<]+)</option>", select)


def test_the_method_filter_lists_methods_this_inbox_captured_lately(client, monkeypatch):
    client.open("/hooks/default/dav", method="PROPFIND")
    client.open("/hooks/default/dav", method="PROPFIND")
    client.open("/hooks/default/dav", method="MKCOL")
    send(client)
    html = client.get("/inboxes/default").get_data(as_text=True)
    standard = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]
    assert method_choices(html) == [*standard, "MKCOL", "PROPFIND"]
    # A method named in the URL stays chosen though no capture has it.
    html = client.get("/inboxes/default?method=report").get_data(as_text=True)
    assert method_choices(html) == [*standard, "MKCOL", "PROPFIND", "REPORT"]
    assert "<option selected>REPORT</option>" in html
    # Among the newest captures only: the cost stays bounded in a full inbox.
    monkeypatch.setattr(storage.recent_methods, "__defaults__", (2,))
    html = client.get("/inboxes/default").get_data(as_text=True)
    assert method_choices(html) == [*standard, "MKCOL"]
    # Another inbox's methods are not this one's.
    client.post("/inboxes", data={"slug": "other", "csrf_token": csrf_token(client)})
    assert method_choices(client.get("/inboxes/other").get_data(as_text=True)) == standard


def test_non_ascii_header_values_are_read_as_utf8_where_they_are(client):
    capture_id = client.post(
        "/hooks/default",
        data=b"x",
        headers={"X-Name": "José".encode().decode("latin-1"), "X-Latin": "caf\xe9"},
    ).get_json()["id"]
    html = client.get(f"/inboxes/default/captures/{capture_id}").get_data(as_text=True)
    assert '<td class="value">José <small class="hint"' in html
    assert '<td class="value">café</td>' in html  # not UTF-8: shown as received


def test_raw_utf8_in_a_url_is_shown_as_text_and_copied_as_its_bytes(app, client):
    capture_id = client.get(
        "/hooks/default/x",
        # What gunicorn hands over for `GET /hooks/default/café?name=José` sent raw.
        environ_overrides={
            "QUERY_STRING": "name=Jos\xc3\xa9",
            "RAW_URI": "/hooks/default/caf\xc3\xa9?name=Jos\xc3\xa9",
        },
    ).get_json()["id"]
    html = client.get(f"/inboxes/default/captures/{capture_id}").get_data(as_text=True)
    assert "?name=José</code>" in html
    with app.app_context():
        command = curl_command(db.session.get(Capture, capture_id), "http://h")
    url = command.split()[1]  # bash's $'...' quoting, which gives back the bytes sent
    printed = subprocess.run(["bash", "-c", f"printf '%s' {url}"], capture_output=True)
    assert printed.stdout == b"http://h/hooks/default/caf\xc3\xa9?name=Jos\xc3\xa9"


def ask_gone(client, shown, opened=None, **filters):
    data = {"shown": ",".join(map(str, shown)), **filters}
    if opened is not None:
        data["open"] = str(opened)
    return client.post(
        "/inboxes/default/gone", data=data, headers={**HX, "X-CSRFToken": csrf_token(client)}
    )


def test_a_page_learns_which_of_its_rows_were_deleted_elsewhere(client):
    first = send(client, event="LEAD_CREATED")
    second = send(client, event="LEAD_CREATED")
    third = send(client, event="QR_CODE_SCANNED")
    assert client.delete(f"/api/captures/{second}").status_code in (200, 204)
    response = ask_gone(client, [first, second, third], opened=second)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    # Only the deleted row leaves the page, with the counts brought up to date.
    assert f'<tr id="capture-{second}" hx-swap-oob="delete">' in html
    assert f'id="capture-{first}"' not in html and f'id="capture-{third}"' not in html
    assert count_of(html, "LEAD_CREATED") == 1
    # The open capture was the deleted one: its pane and the address say so.
    assert f"Capture #{second} was deleted." in html
    assert response.headers["HX-Replace-Url"] == "/inboxes/default"
    assert "HX-Retarget" not in response.headers
    # An open capture still there stays open.
    html = ask_gone(client, [first, third], opened=first).get_data(as_text=True)
    assert "was deleted" not in html and 'hx-swap-oob="delete"' not in html


def test_when_every_row_a_page_shows_is_gone_its_list_starts_again(client):
    shown = [send(client, event="LEAD_CREATED") for _ in range(2)]
    other = send(client, event="QR_CODE_SCANNED")
    for capture_id in shown:
        assert client.delete(f"/api/captures/{capture_id}").status_code in (200, 204)
    # Filtered to LEAD_CREATED, nothing is left: the list says so, filter kept.
    response = ask_gone(client, shown, event="LEAD_CREATED")
    assert response.headers["HX-Retarget"] == "#capture-list"
    assert response.headers["HX-Reswap"] == "innerHTML"
    html = response.get_data(as_text=True)
    assert "No captures match these filters." in html
    assert '<option value="LEAD_CREATED" selected>' in html
    # Unfiltered, the list shows what the inbox still holds.
    html = ask_gone(client, shown).get_data(as_text=True)
    assert row_ids(html.split('id="rows"')[1]) == [other]
    assert client.delete("/api/inboxes/default/captures").status_code == 200
    html = ask_gone(client, [other]).get_data(as_text=True)
    assert "Nothing captured yet" in html


def test_asking_which_rows_are_gone_takes_any_input(client):
    kept = send(client)
    token = {"X-CSRFToken": csrf_token(client)}
    for shown, relist in (
        ("", False),
        ("x,,-1,1e3,99999999999999999999999", False),  # not ids: nothing to check
        (f"{kept},{kept}", False),
        (",".join([str(kept + 1)] * 20_000), True),  # one id, not there
    ):
        response = client.post(
            "/inboxes/default/gone", data={"shown": shown, "open": "z"}, headers={**HX, **token}
        )
        assert response.status_code == 200, shown
        assert ("HX-Retarget" in response.headers) is relist, shown
        assert f'id="capture-{kept}" hx-swap-oob' not in response.get_data(as_text=True)
    response = client.post("/inboxes/default/gone", data={"shown": str(kept)}, headers=HX)
    assert response.status_code == 400  # no CSRF token
    response = client.post("/inboxes/nope/gone", data={"shown": "1"}, headers={**HX, **token})
    assert response.status_code == 404


@pytest.fixture
def unreachable_app(database_url, tmp_path):
    """An app whose database cannot be reached: a PostgreSQL port nobody
    listens on, or a SQLite file in a folder that does not exist."""
    from conftest import close_app, make_app

    if str(database_url).startswith("postgresql"):
        url = "postgresql+psycopg://postgres@127.0.0.1:9/test?connect_timeout=2"
    else:
        url = f"sqlite:///{tmp_path / 'gone' / 'receiver.sqlite3'}"
    app = make_app(url)
    yield app
    close_app(app)


@pytest.mark.parametrize(
    ("path", "json"),
    [
        ("/", False),
        ("/inboxes/default", False),
        ("/inboxes/default/rows", False),
        ("/api/inboxes", True),
        ("/api/inboxes/default/captures", True),
        ("/api/captures/1", True),
    ],
)
def test_pages_and_the_api_answer_503_while_the_database_is_away(
    unreachable_app, caplog, path, json
):
    response = unreachable_app.test_client().get(path)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    if json:
        assert response.get_json()["error"]["code"] == "database_unavailable"
    else:
        assert "The database cannot be reached just now" in response.get_data(as_text=True)
    # One line with the driver's reason: no traceback, no statement.
    lines = [r for r in caplog.records if r.name == "receiver"]
    assert [r.levelname for r in lines] == ["ERROR"]
    assert lines[0].getMessage().startswith(f"database unavailable on GET {path}: ")
    assert lines[0].exc_info is None
    assert "SELECT" not in caplog.text


def test_a_live_stream_while_the_database_is_away_says_so_and_when_to_ask_again(
    unreachable_app, caplog
):
    response = unreachable_app.test_client().get("/inboxes/default/stream")
    assert response.status_code == 200  # so the browser reconnects by itself
    assert response.get_data(as_text=True) == (
        "retry: 3000\nevent: unavailable\ndata: database\n\n"
    )
    assert "database unavailable on GET /inboxes/default/stream" in caplog.text


def test_an_outage_is_logged_once_in_a_while_not_once_per_request(unreachable_app, caplog):
    client = unreachable_app.test_client()
    for _ in range(20):
        assert client.get("/api/inboxes").status_code == 503
        assert client.post("/hooks/default", data={"n": "1"}).status_code == 503
    lines = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(lines) == 2, lines  # one for the pages and the API, one for deliveries
    assert lines[0].startswith("database unavailable on GET /api/inboxes: ")
    assert lines[1].startswith("capture not stored: ")
    # The next line, once the interval is over, says how many were left out.
    for outage in unreachable_app.extensions["receiver.outage_logs"].values():
        outage._last -= 60
    client.get("/api/inboxes")
    assert caplog.records[-1].getMessage().endswith("(19 more like it since the last such line)")


def test_a_mistake_in_a_statement_is_a_500_not_hidden_as_the_database_being_away(
    app, client, monkeypatch
):
    from sqlalchemy import text as sql

    def broken(*_args, **_kwargs):
        db.session.execute(sql("SELECT * FROM no_such_table"))

    monkeypatch.setattr(storage, "inbox_totals", broken)
    response = client.get("/api/inboxes")
    assert response.status_code == 500
    assert response.get_json()["error"]["code"] == "internal_server_error"


# Elements the keyboard stops at, as they open in the markup.
FOCUSABLE = re.compile(
    r'<(?:a\s[^>]*href|button|select|textarea|summary|input(?![^>]*type="hidden"))\b[^>]*>'
)


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ("/", "content"),
        ("/tokens", "content"),
        ("/inboxes/default/settings", "content"),
        ("/inboxes/default", "capture-list"),
        ("/inboxes/default/captures/{id}", "capture-list"),
    ],
)
def test_the_first_stop_for_the_keyboard_skips_to_the_content(client, path, target):
    capture_id = send(client)
    html = client.get(path.format(id=capture_id)).get_data(as_text=True)
    body = html.split("<body", 1)[1]
    first = FOCUSABLE.search(body).group(0)
    assert 'class="skip-link"' in first and f'href="#{target}"' in first
    assert re.search(rf'<[a-z]+ id="{target}"[^>]* tabindex="-1"', body)


def described_input(html: str, name: str) -> tuple[str, str]:
    """An input's tag and the text of what it is described by."""
    tag = re.search(rf'<input[^>]* name="{name}"[^>]*>', html).group(0)
    hint_id = re.search(r'aria-describedby="([^"]+)"', tag).group(1)
    hint = re.search(rf'<[a-z]+ class="hint" id="{hint_id}">([^<]*)<', html).group(1)
    return tag, hint


@pytest.mark.parametrize(
    ("path", "name"),
    [("/", "slug"), ("/inboxes/default/settings", "slug"), ("/inboxes/default/settings", "to")],
)
def test_inbox_name_fields_state_their_rule_in_a_title_and_a_hint(client, path, name):
    html = client.get(path).get_data(as_text=True)
    tag, hint = described_input(html, name)
    rule = str(
        escape("1-64 lower-case letters (a-z), digits, '-' or '_', starting with a letter or digit")
    )
    assert f'pattern="{storage.SLUG_PATTERN}"' in tag
    assert re.search(r'title="[^"]*' + re.escape(rule), tag)
    assert rule in hint
    if path == "/":
        # Said in a hint, not only in a placeholder a phone's narrow field cuts off.
        assert "Leave empty for a random, unguessable name." in hint
        assert "random" not in re.search(r'placeholder="([^"]*)"', tag).group(1)


def test_a_refused_secret_is_said_beside_its_form_with_what_was_typed(client):
    page = "/inboxes/default/settings"
    fields = {"label": "staging", "secret": "   ", "user": "alice"}
    token = csrf_token(client, page)
    response = client.post("/inboxes/default/secrets", data={"csrf_token": token, **fields})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    form = html.split('action="/inboxes/default/secrets"', 1)[1].split("</form>", 1)[0]
    # In the add-secret form, not above the settings form as if it had failed.
    assert "Not saved." not in html
    error = re.search(r'<p class="form-error" id="([^"]+)" role="alert" data-field="secret">', form)
    assert "Not added. Secret API key: is required" in form
    secret = re.search(r'<input name="secret"[^>]*>', form).group(0)
    assert 'aria-invalid="true"' in secret and f'aria-describedby="{error.group(1)}"' in secret
    assert re.search(r'<input name="label"[^>]* value="staging"', form)
    assert re.search(r'<input name="user"[^>]* value="alice"', form)
    assert "aria-invalid" not in re.search(r'<input name="label"[^>]*>', form).group(0)


def test_a_capture_page_and_its_swapped_in_detail_are_titled_with_the_capture(client):
    capture_id = send(client)
    path = f"/inboxes/default/captures/{capture_id}"
    title = f"<title>Capture #{capture_id} · default · Webhook receiver</title>"
    assert title in client.get(path).get_data(as_text=True)
    # htmx takes a fragment's top-level <title> as the page's, with the pushed URL.
    fragment = client.get(path, headers={**HX, "HX-Target": "detail"}).get_data(as_text=True)
    assert fragment.lstrip().startswith(title)
    assert "<title>default · Webhook receiver</title>" in client.get("/inboxes/default").get_data(
        as_text=True
    )
    # Deleted, the page's URL names the inbox again, and so does its title.
    token = csrf_token(client)
    deleted = client.delete(path, headers={**HX, "HX-Target": "detail", "X-CSRFToken": token})
    assert (
        deleted.get_data(as_text=True)
        .lstrip()
        .startswith("<title>default · Webhook receiver</title>")
    )


def names_of(html: str, visible: str) -> list[str | None]:
    """The accessible name (aria-label) of each link or button whose text is `visible`."""
    tags = re.findall(rf"<(?:a|button)\b([^>]*)>{visible}</(?:a|button)>", html)
    found = [re.search(r'aria-label="([^"]*)"', attributes) for attributes in tags]
    return [unescape(label.group(1)) if label else None for label in found]


def assert_distinct_names(names: list[str | None], visible: str, count: int) -> None:
    assert len(names) == count, names
    assert len(set(names)) == count, names
    # Label in name (WCAG 2.5.3): what is said starts with what is shown.
    assert all(name and name.startswith(visible + " ") for name in names), names


def test_revoke_buttons_name_their_token_even_when_labels_repeat(client):
    token = csrf_token(client, "/tokens")
    for label in ("ci-pipeline", "nightly", "nightly"):
        client.post("/tokens", data={"csrf_token": token, "label": label})
    names = names_of(client.get("/tokens").get_data(as_text=True), "Revoke")
    assert_distinct_names(names, "Revoke", 3)
    assert names[0] == "Revoke token ci-pipeline"
    # The same label twice: the token's first characters, as shown, tell them apart.
    assert all(re.fullmatch(r"Revoke token nightly \(whr_.{4}…\)", name) for name in names[1:])


def test_remove_buttons_name_their_secret(client):
    page = "/inboxes/default/settings"
    token = csrf_token(client, page)
    for label in ("production", "staging"):
        fields = {"csrf_token": token, "label": label, "secret": f"key-of-{label}"}
        assert client.post("/inboxes/default/secrets", data=fields).status_code == 303
    names = names_of(client.get(page).get_data(as_text=True), "Remove")
    assert_distinct_names(names, "Remove", 2)
    assert names == ["Remove secret production", "Remove secret staging"]


def test_part_download_links_name_their_part(client):
    capture_id = client.post(
        "/hooks/default",
        data={
            "avatar": (io.BytesIO(b"\x89PNG"), "avatar.png", "image/png"),
            "first": (io.BytesIO(b"one"), "same.txt", "text/plain"),
            "second": (io.BytesIO(b"two"), "same.txt", "text/plain"),
            "note": "a field, no file",
        },
        content_type="multipart/form-data",
    ).get_json()["id"]
    html = client.get(f"/inboxes/default/captures/{capture_id}").get_data(as_text=True)
    names = names_of(html, "Download")
    assert_distinct_names(names, "Download", 4)
    assert "Download part avatar.png" in names
    assert "Download part note" in names
    # A file name two parts share: numbered as the body view numbers parts.
    shared = [n for n in names if "same.txt" in n]
    assert len(shared) == 2
    for name in shared:
        number = re.fullmatch(r"Download part (\d+): same\.txt", name).group(1)
        assert re.search(rf"── part {number}: \w+, file same\.txt", html)


def test_copy_buttons_on_the_inboxes_page_name_what_they_copy(app, client):
    with app.app_context():
        storage.create_inbox("other")
    names = names_of(client.get("/").get_data(as_text=True), "Copy")
    per_inbox = 1 + len(catalog.EVENTS)
    assert_distinct_names(names, "Copy", 2 * per_inbox)
    assert "Copy capture URL of default" in names and "Copy capture URL of other" in names
    assert "Copy QR_CODE_SCANNED URL of other" in names


@pytest.mark.parametrize(
    ("path", "current"),
    [
        ("/", ["Inboxes"]),
        ("/inboxes/default", ["Inboxes"]),
        ("/inboxes/default/captures/{id}", ["Inboxes"]),
        ("/inboxes/default/settings", ["Inboxes"]),
        ("/inboxes/default/clear", ["Inboxes"]),
        ("/inboxes/default/delete", ["Inboxes"]),
        ("/tokens", ["API tokens"]),
        ("/inboxes/no-such-inbox", []),  # an error page is in no section
    ],
)
def test_the_top_navigation_marks_the_section_the_page_is_in(client, path, current):
    capture_id = send(client)
    html = client.get(path.format(id=capture_id)).get_data(as_text=True)
    nav = html.split("<nav aria-label=\"Sections\">", 1)[1].split("</nav>", 1)[0]
    links = re.findall(r"<a\b([^>]*)>([^<]+)</a>", nav)
    assert [text for _, text in links] == ["Inboxes", "API tokens"]
    assert [text for attributes, text in links if 'aria-current="page"' in attributes] == current
    assert html.count('aria-current="page"') == len(current)


def confirming_form(html: str, action: str) -> tuple[str, str]:
    """The action of the form posting to a URL that matches `action`, and what it asks first."""
    tag = re.search(rf'<form method="post" action="({action})"([^>]*)>', html)
    question = re.search(r'data-confirm="([^"]+)"', tag.group(2))
    return tag.group(1), unescape(question.group(1)) if question else ""


def test_revoke_and_remove_forms_ask_first_and_still_post_without_scripts(client):
    token = csrf_token(client, "/tokens")
    client.post("/tokens", data={"csrf_token": token, "label": "deploy-bot"})
    revoke, question = confirming_form(
        client.get("/tokens").get_data(as_text=True), r"/tokens/\d+/revoke"
    )
    assert question.startswith("Revoke the token deploy-bot? API clients that send it")
    settings = "/inboxes/default/settings"
    fields = {"csrf_token": token, "label": "production", "secret": "key-of-production"}
    client.post("/inboxes/default/secrets", data=fields)
    page = client.get(settings).get_data(as_text=True)
    remove, question = confirming_form(page, r"/inboxes/default/secrets/\d+/remove")
    assert question.startswith("Remove the secret production? Deliveries carrying its key")
    assert "401" not in question
    # With enforce mode on, what removing it means for senders is said too.
    client.post(settings, data={"csrf_token": token, "slug": "default", "enforce_secret": "on"})
    page = client.get(settings).get_data(as_text=True)
    assert "enforce mode will answer them 401" in confirming_form(page, remove)[1]
    # Plain posts: a browser without scripts sends them without asking.
    assert client.post(revoke, data={"csrf_token": token}).status_code == 303
    assert client.post(remove, data={"csrf_token": token}).status_code == 303
    assert "deploy-bot" not in client.get("/tokens").get_data(as_text=True)
    assert 'data-secret-label="production"' not in client.get(settings).get_data(as_text=True)


def test_token_times_are_shown_in_utc(app, client):
    token = csrf_token(client, "/tokens")
    created = client.post("/tokens", data={"csrf_token": token, "label": "dated"})
    bearer = re.search(r'id="new-token">(whr_[^<]+)<', created.get_data(as_text=True)).group(1)
    client.get("/api/inboxes", headers={"Authorization": f"Bearer {bearer}"})
    html = client.get("/tokens").get_data(as_text=True)
    row = html.split("<td>dated</td>", 1)[1].split("</tr>", 1)[0]
    times = re.findall(r'<time datetime="([^"]+)">([^<]+)</time>', row)
    assert len(times) == 2  # created, last used
    for stamp, shown in times:
        assert stamp.endswith("Z")
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", shown)
        assert shown.startswith(stamp[:10] + " " + stamp[11:16])
