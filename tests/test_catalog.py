"""The webhook catalogue: data, timestamp reading and delivery checks (receiver/catalog.py)."""

from datetime import UTC, datetime, timedelta

import pytest

from receiver.catalog import (
    DOWNLOAD_VALID_FOR,
    EVENTS,
    STANDARD_PARAMS,
    UNKNOWN,
    check,
    download_expiry,
    event_type,
    location,
    parse_timestamp,
    sample_delivery,
)

NOW = datetime(2025, 11, 27, 17, 0, tzinfo=UTC)
NOW_UNIX = 1764262800  # NOW in unix seconds
STANDARD = [p.name for p in STANDARD_PARAMS]


def delivery(event: str, changes: dict[str, str | None] | None = None) -> dict[str, list[str]]:
    """The event's sample delivery at NOW, with `changes` applied (None drops a parameter)."""
    params = {name: [value] for name, value in sample_delivery(event, now=NOW)}
    params["secrettoken"] = ["s3cret-key"]
    for name, value in (changes or {}).items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = [value]
    return params


def codes(findings, level: str | None = None) -> list[tuple[str, str | None]]:
    return [(f.code, f.param) for f in findings if level is None or f.level == level]


def problems(findings) -> list[tuple[str, str | None]]:
    return [(f.code, f.param) for f in findings if f.level in ("error", "warning")]


# --- the data ---


def test_nine_documented_events_in_documented_order():
    assert list(EVENTS) == [
        "QR_CODE_CREATED",
        "QR_CODE_SCANNED",
        "VOUCHER_CREATED",
        "VOUCHER_UPDATED",
        "VOUCHER_REDEEMED",
        "VOUCHER_EXPIRED",
        "LEAD_CREATED",
        "CALL_2_ACTION_BUTTON_CLICKED",
        "JOB_FINISHED",
    ]
    assert all(name == event.name for name, event in EVENTS.items())


def test_standard_params_are_all_required():
    assert STANDARD == ["event", "timestamp", "user", "code", "secrettoken"]
    assert not any(p.optional for p in STANDARD_PARAMS)
    assert STANDARD_PARAMS[1].kind == "timestamp"
    assert STANDARD_PARAMS[4].kind == "text"


def test_voucher_created_shares_voucher_updated_fields():
    assert EVENTS["VOUCHER_CREATED"].params == EVENTS["VOUCHER_UPDATED"].params
    required = [p.name for p in EVENTS["VOUCHER_UPDATED"].params if not p.optional]
    assert required == ["title", "description", "type"]


def test_enum_choices_as_documented():
    redeemed = {p.name: p for p in EVENTS["VOUCHER_REDEEMED"].params}
    assert [v for v, _ in redeemed["status"].choices] == [
        "SUCCESS",
        "VOUCHER_ALREADY_REDEEMED",
        "VOUCHER_EXPIRED",
        "QUOTA_EXCEEDED",
    ]
    assert dict(redeemed["type"].choices) == {
        "UNIQUEIP": "Voucher can be redeemed once per IP",
        "UNIQUEID": "Voucher can be redeemed once",
    }


@pytest.mark.parametrize("name", EVENTS)
def test_all_params_is_standard_then_own(name):
    event = EVENTS[name]
    assert event.all_params == STANDARD_PARAMS + event.params


# --- sample deliveries ---


@pytest.mark.parametrize("name", EVENTS)
def test_sample_delivery_checks_clean(name):
    assert check(name, delivery(name), received_at=NOW) == []


@pytest.mark.parametrize("name", EVENTS)
def test_sample_delivery_lists_every_param_in_catalog_order(name):
    sample = sample_delivery(name, now=NOW)
    assert [n for n, _ in sample] == [p.name for p in EVENTS[name].all_params]
    values = dict(sample)
    assert values["event"] == name
    assert values["timestamp"] == str(NOW_UNIX)
    assert values["secrettoken"] == ""
    assert all(values[p.name] for p in EVENTS[name].params)


def test_sample_delivery_for_a_future_event_has_standard_params_only():
    sample = sample_delivery("QR_CODE_DELETED", now=NOW)
    assert [n for n, _ in sample] == STANDARD
    assert dict(sample)["event"] == "QR_CODE_DELETED"


# --- missing parameters ---

REQUIRED = [
    (event.name, param.name)
    for event in EVENTS.values()
    for param in event.all_params
    if not param.optional
]
OPTIONAL = [
    (event.name, param.name)
    for event in EVENTS.values()
    for param in event.params
    if param.optional
]


@pytest.mark.parametrize(("name", "param"), REQUIRED)
def test_dropping_a_required_param_is_an_error(name, param):
    code = "missing_standard" if param in STANDARD else "missing_param"
    for changed in (None, "", "   "):  # absent, empty and blank all count as missing
        findings = check(name, delivery(name, {param: changed}), received_at=NOW)
        assert problems(findings) == [(code, param)]
        assert findings[0].level == "error"
        # The message tells a field not sent from one sent without a value.
        said = "is missing" if changed is None else "is sent empty"
        assert f"{param} {said};" in findings[0].message


@pytest.mark.parametrize(("name", "param"), OPTIONAL)
def test_dropping_an_optional_param_is_fine(name, param):
    # GPS coordinates come as a pair: dropping one alone is tested below.
    dropped = ("lng", "lat") if param in ("lng", "lat") else (param,)
    params = delivery(name, dict.fromkeys(dropped))
    assert check(name, params, received_at=NOW) == []


def test_empty_value_list_counts_as_missing():
    params = delivery("LEAD_CREATED")
    params["email"] = []
    assert problems(check("LEAD_CREATED", params, received_at=NOW)) == [("missing_param", "email")]


# --- wrong values ---

BAD_VALUES = [
    ("QR_CODE_SCANNED", "redirects", "abc", "not_integer"),
    ("QR_CODE_SCANNED", "redirects", "-1", "not_integer"),
    ("QR_CODE_SCANNED", "redirects", "4.0", "not_integer"),
    ("QR_CODE_SCANNED", "visitors", "١٢", "not_integer"),  # non-ASCII digits
    ("QR_CODE_SCANNED", "lat", "90.0001", "out_of_range"),
    ("QR_CODE_SCANNED", "lat", "-91", "out_of_range"),
    ("QR_CODE_SCANNED", "lat", "nan", "not_number"),
    ("QR_CODE_SCANNED", "lng", "180.5", "out_of_range"),
    ("QR_CODE_SCANNED", "lng", "13,4", "not_number"),
    ("QR_CODE_SCANNED", "lng/lat", "13.4", "bad_lnglat"),
    ("QR_CODE_SCANNED", "lng/lat", "1,2,3", "bad_lnglat"),
    ("QR_CODE_SCANNED", "lng/lat", "200,50", "out_of_range"),
    ("QR_CODE_SCANNED", "lng/lat", "13.4,95", "out_of_range"),
    ("QR_CODE_SCANNED", "lng/lat", "east,north", "not_number"),
    ("VOUCHER_CREATED", "type", "ONCE", "bad_choice"),
    ("VOUCHER_UPDATED", "type", "uniqueip", "bad_choice"),
    ("VOUCHER_UPDATED", "website", "example.com/offer", "bad_url"),
    ("VOUCHER_UPDATED", "website", "ftp://example.com/offer", "bad_url"),
    ("VOUCHER_UPDATED", "website", "https://", "bad_url"),
    ("VOUCHER_UPDATED", "website", "http://[::1/offer", "bad_url"),
    ("VOUCHER_UPDATED", "website", "https://exa mple.com/", "bad_url"),
    ("VOUCHER_UPDATED", "validfrom", "31.12.2025", "bad_date"),
    ("VOUCHER_UPDATED", "validto", "2025-02-30", "bad_date"),
    ("VOUCHER_REDEEMED", "status", "OK", "bad_choice"),
    ("VOUCHER_REDEEMED", "status", "success", "bad_choice"),
    ("VOUCHER_REDEEMED", "type", "UNIQUE", "bad_choice"),
    ("LEAD_CREATED", "email", "jane", "bad_email"),
    ("LEAD_CREATED", "email", "@example.com", "bad_email"),
    ("LEAD_CREATED", "email", "jane@localhost", "bad_email"),
    ("LEAD_CREATED", "email", "jane doe@example.com", "bad_email"),
    ("LEAD_CREATED", "email", "a@b@example.com", "bad_email"),
    ("LEAD_CREATED", "email", "jane@example..com", "bad_email"),
    ("CALL_2_ACTION_BUTTON_CLICKED", "c2a", "javascript:alert(1)", "bad_url"),
    ("CALL_2_ACTION_BUTTON_CLICKED", "c2a", "/offer", "bad_url"),
    ("JOB_FINISHED", "download", "not a url", "bad_url"),
]


@pytest.mark.parametrize(("name", "param", "value", "code"), BAD_VALUES)
def test_bad_value_yields_its_code(name, param, value, code):
    findings = check(name, delivery(name, {param: value}), received_at=NOW)
    assert problems(findings) == [(code, param)]
    assert findings[0].level == "error"


GOOD_VALUES = [
    ("QR_CODE_SCANNED", "visitors", "0"),
    ("QR_CODE_SCANNED", "redirects", " 42 "),
    ("QR_CODE_SCANNED", "lat", "-90"),
    ("QR_CODE_SCANNED", "lng", "180"),
    ("QR_CODE_SCANNED", "lng", "-0.1276"),
    ("QR_CODE_SCANNED", "lng/lat", "13.4/52.5"),
    ("QR_CODE_SCANNED", "lng/lat", "13.4; 52.5"),
    ("QR_CODE_SCANNED", "lng/lat", "-180,-90"),
    ("VOUCHER_UPDATED", "type", "UNIQUEIP"),
    ("VOUCHER_UPDATED", "website", "HTTP://Example.com"),
    ("VOUCHER_UPDATED", "website", "http://127.0.0.1:8080/offer?x=1#top"),
    ("VOUCHER_UPDATED", "validfrom", "2025-01-01T00:00:00Z"),
    ("VOUCHER_UPDATED", "validfrom", "2025-01-01 08:00:00"),
    ("VOUCHER_UPDATED", "validfrom", "1735689600"),
    ("VOUCHER_REDEEMED", "status", "QUOTA_EXCEEDED"),
    ("LEAD_CREATED", "email", "jane+tag@mail.example.co.uk"),
]


@pytest.mark.parametrize(("name", "param", "value"), GOOD_VALUES)
def test_good_value_passes(name, param, value):
    assert check(name, delivery(name, {param: value}), received_at=NOW) == []


def test_messages_quote_the_bad_value():
    findings = check(
        "QR_CODE_SCANNED", delivery("QR_CODE_SCANNED", {"redirects": "abc"}), received_at=NOW
    )
    assert findings[0].message == "redirects must be a non-negative integer, got 'abc'"


def test_enum_message_hints_at_letter_case():
    params = delivery("VOUCHER_REDEEMED", {"status": "success"})
    (finding,) = check("VOUCHER_REDEEMED", params, received_at=NOW)
    assert "SUCCESS" in finding.message and "letter case" in finding.message


@pytest.mark.parametrize(
    ("validfrom", "validto", "inverted"),
    [
        ("2026-01-01", "2025-12-31", True),
        ("2025-12-31", "2025-12-31", False),
        ("2025-01-01", "2025-12-31", False),
        ("1767225600", "2025-12-31", True),  # 2026-01-01 in unix seconds
        ("2025-12-31T12:00:00+01:00", "2025-12-31 10:00:00", True),
    ],
)
def test_validity_inverted(validfrom, validto, inverted):
    for name in ("VOUCHER_CREATED", "VOUCHER_UPDATED"):
        params = delivery(name, {"validfrom": validfrom, "validto": validto})
        expected = [("validity_inverted", "validfrom")] if inverted else []
        assert problems(check(name, params, received_at=NOW)) == expected


def test_validity_not_compared_when_a_date_is_bad():
    params = delivery("VOUCHER_UPDATED", {"validfrom": "soon", "validto": "2025-12-31"})
    assert problems(check("VOUCHER_UPDATED", params, received_at=NOW)) == [
        ("bad_date", "validfrom")
    ]


def test_visitors_exceeding_redirects_is_suspicious():
    params = delivery("QR_CODE_SCANNED", {"redirects": "3", "visitors": "10"})
    findings = check("QR_CODE_SCANNED", params, received_at=NOW)
    assert codes(findings, "warning") == [("visitors_exceed_redirects", "visitors")]
    params = delivery("QR_CODE_SCANNED", {"redirects": "10", "visitors": "10"})
    assert check("QR_CODE_SCANNED", params, received_at=NOW) == []


# --- locations ---


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"lat": ["52.52"], "lng": ["13.405"]}, (52.52, 13.405)),
        ({"lng/lat": ["13.405,52.52"]}, (52.52, 13.405)),
        ({"lng/lat": ["13.405/52.52"]}, (52.52, 13.405)),
        ({"lng/lat": [" 13.405 ; 52.52 "]}, (52.52, 13.405)),
        ({"lng/lat": ["-74.0060,40.7128"]}, (40.7128, -74.006)),
        ({"lat": ["52.52"], "lng/lat": ["1,2"]}, (2.0, 1.0)),  # lone lat: use the pair
        ({"lat": ["52.52"]}, None),
        ({"lng/lat": ["13.405"]}, None),
        ({"lng/lat": ["52.52,200"]}, None),  # latitude 200 is impossible
        ({"lat": ["95"], "lng": ["13"]}, None),
        ({"lat": ["inf"], "lng": ["13"]}, None),
        ({}, None),
    ],
)
def test_location(params, expected):
    assert location(params) == expected


def test_combined_lnglat_checks_longitude_and_latitude_ranges():
    # Swapped order (lat,lng) with a longitude beyond 90 is caught as a bad latitude.
    params = delivery("QR_CODE_SCANNED", {"lng/lat": "52.52,139.69"})
    (finding,) = check("QR_CODE_SCANNED", params, received_at=NOW)
    assert (finding.code, finding.param) == ("out_of_range", "lng/lat")
    assert "latitude" in finding.message


def test_half_a_location_is_a_warning():
    params = delivery("QR_CODE_SCANNED", {"lng": None})
    assert problems(check("QR_CODE_SCANNED", params, received_at=NOW)) == [
        ("incomplete_location", "lng")
    ]


# --- timestamps ---

TIMESTAMPS = [
    ("1764262800", NOW, "unix seconds", False),
    ("1764262800.5", NOW + timedelta(milliseconds=500), "unix seconds", False),
    (" 1764262800 ", NOW, "unix seconds", False),
    ("0", datetime(1970, 1, 1, tzinfo=UTC), "unix seconds", False),
    ("1764262800123", NOW + timedelta(milliseconds=123), "unix milliseconds", False),
    ("2025-11-27T17:00:00Z", NOW, "ISO 8601", False),
    ("2025-11-27t17:00:00z", NOW, "ISO 8601", False),
    ("2025-11-27T18:00:00+01:00", NOW, "ISO 8601", False),
    ("2025-11-27T12:30:00-0430", NOW, "ISO 8601", False),
    ("2025-11-27 17:00:00+00:00", NOW, "ISO 8601", False),
    ("2025-11-27 17:00:00 UTC", NOW, "ISO 8601", False),
    ("2025-11-27T17:00:00.25Z", NOW + timedelta(milliseconds=250), "ISO 8601", False),
    ("2025-11-27T17:00:00.123456789Z", NOW + timedelta(microseconds=123456), "ISO 8601", False),
    ("2025-11-27T17:00", NOW, "ISO 8601", True),
    ("2025-11-27T17:00:00", NOW, "ISO 8601", True),
    ("2025-11-27 17:00:00", NOW, "date and time", True),
]


@pytest.mark.parametrize(("value", "when", "form", "assumed"), TIMESTAMPS)
def test_parse_timestamp_forms(value, when, form, assumed):
    reading = parse_timestamp(value)
    assert reading.error is None
    assert reading.when == when
    assert reading.when.utcoffset() == timedelta(0)
    assert (reading.form, reading.assumed_utc, reading.value) == (form, assumed, value)


BAD_TIMESTAMPS = [
    ("", "empty"),
    ("   ", "empty"),
    ("yesterday", "not unix seconds"),
    ("nan", "not unix seconds"),
    ("inf", "not unix seconds"),
    ("1e9", "not unix seconds"),
    ("-1764262800", "negative"),
    ("99999999999999999999", "after the year 9999"),
    ("9" * 5000, "too long"),
    ("1969-12-31T23:59:59Z", "before 1970"),
    ("1970-01-01T00:30:00+01:00", "before 1970"),
    ("2025-02-30T10:00:00Z", "not a real date"),
    ("2025-11-27T25:00:00Z", "not a real date"),
    ("2025-11-27T17:00:00+25:00", "impossible UTC offset"),
    ("9999-12-31T23:59:59-01:00", "outside the years"),
    ("2025-11-27", "without a time"),
    ("17:00:00", "not unix seconds"),
    ("１７６４２６２８００", "not unix seconds"),  # full-width digits
]


@pytest.mark.parametrize(("value", "error"), BAD_TIMESTAMPS)
def test_parse_timestamp_rejects(value, error):
    reading = parse_timestamp(value)
    assert (reading.when, reading.form, reading.assumed_utc) == (None, "", False)
    assert error in reading.error


def test_bad_timestamp_is_an_error():
    params = delivery("QR_CODE_CREATED", {"timestamp": "yesterday"})
    findings = check("QR_CODE_CREATED", params, received_at=NOW)
    assert codes(findings) == [("bad_timestamp", "timestamp")]
    assert findings[0].level == "error"


def test_zoneless_timestamp_is_noted():
    params = delivery("QR_CODE_CREATED", {"timestamp": "2025-11-27 17:00:00"})
    findings = check("QR_CODE_CREATED", params, received_at=NOW)
    assert [(f.level, f.code) for f in findings] == [("info", "timestamp_assumed_utc")]


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (timedelta(0), []),
        (-timedelta(minutes=5), []),
        (-timedelta(minutes=5, seconds=1), ["stale_timestamp"]),
        (-timedelta(days=3), ["stale_timestamp"]),
        (timedelta(minutes=1), []),
        (timedelta(minutes=1, seconds=1), ["future_timestamp"]),
        (timedelta(days=365), ["future_timestamp"]),
    ],
)
def test_stale_and_future_boundaries(offset, expected):
    stamp = str(int((NOW + offset).timestamp()))
    params = delivery("QR_CODE_CREATED", {"timestamp": stamp})
    findings = check("QR_CODE_CREATED", params, received_at=NOW)
    assert [f.code for f in findings if f.level == "warning"] == expected


def test_stale_and_future_limits_are_configurable():
    params = delivery("QR_CODE_CREATED", {"timestamp": str(NOW_UNIX - 60)})
    assert check("QR_CODE_CREATED", params, received_at=NOW) == []
    tight = check("QR_CODE_CREATED", params, received_at=NOW, stale_after=timedelta(seconds=30))
    assert codes(tight) == [("stale_timestamp", "timestamp")]
    ahead = delivery("QR_CODE_CREATED", {"timestamp": str(NOW_UNIX + 30)})
    strict = check("QR_CODE_CREATED", ahead, received_at=NOW, future_skew=timedelta(0))
    assert codes(strict) == [("future_timestamp", "timestamp")]


def test_naive_received_at_is_read_as_utc():
    params = delivery("QR_CODE_CREATED")
    assert check("QR_CODE_CREATED", params, received_at=NOW.replace(tzinfo=None)) == []


# --- JOB_FINISHED downloads ---


def test_download_expiry_is_timestamp_plus_30_days():
    assert timedelta(days=30) == DOWNLOAD_VALID_FOR
    assert download_expiry(str(NOW_UNIX)) == datetime(2025, 12, 27, 17, 0, tzinfo=UTC)
    assert download_expiry("2025-11-27T18:00:00+01:00") == datetime(2025, 12, 27, 17, 0, tzinfo=UTC)
    assert download_expiry("garbage") is None
    assert download_expiry("9999-12-31T00:00:00Z") is None


@pytest.mark.parametrize(
    ("age", "expired"),
    [
        (timedelta(0), False),
        (timedelta(days=30) - timedelta(seconds=1), False),
        (timedelta(days=30), True),
        (timedelta(days=45), True),
    ],
)
def test_job_finished_download_expiry(age, expired):
    params = delivery("JOB_FINISHED", {"timestamp": str(NOW_UNIX)})
    findings = check("JOB_FINISHED", params, received_at=NOW + age)
    found = ("download_expired", "download") in codes(findings, "warning")
    assert found is expired


def test_expiry_is_only_a_job_finished_concern():
    params = delivery("QR_CODE_CREATED", {"timestamp": str(NOW_UNIX)})
    findings = check("QR_CODE_CREATED", params, received_at=NOW + timedelta(days=45))
    assert codes(findings) == [("stale_timestamp", "timestamp")]


# --- event types ---


@pytest.mark.parametrize(
    ("params", "path", "expected"),
    [
        ({"event": ["QR_CODE_SCANNED"]}, "", "QR_CODE_SCANNED"),
        ({"event": ["  LEAD_CREATED \n"]}, "", "LEAD_CREATED"),
        ({"event": ["", "JOB_FINISHED"]}, "", "JOB_FINISHED"),  # first non-empty value
        ({"event": ["LEAD_CREATED"]}, "scan/QR_CODE_SCANNED", "LEAD_CREATED"),  # param wins
        ({"event": ["QR_CODE_DELETED"]}, "", "QR_CODE_DELETED"),  # a future event is kept
        ({"event": ["qr_code_scanned"]}, "", "qr_code_scanned"),  # case kept as sent
        ({"event": "VOUCHER_EXPIRED"}, "", "VOUCHER_EXPIRED"),  # flat mapping value
        ({}, "QR_CODE_SCANNED", "QR_CODE_SCANNED"),
        ({}, "scan/qr_code_scanned", "QR_CODE_SCANNED"),
        ({}, "/scan/Voucher_Redeemed//", "VOUCHER_REDEEMED"),
        ({"event": ["", "  "]}, "scan/JOB_FINISHED", "JOB_FINISHED"),
        ({"event": ["\x00\x07"]}, "lead_created", "LEAD_CREATED"),  # nothing printable left
        ({}, "QR_CODE_SCANNED/extra", UNKNOWN),  # only the last segment counts
        ({}, "", UNKNOWN),
        ({}, "///", UNKNOWN),
        ({"user": ["x"]}, "hooks/github", UNKNOWN),
    ],
)
def test_event_type(params, path, expected):
    assert event_type(params, path) == expected


def test_event_type_drops_unprintable_characters():
    assert event_type({"event": ["QR_\x00CODE\n_SCANNED\x1b"]}, "") == "QR_CODE_SCANNED"
    assert event_type({"event": ["Ünïcödé ✓"]}, "") == "Ünïcödé ✓"


def test_event_type_is_capped_at_64_characters():
    result = event_type({"event": ["A" * 10_000]}, "")
    assert result == "A" * 64
    assert event_type({"event": ["B" * 63 + " C"]}, "") == "B" * 63  # no trailing space


# --- extra parameters and undocumented events ---


def test_extra_params_are_listed_as_info():
    params = delivery("LEAD_CREATED", {"phone": "+49 30 1234", "Email": "x@example.com"})
    findings = check("LEAD_CREATED", params, received_at=NOW)
    assert [(f.level, f.code, f.param) for f in findings] == [
        ("info", "extra_param", "phone"),
        ("info", "extra_param", "Email"),
    ]
    assert "did you mean email" in findings[1].message


def test_combined_lnglat_is_not_extra_for_scans_only():
    scan = check("QR_CODE_SCANNED", delivery("QR_CODE_SCANNED"), received_at=NOW)
    assert scan == []  # the sample carries lng, lat and lng/lat
    lead = delivery("LEAD_CREATED", {"lng/lat": "13.4,52.5", "lat": "52.5"})
    assert codes(check("LEAD_CREATED", lead, received_at=NOW)) == [
        ("extra_param", "lng/lat"),
        ("extra_param", "lat"),
    ]


def test_repeated_param_is_noted():
    params = delivery("LEAD_CREATED")
    params["email"] = ["jane@example.com", "other@example.com"]
    findings = check("LEAD_CREATED", params, received_at=NOW)
    assert [(f.level, f.code, f.param) for f in findings] == [("info", "repeated_param", "email")]
    # The first value is the one checked.
    params["email"] = ["not-an-email", "jane@example.com"]
    assert problems(check("LEAD_CREATED", params, received_at=NOW)) == [("bad_email", "email")]


@pytest.mark.parametrize(
    ("name", "level"),
    [
        ("QR_CODE_DELETED", "info"),  # a future event, perhaps
        (UNKNOWN, "info"),  # sent as such
        # One slip away from a documented name: a warning that says which.
        ("qr_code_scanned", "warning"),
        ("QR_CODE_SCANED", "warning"),
    ],
)
def test_undocumented_event_gets_standard_checks_only(name, level):
    params = delivery("QR_CODE_SCANNED", {"redirects": "abc", "whatever": "1"})
    findings = check(name, params, received_at=NOW)
    assert [(f.level, f.code) for f in findings] == [(level, "undocumented_event")]
    assert ("did the sender mean QR_CODE_SCANNED?" in findings[0].message) is (level == "warning")
    params = {"event": [name], "timestamp": ["garbage"], "anything": ["x"]}
    findings = check(name, params, received_at=NOW)
    assert codes(findings) == [
        ("missing_standard", "user"),
        ("missing_standard", "code"),
        ("missing_standard", "secrettoken"),
        ("bad_timestamp", "timestamp"),
        ("undocumented_event", None),
    ]


def test_a_delivery_naming_no_event_is_told_so_once_and_not_as_unknown():
    params = delivery("QR_CODE_SCANNED", {"event": None})
    findings = check(UNKNOWN, params, received_at=NOW)
    assert [(f.code, f.param) for f in findings] == [("missing_standard", "event")]
    assert UNKNOWN not in findings[0].message


@pytest.mark.parametrize(
    "params",
    [
        {},  # an empty GET, a HEAD
        {"action": ["opened"], "repository": ['{"full_name": "acme/app"}']},  # GitHub
        {"type": ["invoice.paid"], "id": ["evt_1"]},  # Stripe
        {"event": ["push"]},  # an event name the platform does not use, nothing else
    ],
    ids=["nothing", "github", "stripe", "other event name"],
)
def test_another_senders_webhook_is_not_held_to_the_platform(params):
    findings = check(event_type(params, ""), params, received_at=NOW)
    assert [(f.level, f.code) for f in findings] == [("info", "not_platform")]


@pytest.mark.parametrize("mark", ["timestamp", "user", "code", "secrettoken"])
def test_one_platform_parameter_or_a_documented_event_is_enough_to_be_checked(mark):
    findings = check(UNKNOWN, {mark: ["x"]}, received_at=NOW)
    assert ("missing_standard", "event") in codes(findings)
    findings = check("LEAD_CREATED", {}, received_at=NOW)
    assert ("missing_standard", "timestamp") in codes(findings)


# --- robustness ---

NASTY = [
    "",
    " ",
    "\x00",
    "\ud800",  # lone surrogate
    "🎉" * 1000,
    "9" * 100_000,
    "-" * 5000,
    "1," * 5000,
    "@" * 5000,
    "a@" + "b" * 50_000,
    "http://" + "[" * 100,
    "http://example.com:99999999/",
    "2025-11-27T17:00:00+99:99",
    "0000-00-00 00:00:00",
    "1e308",
    "-0",
    ".",
]


@pytest.mark.parametrize("name", [*EVENTS, UNKNOWN])
def test_check_never_raises(name):
    params_names = {p.name for e in EVENTS.values() for p in e.all_params}
    for value in NASTY:
        params = {n: [value] for n in params_names}
        findings = check(name, params, received_at=NOW)
        assert all(f.level in ("error", "warning", "info") for f in findings)
        assert all(len(f.message) < 500 for f in findings)  # values are quoted shortened
        location(params)
        event_type(params, value)
        parse_timestamp(value)
        download_expiry(value)
    assert check(name, {}, received_at=NOW)
    assert check(name, {"event": []}, received_at=NOW)
    assert check(name, {value: [value] for value in NASTY}, received_at=NOW)


def test_secrettoken_value_never_appears_in_messages():
    params = delivery("LEAD_CREATED", {"timestamp": "garbage"})
    params["secrettoken"] = ["TOPSECRET", "TOPSECRET2"]
    findings = check("LEAD_CREATED", params, received_at=NOW)
    assert ("repeated_param", "secrettoken") in codes(findings)
    assert not any("TOPSECRET" in f.message for f in findings)
    # Verification holds every value to the expected keys, not the first one.
    repeated = next(f for f in findings if f.code == "repeated_param")
    assert "verified only if every value is an expected key" in repeated.message
