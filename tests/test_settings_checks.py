"""Inbox settings that would be stored but not honoured are refused, naming the field."""

from __future__ import annotations

import pytest


def patch(client, slug="default", **values):
    return client.patch(f"/api/inboxes/{slug}", json=values)


def inbox(client, slug="default"):
    return client.get(f"/api/inboxes/{slug}").get_json()


def refused(response, field: str) -> str:
    assert response.status_code == 422, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == "invalid_setting"
    assert error["message"].startswith(f"{field}: ")
    return error["message"]


def add_secret(client, label: str, secret: str, user: str | None = None):
    body = {"label": label, "secret": secret, **({"user": user} if user else {})}
    return client.post("/api/inboxes/default/secrets", json=body)


# Content type


@pytest.mark.parametrize(
    "value",
    [
        "text/plain X-Injected: 1",
        "text/plain\x0bX-Injected: 1",
        "text/plain\x85X-Injected: 1",
        "text/plain\tX-Injected: 1",
        "hello",
        "text/",
        "/plain",
        "text/plain/extra",
        "text/plain; charset",
        "text/plain; charset=",
        'text/plain; a="unclosed',
        "text/plain, text/html",
    ],
)
def test_response_content_type_must_be_a_media_type(client, value):
    before = inbox(client)
    message = refused(patch(client, response_content_type=value), "response_content_type")
    assert "media type" in message
    assert inbox(client) == before
    answer = client.post("/hooks/default")
    assert answer.headers["Content-Type"] == "application/json"
    assert "X-Injected" not in answer.headers


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("application/json", "application/json"),
        ("text/plain; charset=utf-8", "text/plain; charset=utf-8"),
        ("TEXT/Plain;charset=UTF-8", "TEXT/Plain;charset=UTF-8"),
        ("application/vnd.api+json", "application/vnd.api+json"),
        ('text/plain; name="a; b=\\"c\\""', 'text/plain; name="a; b=\\"c\\""'),
        (" text/xml ", "text/xml"),
        ("text/plain;\tcharset=utf-8;", "text/plain;\tcharset=utf-8;"),  # OWS, empty param
        ("", None),
    ],
)
def test_a_media_type_with_parameters_is_kept_and_sent(client, value, stored):
    response = patch(client, response_content_type=value, response_body="hi")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["response_content_type"] == stored
    answer = client.post("/hooks/default")
    assert answer.headers["Content-Type"] == (stored or "text/plain; charset=utf-8")


# A status that sends no body


@pytest.mark.parametrize("status", [204, 205, 304])
def test_a_status_that_sends_no_body_refuses_a_body(client, status):
    both = patch(client, response_status=status, response_body="thanks")
    assert "response_body" in refused(both, "response_status")
    assert patch(client, response_body="thanks").status_code == 200
    refused(patch(client, response_status=status), "response_status")  # the stored body counts
    assert patch(client, response_status=status, response_body=None).status_code == 200
    message = refused(patch(client, response_body="thanks"), "response_body")  # the stored status
    assert str(status) in message
    assert (inbox(client)["response_status"], inbox(client)["response_body"]) == (status, None)
    assert client.post("/hooks/default").status_code == status


def test_a_new_inbox_with_a_bodiless_status_and_a_body_is_not_created(client):
    response = client.post(
        "/api/inboxes", json={"slug": "fresh", "response_status": 204, "response_body": "x"}
    )
    refused(response, "response_status")
    assert client.get("/api/inboxes/fresh").status_code == 404


# Extra response headers


@pytest.mark.parametrize(
    "name",
    [
        "Content-Encoding",
        "Transfer-Encoding",
        "Content-Length",
        "Host",
        "Keep-Alive",
        "Connection",
        "Upgrade",
        "TE",
        "Trailer",
        "Proxy-Connection",
        "Proxy-Authenticate",
        "Date",
        "Server",
        "X-Capture-Id",
        "connection",
    ],
)
def test_headers_the_server_sets_or_drops_are_refused_with_a_reason(client, name):
    message = refused(patch(client, response_headers=[[name, "x"]]), "response_headers")
    assert name in message
    assert "response_content_type" not in message
    assert inbox(client)["response_headers"] == []


def test_a_content_type_header_points_to_its_setting(client):
    message = refused(patch(client, response_headers="Content-Type: text/html"), "response_headers")
    assert "use response_content_type" in message


@pytest.mark.parametrize("value", ["a\x07b", "a\x00b", "a\x0bb", "a\x7fb", "a\x1bb"])
@pytest.mark.parametrize("form", ["pairs", "lines"])
def test_a_header_value_with_a_control_character_is_refused(client, value, form):
    # gunicorn cannot send it: every delivery would have been answered 500.
    headers = [["X-Trace", value]] if form == "pairs" else f"X-Trace: {value}"
    message = refused(patch(client, response_headers=headers), "response_headers")
    assert "X-Trace" in message and "control character" in message
    assert inbox(client)["response_headers"] == []


@pytest.mark.parametrize("form", ["pairs", "lines"])
def test_a_header_value_may_hold_tabs_and_latin1(client, form):
    value = "a\tb é \x85 c"  # \x85 is a latin-1 character, not a line break
    headers = [["X-Note", value]] if form == "pairs" else f"X-Note: {value}\nX-Other: 1"
    response = patch(client, response_headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    answer = client.post("/hooks/default", data=b"x")
    assert answer.headers["X-Note"] == value


@pytest.mark.parametrize("pair", [["X-A", None], ["X-A", {"v": 1}], ["X-A", 5], [1, "v"]])
def test_a_header_pair_must_be_two_strings(client, pair):
    refused(patch(client, response_headers=[pair]), "response_headers")
    assert inbox(client)["response_headers"] == []


# Expected secrets


# Around the key, a newline or a tab is left out like a space; inside, refused.
@pytest.mark.parametrize("secret", ["sk-live-123\n456", "sk-live\x00123456", "sk-live\t123456"])
def test_a_key_with_control_characters_is_refused(client, secret):
    message = refused(add_secret(client, "prod", secret), "secret")
    assert "control characters" in message
    assert inbox(client)["secrets"] == []


def test_the_same_key_is_not_expected_twice(client):
    assert add_secret(client, "prod", "sk-live-123456").status_code == 201
    for label in ("prod", "again"):
        message = refused(add_secret(client, label, "sk-live-123456"), "secret")
        assert message == "secret: this key is already expected, as 'prod'"
    # A key open to every user already covers any one of them.
    message = refused(add_secret(client, "alice", "sk-live-123456", user="alice"), "secret")
    assert "as 'prod'" in message
    assert [s["label"] for s in inbox(client)["secrets"]] == ["prod"]


def test_the_same_key_for_the_same_user_is_not_expected_twice(client):
    assert add_secret(client, "alice", "sk-shared-1", user="alice").status_code == 201
    message = refused(add_secret(client, "alice-2", "sk-shared-1", user="alice"), "secret")
    assert message == "secret: this key is already expected, as 'alice' (for user 'alice')"
    # Another user, or every user, is a different expectation.
    assert add_secret(client, "bob", "sk-shared-1", user="bob").status_code == 201
    assert add_secret(client, "anyone", "sk-shared-1").status_code == 201
    assert [s["label"] for s in inbox(client)["secrets"]] == ["alice", "bob", "anyone"]


def test_a_label_names_one_key_of_an_inbox(client):
    assert add_secret(client, "prod", "sk-live-123456").status_code == 201
    message = refused(add_secret(client, " prod ", "sk-live-654321"), "label")
    assert "'prod'" in message
    assert "sk-live" not in message
    assert [s["label"] for s in inbox(client)["secrets"]] == ["prod"]
    # Another inbox may use the same label.
    client.post("/api/inboxes", json={"slug": "other"})
    other = client.post("/api/inboxes/other/secrets", json={"label": "prod", "secret": "sk-o-1"})
    assert other.status_code == 201
