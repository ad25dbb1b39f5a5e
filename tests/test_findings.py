"""What the receiver tells about a delivery beyond its bytes: duplicates and checks."""

from __future__ import annotations

import time

import pytest

from receiver import storage

DELIVERY = {
    "event": "VOUCHER_REDEEMED",
    "timestamp": "1764262800",
    "user": "alice",
    "code": "V1",
    "status": "SUCCESS",
    "type": "UNIQUEID",
    "uniqueid": "U-1",
}


def post(client, inbox="default", **changes):
    response = client.post(f"/hooks/{inbox}", data={**DELIVERY, **changes})
    return client.get(f"/api/captures/{response.get_json()['id']}").get_json()


def test_a_redelivery_is_flagged_as_a_likely_duplicate_of_the_first(client):
    first = post(client)
    second = post(client)
    third = post(client)
    assert first["duplicate_of"] is None
    assert second["duplicate_of"] == first["id"]
    assert third["duplicate_of"] == first["id"]
    html = client.get(f"/inboxes/default/captures/{second['id']}").get_data(as_text=True)
    assert f"likely duplicate of #{first['id']}" in html


@pytest.mark.parametrize(
    "changes",
    [
        {"uniqueid": "U-2"},
        {"timestamp": "1764262801"},
        {"code": "V2"},
        {"event": "VOUCHER_EXPIRED"},
        {"couponnumber": "C-9"},
        # Same code and second, but another redemption.
        {"status": "VOUCHER_ALREADY_REDEEMED"},
        {"eancode": "4006381333931"},
    ],
)
def test_a_different_delivery_is_not_a_duplicate(client, changes):
    post(client)
    assert post(client, **changes)["duplicate_of"] is None


def test_a_redelivery_with_another_key_is_still_a_duplicate(client):
    first = post(client, secrettoken="old-key-0123456789")
    assert post(client, secrettoken="new-key-9876543210")["duplicate_of"] == first["id"]


def test_a_genuine_delivery_is_never_a_duplicate_of_a_forgery_sent_before_it(client, runner):
    key = "real-key-0123456789"
    result = runner.invoke(args=["inbox", "add-secret", "default", "--label", "p", "--secret", key])
    assert result.exit_code == 0, result.output
    forged = post(client, secrettoken="guessed-key-000000")
    unsigned = post(client)
    genuine = post(client, secrettoken=key)
    assert genuine["secret"]["verdict"] == "verified"
    assert genuine["duplicate_of"] is None
    # Forgeries repeating each other are still said to.
    assert unsigned["duplicate_of"] == forged["id"]
    # And a genuine redelivery is a duplicate of the genuine first.
    assert post(client, secrettoken=key)["duplicate_of"] == genuine["id"]


def test_duplicates_are_per_inbox(app, client):
    with app.app_context():
        storage.create_inbox("other")
    post(client)
    assert post(client, inbox="other")["duplicate_of"] is None


def test_a_delivery_without_timestamp_is_never_called_a_duplicate(client):
    post(client, timestamp="")
    assert post(client, timestamp="")["duplicate_of"] is None


def test_findings_are_listed_on_the_capture_and_counted_in_the_list(client):
    stored = post(client, status="MAYBE", timestamp=str(int(time.time()) - 3600))
    codes = {finding["code"] for finding in stored["findings"]}
    assert {"bad_choice", "stale_timestamp", "missing_standard"} <= codes
    page = client.get(f"/inboxes/default/captures/{stored['id']}").get_data(as_text=True)
    assert 'data-code="bad_choice"' in page
    assert 'data-code="stale_timestamp"' in page
    listing = client.get("/inboxes/default").get_data(as_text=True)
    assert f"{stored['finding_count']} ⚠" in listing


def test_a_secret_sent_is_on_no_page(client):
    secret = "s3cr3t-value-on-no-page"
    capture_id = client.post(
        f"/hooks/default?secrettoken={secret}",
        data={"event": "LEAD_CREATED", "secrettoken": secret},
        headers={"X-Echo": secret},
    ).get_json()["id"]
    for url in (
        "/",
        "/inboxes/default",
        f"/inboxes/default/captures/{capture_id}",
        "/inboxes/default/rows?after=0",
        f"/api/captures/{capture_id}",
        f"/api/captures/{capture_id}/raw",
    ):
        assert secret not in client.get(url).get_data(as_text=True), url
