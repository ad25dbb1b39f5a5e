"""The OpenAPI 3.1 description of the API under /api.

Plain data, kept next to the code it describes: receiver/api.py (routes),
receiver/documents.py (the JSON shapes), receiver/inboxes.py (settings and
their bounds), receiver/access.py (who may call) and receiver/errors.py.
tests/test_api.py checks the app against it with schemathesis.
"""

from __future__ import annotations

import copy

from . import inboxes
from .storage import SLUG
from .verification import VERDICTS

# Ids are 64-bit integers (SQLite INTEGER, PostgreSQL bigint).
MAX_ID = 2**63 - 1
SLUG_PATTERN = SLUG.pattern
SINGLE_LINE = r"^[^\r\n]*$"


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(properties: dict, *, required: list[str] | None = None, **extra) -> dict:
    """A closed object: every listed property is required unless `required` says otherwise."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
        **extra,
    }


STRING = {"type": "string"}
INTEGER = {"type": "integer"}
BOOLEAN = {"type": "boolean"}
TIMESTAMP = {
    "type": "string",
    "format": "date-time",
    "description": "UTC with microseconds, e.g. 2024-05-01T12:00:00.123456Z",
}
PAIR = {
    "type": "array",
    "prefixItems": [STRING, STRING],
    "items": False,
    "minItems": 2,
    "maxItems": 2,
}

# --- Settings -----------------------------------------------------------------

HEADER_PAIR = {
    "type": "array",
    "description": "[name, value]. Headers the server sets, replaces or drops are refused "
    "(422): " + ", ".join(sorted(inboxes.RESERVED_HEADERS)) + ".",
    "prefixItems": [
        {"type": "string", "pattern": inboxes.HEADER_NAME.pattern},
        {"type": "string", "maxLength": 4096, "pattern": SINGLE_LINE},
    ],
    "items": False,
    "minItems": 2,
    "maxItems": 2,
}

# What PATCH (and create) accept: inboxes.READERS plus `slug`. Numbers may also be
# sent as digit strings and flags as "true"/"false"/"on"/"off"; these are the JSON forms.
SETTINGS_INPUT = {
    "slug": {
        "type": "string",
        "pattern": SLUG_PATTERN,
        "description": "Renames the inbox (its capture URL moves with it).",
    },
    "enforce_secret": {
        "type": "boolean",
        "description": "Answer a delivery whose secrettoken is not verified (missing, "
        "mismatched, or no key expected yet) with 401 (still recorded).",
    },
    "response_status": {"type": "integer", "minimum": 200, "maximum": 599},
    "response_content_type": {
        "type": ["string", "null"],
        "maxLength": 200,
        "pattern": SINGLE_LINE,
        "description": "A media type (type/subtype, optionally ; name=value parameters). "
        "Empty or null: the default (JSON acknowledgement, or text/plain with a custom body).",
    },
    "response_body": {
        "type": ["string", "null"],
        "maxLength": inboxes.MAX_RESPONSE_BODY,
        "description": "Empty or null: the default JSON acknowledgement.",
    },
    "response_headers": {
        "description": "Extra headers on the answer to senders: [name, value] pairs, or "
        "'Name: value' lines. Empty or null: none.",
        "oneOf": [
            {"type": "array", "items": HEADER_PAIR, "maxItems": 50},
            {"type": "string"},
            {"type": "null"},
        ],
    },
    "response_delay_ms": {"type": "integer", "minimum": 0, "maximum": inboxes.MAX_DELAY_MS},
    "fail_remaining": {
        "type": "integer",
        "minimum": 0,
        "maximum": 1_000_000,
        "description": "Fail this many of the next deliveries with fail_status (counts down).",
    },
    "fail_status": {"type": "integer", "minimum": 200, "maximum": 599},
    "cors": {"type": "boolean", "description": "Answer CORS preflights and allow any origin."},
    "capacity": {
        "type": ["integer", "null"],
        "minimum": 1,
        "maximum": 10_000_000,
        "description": "Oldest captures beyond this are dropped; null: the server's default.",
    },
    "retention_days": {
        "type": ["integer", "null"],
        "minimum": 1,
        "maximum": 36_500,
        "description": "Captures older than this are purged; null: kept.",
    },
    "forward_url": {
        "type": ["string", "null"],
        "format": "uri",
        "maxLength": 2000,
        "pattern": "^https?://[^\\s/?#]+",
        "description": "Every new capture is also sent here (when outbound requests are enabled).",
    },
}

# --- Documents (receiver/documents.py) -----------------------------------------

SECRET = obj(
    {
        "id": INTEGER,
        "label": STRING,
        "user": {
            "type": ["string", "null"],
            "description": "Only deliveries with this `user` parameter verify with it.",
        },
        "fingerprint": {
            "type": "string",
            "description": "A few leading characters and a keyed hash; never the secret.",
        },
        "created_at": TIMESTAMP,
    },
    description="An expected secrettoken; only a keyed hash of it is kept.",
)

INBOX = obj(
    {
        "slug": {"type": "string", "pattern": SLUG_PATTERN},
        "enforce_secret": BOOLEAN,
        "response_status": {"type": "integer", "minimum": 200, "maximum": 599},
        "response_content_type": {"type": ["string", "null"]},
        "response_body": {"type": ["string", "null"]},
        "response_headers": {"type": "array", "items": PAIR},
        "response_delay_ms": {"type": "integer", "minimum": 0},
        "fail_remaining": {"type": "integer", "minimum": 0},
        "fail_status": INTEGER,
        "cors": BOOLEAN,
        "capacity": {"type": ["integer", "null"]},
        "retention_days": {"type": ["integer", "null"]},
        "forward_url": {"type": ["string", "null"]},
        "capture_url": {"type": "string", "format": "uri"},
        "captures": {"type": "integer", "minimum": 0},
        "created_at": TIMESTAMP,
        "secrets": {"type": "array", "items": ref("Secret")},
    },
    description="An inbox: its settings, capture URL, number of captures and secrets.",
)

VERDICT = {"type": "string", "enum": list(VERDICTS)}

CAPTURE_SUMMARY = obj(
    {
        "id": INTEGER,
        "received_at": TIMESTAMP,
        "method": STRING,
        "event_type": STRING,
        "code": STRING,
        "user": STRING,
        "verdict": VERDICT,
        "secret_label": {"type": ["string", "null"]},
        "content_length": {"type": "integer", "minimum": 0},
        "rejected": BOOLEAN,
        "answered_status": INTEGER,
        "finding_count": {"type": "integer", "minimum": 0},
        "duplicate_of": {"type": ["integer", "null"]},
    },
    description="A capture as listed (no body, headers or parameters).",
)

PART = obj(
    {
        "index": INTEGER,
        "name": STRING,
        "filename": {"type": ["string", "null"], "description": "null for a plain field."},
        "content_type": STRING,
        "size": {"type": "integer", "minimum": 0},
    }
)

FINDING = obj(
    {
        "level": {"type": "string", "enum": ["error", "warning", "info"]},
        "code": STRING,
        "param": {"type": ["string", "null"]},
        "message": STRING,
    }
)

CAPTURE = obj(
    {
        "id": INTEGER,
        "inbox": STRING,
        "received_at": TIMESTAMP,
        "method": STRING,
        "path": {"type": "string", "description": "Percent-decoded."},
        "raw_path": {
            "type": "string",
            "description": "The path exactly as the request line had it, percent-encoding kept.",
        },
        "subpath": STRING,
        "query_string": {
            "type": "string",
            "description": "The raw bytes read as latin-1 (encode as latin-1 to get them back).",
        },
        "headers": {
            "type": "array",
            "items": PAIR,
            "description": "[name, value] in the order and case sent, repeats kept. HTTP "
            "carries header bytes, not text: each value is its bytes read as latin-1 (encode "
            "as latin-1, then decode as UTF-8, for a sender's UTF-8).",
        },
        "content_type": STRING,
        "content_length": {"type": "integer", "minimum": 0},
        "remote_addr": STRING,
        "body_base64": {"type": "string", "contentEncoding": "base64"},
        "body_text": {
            "type": ["string", "null"],
            "description": "The body when it is valid UTF-8, else null.",
        },
        "params": {
            "type": "array",
            "items": obj(
                {
                    "source": {"type": "string", "enum": ["post", "get", "json"]},
                    "name": STRING,
                    "value": STRING,
                }
            ),
        },
        "parts": {"type": "array", "items": ref("Part")},
        "notes": {"type": "object", "additionalProperties": STRING},
        "event_type": STRING,
        "code": STRING,
        "user": STRING,
        "findings": {"type": "array", "items": ref("Finding")},
        "finding_count": {"type": "integer", "minimum": 0},
        "secret": obj(
            {
                "verdict": VERDICT,
                "label": {"type": ["string", "null"]},
                "fingerprint": {"type": ["string", "null"]},
            }
        ),
        "rejected": BOOLEAN,
        "answered_status": INTEGER,
        "duplicate_of": {"type": ["integer", "null"]},
    },
    description="Everything stored about a capture; the secrettoken is masked.",
)

ATTEMPT = obj(
    {
        "id": INTEGER,
        "capture_id": INTEGER,
        "kind": {"type": "string", "enum": ["forward", "replay"]},
        "target": {"type": "string", "description": "The URL sent to (a typed key masked)."},
        "attempt": {"type": "integer", "minimum": 1},
        "started_at": TIMESTAMP,
        "status": {
            "type": ["integer", "null"],
            "description": "The target's status; null when it could not be reached.",
        },
        "latency_ms": {"type": ["number", "null"]},
        "error": {"type": ["string", "null"]},
        "response_headers": {"type": "array", "items": PAIR},
        "response_body_base64": {"type": "string", "contentEncoding": "base64"},
        "response_body_text": {"type": ["string", "null"]},
        "response_body_truncated": BOOLEAN,
    },
    description="One outgoing request made from a capture: a forward or a replay.",
)

STATS = obj(
    {
        "inbox": STRING,
        "total": {"type": "integer", "minimum": 0},
        "event_types": {
            "type": "object",
            "additionalProperties": obj(
                {
                    "total": {"type": "integer", "minimum": 0},
                    "verdicts": {
                        "type": "object",
                        "propertyNames": VERDICT,
                        "additionalProperties": {"type": "integer", "minimum": 0},
                    },
                }
            ),
        },
        "per_minute": {
            "type": "array",
            "minItems": 60,
            "maxItems": 60,
            "description": "The last 60 minutes, oldest first; the last is the current one.",
            "items": obj(
                {
                    "minute": {
                        "type": "string",
                        "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}Z$",
                        "description": "The minute, UTC, e.g. 2024-05-01T12:00Z",
                    },
                    "captures": {"type": "integer", "minimum": 0},
                }
            ),
        },
    }
)

ERROR = obj(
    {
        "error": obj(
            {
                "code": {"type": "string", "description": "e.g. not_found, invalid_setting"},
                "message": STRING,
            }
        )
    }
)

HAR_NAME_VALUE = {
    "type": "object",
    "properties": {"name": STRING, "value": STRING},
    "required": ["name", "value"],
}

HAR = {
    "type": "object",
    "description": "HAR 1.2: one entry per capture, oldest first.",
    "required": ["log"],
    "properties": {
        "log": {
            "type": "object",
            "required": ["version", "creator", "entries"],
            "properties": {
                "version": {"const": "1.2"},
                "creator": {
                    "type": "object",
                    "properties": {"name": STRING, "version": STRING},
                    "required": ["name", "version"],
                },
                "entries": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["startedDateTime", "time", "request", "response"],
                        "properties": {
                            "startedDateTime": STRING,
                            "time": {"type": "number"},
                            "request": {
                                "type": "object",
                                "required": ["method", "url", "headers", "queryString"],
                                "properties": {
                                    "method": STRING,
                                    "url": STRING,
                                    "headers": {"type": "array", "items": HAR_NAME_VALUE},
                                    "queryString": {"type": "array", "items": HAR_NAME_VALUE},
                                    "postData": {
                                        "type": "object",
                                        "required": ["mimeType", "text"],
                                        "properties": {
                                            "mimeType": STRING,
                                            "text": STRING,
                                            "encoding": {"const": "base64"},
                                        },
                                    },
                                },
                            },
                            "response": {
                                "type": "object",
                                "required": ["status"],
                                "properties": {"status": INTEGER},
                            },
                        },
                    },
                },
            },
        }
    },
}

SCHEMAS = {
    "Inbox": INBOX,
    "Secret": SECRET,
    "CaptureSummary": CAPTURE_SUMMARY,
    "Capture": CAPTURE,
    "Part": PART,
    "Finding": FINDING,
    "Stats": STATS,
    "Attempt": ATTEMPT,
    "Error": ERROR,
    "Har": HAR,
    "InboxSettings": {
        "type": "object",
        "description": "Settings to change; those not sent stay as they are. All are checked "
        "before any is kept; an unknown name or a bad value is 422.",
        "properties": SETTINGS_INPUT,
        "additionalProperties": False,
    },
}

# --- Responses --------------------------------------------------------------------

JSON = "application/json"


def json_content(schema: dict) -> dict:
    return {JSON: {"schema": schema}}


def error(description: str) -> dict:
    return {"description": description, "content": json_content(ref("Error"))}


ERRORS = {
    "400": error("Bad input: the body is not a JSON object, or a query parameter is invalid."),
    "401": {
        **error("A password is set and the caller is neither logged in nor sent a valid token."),
        "headers": {
            "WWW-Authenticate": {"required": True, "schema": {"type": "string"}},
        },
    },
    "403": error(
        "No password is set (RECEIVER_ADMIN_PASSWORD) and the caller is not on this machine; "
        "for a replay also: outbound requests are disabled or the target is not allowed "
        "(code outbound_refused)."
    ),
    "404": error("No such inbox, capture, secret or part."),
    "413": error("The body is larger than the server's limit (RECEIVER_MAX_BODY_BYTES)."),
    "415": error(
        "Sent without a token and without a JSON body: only application/json is accepted "
        "(so no other site can make the request with someone's cookie)."
    ),
    "422": error("A setting is invalid (the message names it), or a replay target is unusable."),
}


def responses(ok: dict, *errors: str) -> dict:
    """The success responses plus the named errors; 401 and 403 apply everywhere."""
    answers = dict(ok)
    for code in sorted({"401", "403", *errors}):
        answers[code] = {"$ref": f"#/components/responses/{code}"}
    return answers


def ok_json(description: str, schema: dict, status: str = "200", **extra) -> dict:
    return {status: {"description": description, "content": json_content(schema), **extra}}


NO_CONTENT = {"204": {"description": "Done."}}

DOWNLOAD_HEADERS = {
    "Content-Disposition": {
        "required": True,
        "schema": {"type": "string", "pattern": "^attachment; "},
    },
    "X-Content-Type-Options": {"required": True, "schema": {"const": "nosniff"}},
}


def download(description: str) -> dict:
    return {
        "200": {
            "description": description,
            "headers": DOWNLOAD_HEADERS,
            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
        }
    }


# --- Parameters -------------------------------------------------------------------

PARAMETERS = {
    "slug": {
        "name": "slug",
        "in": "path",
        "required": True,
        "description": "The inbox's name.",
        "schema": {"type": "string", "minLength": 1},
        "example": "default",
    },
    "capture_id": {
        "name": "capture_id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
        "example": 1,
    },
}


def param(name: str) -> dict:
    return {"$ref": f"#/components/parameters/{name}"}


def query(name: str, schema: dict, description: str) -> dict:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


CURSOR = {"type": "integer", "minimum": 0, "maximum": MAX_ID}


def capture_query(max_limit: int) -> list[dict]:
    return [
        query("before", CURSOR, "Only captures with a smaller id (pass `next_before` here)."),
        query("after", CURSOR, "Only captures with a larger id (new arrivals)."),
        query(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": max_limit, "default": 50},
            f"Page size, 1 to {max_limit}.",
        ),
        query("event", STRING, "Only this event type (exact)."),
        query("verdict", VERDICT, "Only this secret verdict."),
        query("method", STRING, "Only this HTTP method (any case)."),
        query("q", STRING, "Text in a parameter, the path or the body (case-insensitive)."),
    ]


def body(schema: dict, *, required: bool = True) -> dict:
    return {"required": required, "content": json_content(schema)}


# --- Paths -----------------------------------------------------------------------


def paths() -> dict:
    from .api import MAX_LIMIT  # api.py imports this module

    return {
        "/api/inboxes": {
            "get": {
                "operationId": "listInboxes",
                "summary": "All inboxes, by name",
                "responses": responses(
                    ok_json(
                        "The inboxes.",
                        obj({"inboxes": {"type": "array", "items": ref("Inbox")}}),
                    )
                ),
            },
            "post": {
                "operationId": "createInbox",
                "summary": "Create an inbox (a random, unguessable name without `slug`)",
                "requestBody": body(ref("InboxSettings"), required=False),
                "responses": responses(
                    ok_json(
                        "Created.",
                        ref("Inbox"),
                        "201",
                        headers={"Location": {"required": True, "schema": {"type": "string"}}},
                    ),
                    "400",
                    "413",
                    "415",
                    "422",
                ),
            },
        },
        "/api/inboxes/{slug}": {
            "parameters": [param("slug")],
            "get": {
                "operationId": "getInbox",
                "summary": "One inbox",
                "responses": responses(ok_json("The inbox.", ref("Inbox")), "404"),
            },
            "patch": {
                "operationId": "updateInbox",
                "summary": "Change settings (and the name)",
                "requestBody": body(ref("InboxSettings"), required=False),
                "responses": responses(
                    ok_json("The changed inbox.", ref("Inbox")), "400", "404", "413", "415", "422"
                ),
            },
            "delete": {
                "operationId": "deleteInbox",
                "summary": "Delete the inbox with its captures and secrets",
                "responses": responses(NO_CONTENT, "404"),
            },
        },
        "/api/inboxes/{slug}/copy-config": {
            "parameters": [param("slug")],
            "post": {
                "operationId": "copyConfig",
                "summary": "Copy secrets, enforce mode, response, CORS, capacity and retention "
                "to another inbox (never captures)",
                "requestBody": body(
                    obj(
                        {
                            "to": {"type": "string", "minLength": 1},
                            "create": {
                                "type": "boolean",
                                "description": "Create the target when it does not exist.",
                            },
                        },
                        required=["to"],
                    )
                ),
                "responses": responses(
                    ok_json("The target inbox.", ref("Inbox")), "400", "404", "413", "415", "422"
                ),
            },
        },
        "/api/inboxes/{slug}/secrets": {
            "parameters": [param("slug")],
            "post": {
                "operationId": "addSecret",
                "summary": "Add an expected secrettoken (only a keyed hash is kept)",
                "requestBody": body(
                    obj(
                        {
                            "label": {
                                "type": "string",
                                "minLength": 1,
                                "maxLength": 100,
                                "pattern": r"^[^\r\n]*\S[^\r\n]*$",
                            },
                            "secret": {
                                "type": "string",
                                "minLength": 1,
                                "maxLength": 1000,
                                "description": "The key; spaces around it are left out.",
                            },
                            "user": {
                                "type": ["string", "null"],
                                "maxLength": 200,
                                "pattern": SINGLE_LINE,
                            },
                        },
                        required=["label", "secret"],
                    )
                ),
                "responses": responses(
                    ok_json("Added.", ref("Secret"), "201"), "400", "404", "413", "415", "422"
                ),
            },
        },
        "/api/inboxes/{slug}/secrets/{secret_id}": {
            "parameters": [
                param("slug"),
                {
                    "name": "secret_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                },
            ],
            "delete": {
                "operationId": "removeSecret",
                "summary": "Remove an expected secret",
                "responses": responses(NO_CONTENT, "404"),
            },
        },
        "/api/inboxes/{slug}/captures": {
            "parameters": [param("slug")],
            "get": {
                "operationId": "listCaptures",
                "summary": "Captures, newest first, a page at a time",
                "description": "Pass `next_before` back as `before` for the next page; it is null "
                "when this page is not full.",
                "parameters": capture_query(MAX_LIMIT),
                "responses": responses(
                    ok_json(
                        "A page of captures.",
                        obj(
                            {
                                "captures": {"type": "array", "items": ref("CaptureSummary")},
                                "next_before": {"type": ["integer", "null"]},
                            }
                        ),
                    ),
                    "400",
                    "404",
                ),
            },
            "delete": {
                "operationId": "clearCaptures",
                "summary": "Delete all captures of the inbox",
                "responses": responses(
                    ok_json("How many were deleted.", obj({"deleted": {"type": "integer"}})),
                    "404",
                ),
            },
        },
        "/api/inboxes/{slug}/stats": {
            "parameters": [param("slug")],
            "get": {
                "operationId": "inboxStats",
                "summary": "Captures per event type and verdict, and per minute for the last hour",
                "responses": responses(ok_json("The counts.", ref("Stats")), "404"),
            },
        },
        "/api/inboxes/{slug}/export": {
            "parameters": [param("slug")],
            "get": {
                "operationId": "exportInbox",
                "summary": "The whole inbox, oldest first, streamed",
                "parameters": [
                    query(
                        "format",
                        {"type": "string", "enum": ["ndjson", "csv", "har"], "default": "ndjson"},
                        "ndjson: one Capture document per line (without body_text); csv: one "
                        "row per capture, one column per parameter name; har: HAR 1.2.",
                    )
                ],
                "responses": responses(
                    {
                        "200": {
                            "description": "The export, as an attachment.",
                            "headers": {
                                "Content-Disposition": DOWNLOAD_HEADERS["Content-Disposition"]
                            },
                            "content": {
                                "application/x-ndjson": {"schema": STRING},
                                "text/csv": {"schema": STRING},
                                JSON: {"schema": ref("Har")},
                            },
                        }
                    },
                    "400",
                    "404",
                ),
            },
        },
        "/api/captures/{capture_id}": {
            "parameters": [param("capture_id")],
            "get": {
                "operationId": "getCapture",
                "summary": "Everything stored about a capture",
                "responses": responses(ok_json("The capture.", ref("Capture")), "404"),
            },
            "delete": {
                "operationId": "deleteCapture",
                "summary": "Delete a capture",
                "responses": responses(NO_CONTENT, "404"),
            },
        },
        "/api/captures/{capture_id}/raw": {
            "parameters": [param("capture_id")],
            "get": {
                "operationId": "rawBody",
                "summary": "The exact stored body with its original content type, as an attachment",
                "responses": responses(download("The body."), "404"),
            },
        },
        "/api/captures/{capture_id}/parts/{index}": {
            "parameters": [
                param("capture_id"),
                {
                    "name": "index",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 0, "maximum": MAX_ID},
                },
            ],
            "get": {
                "operationId": "capturePart",
                "summary": "One multipart part's bytes, as an attachment",
                "responses": responses(download("The part."), "404"),
            },
        },
        "/api/captures/{capture_id}/replay": {
            "parameters": [param("capture_id")],
            "post": {
                "operationId": "replayCapture",
                "summary": "Send the capture again to `to` (same method, headers, exact body)",
                "description": "Only when RECEIVER_OUTBOUND_ENABLED is set and the target is "
                "in RECEIVER_OUTBOUND_ALLOW (403 outbound_refused otherwise). The masked "
                "secrettoken can be replaced by `secret`, for this request only.",
                "requestBody": body(
                    obj(
                        {
                            "to": {"type": "string", "minLength": 1},
                            "secret": {"type": ["string", "null"]},
                            "with_subpath": {
                                "type": "boolean",
                                "description": "Append the capture's sub-path to `to`.",
                            },
                        },
                        required=["to"],
                    )
                ),
                "responses": responses(
                    ok_json("The attempt, with what the target answered.", ref("Attempt"), "201"),
                    "400",
                    "404",
                    "413",
                    "415",
                    "422",
                ),
            },
        },
        "/api/captures/{capture_id}/attempts": {
            "parameters": [param("capture_id")],
            "get": {
                "operationId": "captureAttempts",
                "summary": "Forwards and replays made from a capture, oldest first",
                "responses": responses(
                    ok_json(
                        "The attempts.",
                        obj({"attempts": {"type": "array", "items": ref("Attempt")}}),
                    ),
                    "404",
                ),
            },
        },
        "/api/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "responses": responses(
                    ok_json("OpenAPI 3.1.", {"type": "object", "required": ["openapi", "paths"]})
                ),
            },
        },
    }


def document(server: str = "/") -> dict:
    """The document, a fresh copy each time (callers may change theirs), for
    the API served under `server` (a proxy's path prefix)."""
    return copy.deepcopy(
        {
            "openapi": "3.1.0",
            "info": {
                "title": "Webhook receiver API",
                "version": "1",
                "description": "Inboxes, their settings and secrets, captures, stats and exports. "
                'Errors are {"error": {"code", "message"}}. Without RECEIVER_ADMIN_PASSWORD '
                "only clients on the server's machine may call; with it, send "
                "`Authorization: Bearer <token>` (or use a dashboard login). Without a token, "
                "POST and PATCH need a JSON body (415 otherwise).",
            },
            "servers": [{"url": server}],
            "security": [{"bearerAuth": []}, {}],
            "paths": paths(),
            "components": {
                "schemas": SCHEMAS,
                "parameters": PARAMETERS,
                "responses": ERRORS,
                "securitySchemes": {
                    "bearerAuth": {
                        "type": "http",
                        "scheme": "bearer",
                        "description": "A token from the dashboard's Tokens page or "
                        "`flask --app wsgi token create LABEL`.",
                    }
                },
            },
        }
    )
