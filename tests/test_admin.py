"""Managing inboxes from the dashboard and the CLI, and who may do it."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from conftest import ROOT

from receiver import access, storage

REMOTE = {"REMOTE_ADDR": "203.0.113.5"}


def token_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def form_post(client, page: str, action: str, **fields):
    token = token_of(client.get(page).get_data(as_text=True))
    return client.post(action, data={"csrf_token": token, **fields})


def api_inbox(client, slug="default"):
    return client.get(f"/api/inboxes/{slug}").get_json()


def test_create_inbox_with_a_readable_or_a_random_name(client):
    response = form_post(client, "/", "/inboxes", slug="acme-prod")
    assert response.status_code == 303
    assert response.headers["Location"] == "/inboxes/acme-prod"
    response = form_post(client, "/", "/inboxes", slug="")
    random_slug = response.headers["Location"].rsplit("/", 1)[1]
    assert re.fullmatch(r"[0-9a-f]{24}", random_slug)
    assert client.post(f"/hooks/{random_slug}").status_code == 200


@pytest.mark.parametrize("slug", ["Bad Name", "-leading", "default", "x" * 65])
def test_create_inbox_refuses_bad_or_taken_names_with_a_message(client, slug):
    response = form_post(client, "/", "/inboxes", slug=slug)
    assert response.status_code == 422
    assert 'class="form-error"' in response.get_data(as_text=True)


def test_forms_without_csrf_token_are_refused(client):
    assert client.post("/inboxes", data={"slug": "x1"}).status_code == 400
    assert client.post("/inboxes/default/settings", data={"cors": "on"}).status_code == 400
    assert client.post("/tokens", data={"label": "t"}).status_code == 400


def test_settings_form_saves_and_rejects_bad_values(client):
    response = form_post(
        client,
        "/inboxes/default/settings",
        "/inboxes/default/settings",
        slug="default",
        enforce_secret="on",
        response_status="202",
        response_body="thanks",
        response_content_type="text/plain",
        response_headers="X-One: 1\nX-Two: two",
        response_delay_ms="0",
        fail_remaining="0",
        fail_status="500",
        capacity="50",
        retention_days="7",
    )
    assert response.status_code == 303
    saved = api_inbox(client)
    assert saved["enforce_secret"] is True
    assert saved["cors"] is False
    assert saved["response_status"] == 202
    assert saved["response_headers"] == [["X-One", "1"], ["X-Two", "two"]]
    assert (saved["capacity"], saved["retention_days"]) == (50, 7)

    bad = form_post(
        client,
        "/inboxes/default/settings",
        "/inboxes/default/settings",
        slug="default",
        response_status="700",
    )
    assert bad.status_code == 422
    assert 'data-field="response_status"' in bad.get_data(as_text=True)
    assert api_inbox(client)["response_status"] == 202


def test_a_refused_settings_form_comes_back_with_what_was_typed(client):
    typed = "X-Good: yes\nthis is not a header"
    bad = form_post(
        client,
        "/inboxes/default/settings",
        "/inboxes/default/settings",
        slug="default",
        response_status="201",
        response_body="typed body",
        response_headers=typed,
        cors="on",
    )
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert 'data-field="response_headers"' in html
    assert f'<textarea name="response_headers" rows="2">{typed}</textarea>' in html
    assert ">typed body</textarea>" in html
    assert 'name="response_status" type="number" min="200" max="599" value="201"' in html
    assert 'name="cors" checked' in html
    assert api_inbox(client)["response_status"] == 200  # nothing was saved
    # The home page keeps a refused inbox name in its box, too.
    refused = form_post(client, "/", "/inboxes", slug="Bad Name")
    assert 'value="Bad Name"' in refused.get_data(as_text=True)


def test_rename_moves_the_capture_url(client):
    capture_id = client.post("/hooks/default").get_json()["id"]
    response = form_post(
        client,
        "/inboxes/default/settings",
        "/inboxes/default/settings",
        slug="renamed",
        response_status="200",
        response_delay_ms="0",
        fail_remaining="0",
        fail_status="500",
    )
    assert response.status_code == 303
    assert client.post("/hooks/default").status_code == 404
    assert client.post("/hooks/renamed").status_code == 200
    assert client.get(f"/api/captures/{capture_id}").get_json()["inbox"] == "renamed"


def test_secrets_are_added_and_removed_from_the_settings_page(client):
    page = "/inboxes/default/settings"
    response = form_post(client, page, "/inboxes/default/secrets", label="prod", secret="k-123456")
    assert response.status_code == 303
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Secret added: see Expected secrets below." in html
    assert 'data-secret-label="prod"' in html
    assert "k-123456" not in html
    verified = client.post("/hooks/default", data={"secrettoken": "k-123456"}).get_json()["id"]
    assert client.get(f"/api/captures/{verified}").get_json()["secret"]["verdict"] == "verified"
    remove = re.search(r'action="(/inboxes/default/secrets/\d+/remove)"', html).group(1)
    removed = form_post(client, page, remove)
    assert removed.status_code == 303
    html = client.get(removed.headers["Location"]).get_data(as_text=True)
    assert "Secret removed." in html
    assert 'data-secret-label="prod"' not in html


def test_the_settings_page_says_when_it_left_out_spaces_around_a_key(client, runner):
    page = "/inboxes/default/settings"
    response = form_post(client, page, "/inboxes/default/secrets", label="prod", secret="k-123456 ")
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Secret added, without the spaces around it" in html
    verified = client.post("/hooks/default", data={"secrettoken": "k-123456"}).get_json()["id"]
    assert client.get(f"/api/captures/{verified}").get_json()["secret"]["verdict"] == "verified"
    # The command line says so too.
    result = runner.invoke(
        args=["inbox", "add-secret", "default", "--label", "cli", "--secret", "  k-654321"]
    )
    assert result.exit_code == 0, result.output
    assert "the spaces around the key were left out" in result.output
    verified = client.post("/hooks/default", data={"secrettoken": "k-654321"}).get_json()["id"]
    assert client.get(f"/api/captures/{verified}").get_json()["secret"]["label"] == "cli"


def test_the_settings_page_refuses_a_key_it_already_expects(client):
    page = "/inboxes/default/settings"
    form_post(client, page, "/inboxes/default/secrets", label="prod", secret="k-123456")
    again = form_post(client, page, "/inboxes/default/secrets", label="again", secret="k-123456")
    assert again.status_code == 422
    html = again.get_data(as_text=True)
    assert 'data-field="secret"' in html
    assert "this key is already expected, as &#39;prod&#39;" in html
    assert "k-123456" not in html
    assert html.count("data-secret-label=") == 1
    assert [s["label"] for s in api_inbox(client)["secrets"]] == ["prod"]


def test_the_settings_form_refuses_a_body_with_a_status_that_sends_none(client):
    def save(content_type: str):
        return form_post(
            client,
            "/inboxes/default/settings",
            "/inboxes/default/settings",
            slug="default",
            response_status="204",
            response_body="thanks",
            response_content_type=content_type,
        )

    bad = save("text/plain X-Injected: 1")
    assert bad.status_code == 422
    assert 'data-field="response_content_type"' in bad.get_data(as_text=True)
    bad = save("text/plain")
    assert bad.status_code == 422
    assert 'data-field="response_status"' in bad.get_data(as_text=True)
    saved = api_inbox(client)
    assert (saved["response_status"], saved["response_body"]) == (200, None)


def test_saved_response_settings_no_longer_accepted_are_not_sent_broken(app, client):
    with app.app_context():
        inbox = storage.find_inbox("default")
        inbox.response_headers = (
            '[["Content-Length", "5"], ["X-Ok", "yes"], ["X-Bad", "é✓"], ["X-Bell", "a\\u0007b"]]'
        )
        inbox.response_content_type = "text/plain\nX-Injected: 1"
        inbox.response_body = "hello, sender"
        storage.db.session.commit()
        storage.forget_inboxes()
    answer = client.post("/hooks/default", data=b"x")
    assert answer.status_code == 200
    assert answer.get_data() == b"hello, sender"
    assert answer.headers.getlist("Content-Length") == [str(len(b"hello, sender"))]
    assert answer.headers["X-Ok"] == "yes"
    assert "X-Bad" not in answer.headers and "X-Injected" not in answer.headers
    assert "X-Bell" not in answer.headers
    assert answer.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_the_settings_page_names_a_saved_value_that_is_no_longer_accepted(app, client):
    # Saved before the check existed (written here past the check).
    with app.app_context():
        inbox = storage.find_inbox("default")
        inbox.response_headers = '[["Server", "acme"]]'
        storage.db.session.commit()
    html = client.get("/inboxes/default/settings").get_data(as_text=True)
    assert 'data-field="response_headers"' in html
    assert "A saved setting is no longer accepted" in html and "Server is set by the server" in html
    # Once it is changed, the form saves, and the page no longer warns.
    saved = form_post(
        client,
        "/inboxes/default/settings",
        "/inboxes/default/settings",
        slug="default",
        response_status="200",
        response_headers="X-Team: acme",
    )
    assert saved.status_code == 303
    assert "no longer accepted" not in client.get("/inboxes/default/settings").get_data(
        as_text=True
    )


def test_copy_config_from_the_dashboard_creates_the_target(client):
    page = "/inboxes/default/settings"
    form_post(client, page, "/inboxes/default/secrets", label="prod", secret="k-123456")
    response = form_post(client, page, "/inboxes/default/copy-config", to="staging")
    assert response.status_code == 303
    copied = api_inbox(client, "staging")
    assert [s["label"] for s in copied["secrets"]] == ["prod"]
    delivery = client.post("/hooks/staging", data={"secrettoken": "k-123456"}).get_json()["id"]
    assert client.get(f"/api/captures/{delivery}").get_json()["secret"]["label"] == "prod"


@pytest.mark.parametrize(("to", "says"), [("default", "is the same inbox"), ("Bad Name", "")])
def test_a_refused_copy_is_said_beside_the_copy_form_with_what_was_typed(client, to, says):
    page = "/inboxes/default/settings"
    response = form_post(client, page, "/inboxes/default/copy-config", to=to)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    error = re.search(r'<p class="form-error" role="alert" data-field="([^"]+)">([^<]*)</p>', html)
    assert error.group(1) == "to"
    assert error.group(2).startswith("Not copied. To inbox: ") and says in error.group(2)
    # Beside the copy form (after its heading), not above the settings form.
    assert html.index("Copy this configuration") < error.start()
    assert re.search(r'<input name="to" [^>]*value="' + re.escape(to) + '">', html)


def test_a_refused_save_names_the_field_as_the_form_labels_it(client):
    response = form_post(
        client,
        "/inboxes/default/settings",
        "/inboxes/default/settings",
        slug="default",
        response_status="200",
        forward_url="ftp://example.com/",
    )
    assert response.status_code == 422
    assert "Not saved. Forward every capture to: " in response.get_data(as_text=True)


def test_delete_inbox_asks_then_deletes_it_with_its_captures(client):
    form_post(client, "/", "/inboxes", slug="doomed")
    capture_id = client.post("/hooks/doomed").get_json()["id"]
    confirm = client.get("/inboxes/doomed/delete").get_data(as_text=True)
    assert "its only capture." in confirm
    response = client.post("/inboxes/doomed/delete", data={"csrf_token": token_of(confirm)})
    assert response.status_code == 303
    home = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Inbox doomed deleted, with its captures." in home
    # Said once, and no address can make the page say it.
    assert "deleted" not in client.get("/").get_data(as_text=True)
    assert "deleted" not in client.get("/?deleted=production").get_data(as_text=True)
    assert client.post("/hooks/doomed").status_code == 404
    assert client.get(f"/api/captures/{capture_id}").status_code == 404


def test_deleting_an_empty_inbox_does_not_speak_of_all_0_captures(client):
    form_post(client, "/", "/inboxes", slug="empty")
    confirm = client.get("/inboxes/empty/delete").get_data(as_text=True)
    assert "its secrets and no captures, as it has none." in confirm


def test_api_tokens_are_shown_once_and_work_until_revoked(app, client):
    response = form_post(client, "/tokens", "/tokens", label="ci")
    html = response.get_data(as_text=True)
    token = re.search(r'id="new-token">(whr_[^<]+)<', html).group(1)
    assert token not in client.get("/tokens").get_data(as_text=True)
    app.config["RECEIVER_ADMIN_PASSWORD_HASH"] = "scrypt:dummy"  # logins now required
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/inboxes", headers=bearer).status_code == 200
    app.config["RECEIVER_ADMIN_PASSWORD_HASH"] = None
    revoke = re.search(
        r'action="(/tokens/\d+/revoke)"', client.get("/tokens").get_data(as_text=True)
    )
    assert form_post(client, "/tokens", revoke.group(1)).status_code == 303
    app.config["RECEIVER_ADMIN_PASSWORD_HASH"] = "scrypt:dummy"
    assert client.get("/api/inboxes", headers=bearer).status_code == 401


# Access without a password: this machine only.


@pytest.mark.parametrize("path", ["/", "/inboxes/default", "/tokens", "/api/inboxes"])
def test_other_machines_get_403_naming_the_setting_when_no_password(client, path):
    response = client.get(path, environ_base=REMOTE)
    assert response.status_code == 403
    assert "RECEIVER_ADMIN_PASSWORD" in response.get_data(as_text=True)


def test_capture_urls_and_health_stay_open_to_other_machines(client):
    assert client.post("/hooks/default", environ_base=REMOTE).status_code == 200
    assert client.get("/healthz", environ_base=REMOTE).status_code == 200


def test_a_local_proxy_forwarding_someone_else_is_not_this_machine(client):
    response = client.get("/", headers={"X-Forwarded-For": "203.0.113.5"})
    assert response.status_code == 403


# Access with a password: log in.


@pytest.fixture
def password_app(app):
    access.set_password(app, "correct horse")
    return app


def test_pages_redirect_to_login_and_login_lets_people_in(password_app):
    client = password_app.test_client()
    response = client.get("/inboxes/default", environ_base=REMOTE)
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/inboxes/default"
    page = client.get("/login?next=/inboxes/default", environ_base=REMOTE)
    wrong = client.post(
        "/login?next=/inboxes/default",
        data={"csrf_token": token_of(page.get_data(as_text=True)), "password": "nope"},
        environ_base=REMOTE,
    )
    assert wrong.status_code == 401
    assert "not right" in wrong.get_data(as_text=True)
    right = client.post(
        "/login?next=/inboxes/default",
        data={"csrf_token": token_of(page.get_data(as_text=True)), "password": "correct horse"},
        environ_base=REMOTE,
    )
    assert right.status_code == 303
    assert right.headers["Location"] == "/inboxes/default"
    assert client.get("/inboxes/default", environ_base=REMOTE).status_code == 200
    logout_token = token_of(client.get("/", environ_base=REMOTE).get_data(as_text=True))
    client.post("/logout", data={"csrf_token": logout_token}, environ_base=REMOTE)
    assert client.get("/inboxes/default", environ_base=REMOTE).status_code == 302


def log_in(client, password="correct horse"):
    page = client.get("/login", environ_base=REMOTE).get_data(as_text=True)
    response = client.post(
        "/login", data={"csrf_token": token_of(page), "password": password}, environ_base=REMOTE
    )
    assert response.status_code == 303


def test_a_login_holds_on_every_worker_and_ends_when_the_password_changes(
    another_app, password_app
):
    # gunicorn's workers each build the app: each hashes the password with its own salt.
    other_worker = another_app(RECEIVER_ADMIN_PASSWORD="correct horse")
    client = password_app.test_client()
    log_in(client)
    cookie = client.get_cookie("session").value
    other = other_worker.test_client()
    other.set_cookie("session", cookie)
    assert other.get("/inboxes/default", environ_base=REMOTE).status_code == 200
    restarted_with_new_password = another_app(RECEIVER_ADMIN_PASSWORD="new horse")
    stale = restarted_with_new_password.test_client()
    stale.set_cookie("session", cookie)
    assert stale.get("/inboxes/default", environ_base=REMOTE).status_code == 302


def test_login_never_redirects_off_site(password_app):
    client = password_app.test_client()
    page = client.get("/login").get_data(as_text=True)
    response = client.post(
        "/login?next=//evil.example/",
        data={"csrf_token": token_of(page), "password": "correct horse"},
    )
    assert response.headers["Location"] == "/"


def test_login_attempts_are_rate_limited(password_app):
    client = password_app.test_client()
    token = token_of(client.get("/login").get_data(as_text=True))
    statuses = [
        client.post("/login", data={"csrf_token": token, "password": f"guess{i}"}).status_code
        for i in range(6)
    ]
    assert statuses == [401] * 5 + [429]
    blocked = client.post("/login", data={"csrf_token": token, "password": "correct horse"})
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) > 0


@pytest.mark.parametrize("given", [" 127.0.0.1 ", None])
def test_a_login_lockout_can_be_lifted_from_the_command_line(password_app, given):
    client = password_app.test_client()
    token = token_of(client.get("/login").get_data(as_text=True))
    for i in range(5):
        client.post("/login", data={"csrf_token": token, "password": f"guess{i}"})
    login = {"csrf_token": token, "password": "correct horse"}
    assert client.post("/login", data=login).status_code == 429
    runner = password_app.test_cli_runner()
    other = runner.invoke(args=["login", "unblock", "2001:DB8::1"])
    assert other.output == (
        "2001:db8::1 is not locked out; its failed logins, if any, are forgotten.\n"
    )
    for wrong in ("", "not-an-address"):
        refused = runner.invoke(args=["login", "unblock", wrong])
        assert refused.exit_code != 0
        assert "is not an IP address" in refused.output
    assert client.post("/login", data=login).status_code == 429
    result = runner.invoke(args=["login", "unblock", *([given] if given else [])])
    assert result.exit_code == 0, result.output
    assert result.output == (
        "Lifted the lockout of 127.0.0.1: it may try to log in again now.\n"
        if given
        else "Forgot 5 failed logins: every address may try to log in again now.\n"
    )
    assert client.post("/login", data=login).status_code == 303


ANOTHER_WORKER = """
import re, sys
sys.path.insert(0, "tests")
from conftest import make_app
from receiver import access
app = make_app(sys.argv[1])
access.set_password(app, "correct horse")
client = app.test_client()
token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True))
for i in range(4):
    data = {"csrf_token": token.group(1), "password": f"guess{i}"}
    print(client.post("/login", data=data).status_code)
"""


def test_failed_logins_are_counted_across_workers(password_app, database_url):
    """Each gunicorn worker (or app server) is a process of its own: failed
    logins are counted in the database, so the fifth failure locks the
    address out on every one of them, wherever the first four happened."""
    elsewhere = subprocess.run(
        [sys.executable, "-c", ANOTHER_WORKER, str(database_url)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert elsewhere.stdout.split() == ["401"] * 4, elsewhere.stderr
    client = password_app.test_client()
    token = token_of(client.get("/login").get_data(as_text=True))
    fifth = client.post("/login", data={"csrf_token": token, "password": "guess4"})
    assert fifth.status_code == 401
    blocked = client.post("/login", data={"csrf_token": token, "password": "correct horse"})
    assert blocked.status_code == 429
    # Another address is not held back.
    other = {"REMOTE_ADDR": "127.0.0.2"}
    token = token_of(client.get("/login", environ_base=other).get_data(as_text=True))
    right = client.post(
        "/login", data={"csrf_token": token, "password": "correct horse"}, environ_base=other
    )
    assert right.status_code == 303


def test_api_needs_a_token_when_a_password_is_set(password_app):
    client = password_app.test_client()
    response = client.get("/api/inboxes")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.get_json()["error"]["code"] == "login_required"


def test_metrics_take_a_bearer_token_when_a_password_is_set(password_app):
    client = password_app.test_client()
    refused = client.get("/metrics")
    assert refused.status_code == 401
    assert refused.get_json()["error"]["code"] == "login_required"
    password_app.config["RECEIVER_ADMIN_PASSWORD_HASH"] = None  # to make a token
    response = form_post(client, "/tokens", "/tokens", label="prometheus")
    token = re.search(r'id="new-token">(whr_[^<]+)<', response.get_data(as_text=True)).group(1)
    password_app.config["RECEIVER_ADMIN_PASSWORD_HASH"] = "scrypt:dummy"
    scrape = password_app.test_client().get(
        "/metrics", headers={"Authorization": f"Bearer {token}"}
    )
    assert scrape.status_code == 200
    assert "receiver_captures_total" in scrape.get_data(as_text=True)


def test_the_login_cookie_is_not_sent_on_cross_site_requests(password_app):
    client = password_app.test_client()
    page = client.get("/login")
    response = client.post(
        "/login",
        data={"csrf_token": token_of(page.get_data(as_text=True)), "password": "correct horse"},
    )
    assert response.status_code == 303
    cookie = response.headers["Set-Cookie"]
    assert "SameSite=Lax" in cookie and "HttpOnly" in cookie


# CLI


def test_cli_set_copy_and_purge(app, runner, client):
    result = runner.invoke(args=["inbox", "set", "default", "response_status=201", "cors=true"])
    assert result.exit_code == 0, result.output
    assert "response_status: 201" in result.output
    bad = runner.invoke(args=["inbox", "set", "default", "response_status=99"])
    assert bad.exit_code != 0 and "response_status" in bad.output
    assert runner.invoke(args=["inbox", "set", "default", "nonsense"]).exit_code != 0
    assert runner.invoke(args=["inbox", "copy-config", "default", "copy"]).exit_code == 0
    assert api_inbox(client, "copy")["response_status"] == 201
    # Copied onto an inbox with secrets of its own: said, as they are gone.
    added = ["inbox", "add-secret", "copy", "--label", "own", "--secret", "k-own-123456"]
    assert runner.invoke(args=added).exit_code == 0
    again = runner.invoke(args=["inbox", "copy-config", "default", "copy"])
    assert "The secret it had was replaced by those of 'default'." in again.output
    assert api_inbox(client, "copy")["secrets"] == []

    old = client.post("/hooks/default").get_json()["id"]
    fresh = client.post("/hooks/default").get_json()["id"]
    with app.app_context():
        from receiver.extensions import db
        from receiver.models import Capture

        db.session.get(Capture, old).received_at = storage.utcnow().replace(year=2000)
        db.session.commit()
    runner.invoke(args=["inbox", "set", "default", "retention_days=30"])
    result = runner.invoke(args=["purge"])
    assert "default: purged 1 captures older than 30 days" in result.output
    assert client.get(f"/api/captures/{old}").status_code == 404
    assert client.get(f"/api/captures/{fresh}").status_code == 200
    counts = client.get("/inboxes/default").get_data(as_text=True)
    assert re.search(r"All</span>\s*<span class=\"count\">1<", counts)


def test_retention_also_applies_as_captures_arrive(app, client):
    client.post("/hooks/default")
    old = client.post("/hooks/default").get_json()["id"]
    with app.app_context():
        from receiver.extensions import db
        from receiver.models import Capture

        db.session.get(Capture, old).received_at = storage.utcnow().replace(year=2000)
        inbox = storage.find_inbox("default")
        inbox.retention_days = 1
        db.session.commit()
    storage._last_purge.clear()
    client.post("/hooks/default")
    assert client.get(f"/api/captures/{old}").status_code == 404


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "rebound.attacker.example:8000"},  # DNS rebinding: a foreign name on 127.0.0.1
        {"X-Real-IP": "203.0.113.5"},
        {"X-Receiver-Forwarded": "1"},  # this receiver forwarding a sender's request
    ],
)
def test_loopback_requests_that_are_not_from_this_machine_get_403(client, headers):
    assert client.get("/api/inboxes", headers=headers).status_code == 403
    assert client.get("/inboxes/default", headers=headers).status_code == 403


@pytest.mark.parametrize("host", ["localhost:8000", "127.0.0.1:8000", "[::1]:8000"])
def test_local_names_are_this_machine(client, host):
    assert client.get("/api/inboxes", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize(
    "target", ["//evil.example/", "/%09/evil.example/x", "/\\evil.example", "https://evil.example"]
)
def test_login_next_cannot_leave_the_site(password_app, target):
    client = password_app.test_client()
    page = client.get("/login").get_data(as_text=True)
    response = client.post(
        "/login",
        query_string={"next": target.replace("%09", "\t")},
        data={"csrf_token": token_of(page), "password": "correct horse"},
    )
    assert response.headers["Location"] == "/"


def test_readiness_failure_names_no_database_details(app, client, monkeypatch):
    from receiver import ops

    def down(*_args, **_kwargs):
        raise RuntimeError("could not connect to server at db.internal:5432 as admin")

    monkeypatch.setattr(ops.db.session, "execute", down)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "db.internal" not in response.get_data(as_text=True)


def test_csv_export_keeps_sender_formulas_as_text(client):
    client.post("/hooks/default", data={"c2a": '=HYPERLINK("http://evil.example","x")'})
    csv_text = client.get("/api/inboxes/default/export?format=csv").get_data(as_text=True)
    assert "'=HYPERLINK" in csv_text
    assert ',"=HYPERLINK' not in csv_text


def test_ids_beyond_the_database_range_are_404_not_500(client):
    huge = 2**31 + 5
    assert client.delete(f"/api/inboxes/default/secrets/{huge}").status_code == 404
    page = "/tokens"
    response = form_post(client, page, f"/tokens/{huge}/revoke")
    assert response.status_code == 404


def test_a_delivery_neither_reads_nor_touches_the_dashboard_session(password_app):
    client = password_app.test_client()
    page = client.get("/login", environ_base=REMOTE)
    client.post(
        "/login",
        data={"csrf_token": token_of(page.get_data(as_text=True)), "password": "correct horse"},
        environ_base=REMOTE,
    )
    # The logged-in browser's cookie goes along with a delivery to a capture URL.
    delivery = client.post("/hooks/default", data={"event": "LEAD_CREATED"}, environ_base=REMOTE)
    assert delivery.status_code == 200
    assert "Set-Cookie" not in delivery.headers
    assert "Cookie" not in delivery.headers.get("Vary", "")
    assert client.get("/inboxes/default", environ_base=REMOTE).status_code == 200
    # A cookie no one could have signed is kept as a header, not verified.
    stranger = password_app.test_client()
    stranger.set_cookie("session", "not-a-signed-session")
    answer = stranger.post("/hooks/default", data={"event": "LEAD_CREATED"})
    assert answer.status_code == 200
    assert "Set-Cookie" not in answer.headers
    stored = client.get("/api/captures/" + answer.headers["X-Capture-Id"], environ_base=REMOTE)
    assert ["Cookie", "session=not-a-signed-session"] in stored.get_json()["headers"]


@pytest.mark.parametrize(
    ("path", "area"),
    [
        ("/hooks/default", "hooks"),
        ("/hooks/default/scan/QR_CODE_SCANNED", "hooks"),
        ("/api/inboxes", "api"),
        ("/healthz", "ops"),
        ("/metrics", "ops"),
        ("/static/app.css", "other"),
        ("/", "pages"),
        ("/inboxes/default", "pages"),
        ("/hooksmith", "pages"),
    ],
)
def test_request_latency_is_labelled_by_the_part_of_the_app(path, area):
    from receiver import metrics

    assert metrics.area(path) == area


@pytest.mark.parametrize(
    "command",
    [["inbox", "list"], ["inbox", "create", "first"], ["token", "create", "ci"], ["purge"]],
)
def test_commands_work_on_a_database_the_server_never_set_up(tmp_path, another_app, command):
    app = another_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'new.sqlite3'}")
    result = app.test_cli_runner().invoke(args=command)
    assert result.exit_code == 0, result.output
    listed = app.test_cli_runner().invoke(args=["inbox", "list"])
    assert listed.output.startswith("default\t")


def test_saving_the_settings_page_does_not_set_the_failure_countdown_back(client):
    client.patch("/api/inboxes/default", json={"fail_remaining": 1})
    page = client.get("/inboxes/default/settings").get_data(as_text=True)
    shown = re.search(r'name="fail_remaining_shown" value="(\d+)"', page).group(1)
    assert client.post("/hooks/default").status_code == 500  # the countdown moves on: 0
    assert client.post("/hooks/default").status_code == 200
    fields = {"slug": "default", "fail_status": "500", "response_body": "changed"}
    saved = form_post(
        client,
        "/inboxes/default/settings",
        "/inboxes/default/settings",
        fail_remaining=shown,
        fail_remaining_shown=shown,
        **fields,
    )
    assert saved.status_code == 303
    assert api_inbox(client)["fail_remaining"] == 0
    assert client.post("/hooks/default").status_code == 200
    # Changed on the page, it is set.
    form_post(
        client,
        "/inboxes/default/settings",
        "/inboxes/default/settings",
        fail_remaining="2",
        fail_remaining_shown=shown,
        **fields,
    )
    assert api_inbox(client)["fail_remaining"] == 2


@pytest.mark.parametrize(
    ("app_config", "url", "says"),
    [
        ({}, "http://127.0.0.1:5000/in", "Outbound requests (replay, forwarding) are disabled"),
        ({"RECEIVER_OUTBOUND_ENABLED": True}, "http://10.1.2.3/in", "RECEIVER_OUTBOUND_ALLOW"),
        ({"RECEIVER_OUTBOUND_ENABLED": True}, "http://127.0.0.1:5000/in", None),
    ],
)
def test_the_settings_page_says_when_the_forward_url_is_refused_now(client, url, says):
    client.patch("/api/inboxes/default", json={"forward_url": url})
    page = client.get("/inboxes/default/settings").get_data(as_text=True)
    assert api_inbox(client)["forward_url"] == url  # kept: the server's settings may change
    if says is None:
        assert "Nothing is forwarded now" not in page
    else:
        assert "Nothing is forwarded now: " in page and says in page
