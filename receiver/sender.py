"""The test-event sender: realistic deliveries of the platform's events, sent like the platform.

A delivery is built from the catalog's samples (every parameter, the current timestamp)
and sent as a form, a JSON body or a query string. This is the user's own client, like
curl: it sends wherever it is told, so outbound.py's server-side rules do not apply.
"""

from __future__ import annotations

import json
import math
import secrets
import statistics
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode, urlsplit, urlunsplit

import requests

from . import catalog
from .outbound import Outcome, describe
from .verification import SECRET_PARAM

ENCODINGS = ("form", "json", "query")
FORM_TYPE = "application/x-www-form-urlencoded"
JSON_TYPE = "application/json"


@dataclass(frozen=True)
class Delivery:
    """One request as the platform would send it: a POST with a query string and a body."""

    event: str
    params: list[tuple[str, str]]
    query: str
    headers: dict[str, str]
    body: bytes

    def url(self, target: str) -> str:
        """`target` with the delivery's query string added to any it has."""
        if not self.query:
            return target
        parts = urlsplit(target)
        query = f"{parts.query}&{self.query}" if parts.query else self.query
        return urlunsplit(parts._replace(query=query))


def wrong_secret() -> str:
    """A random key that no inbox expects."""
    return "wrong_" + secrets.token_urlsafe(18)


def parse_setting(text: str) -> tuple[str, str]:
    """`name=value` from --set; raises ValueError with a message for people."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise ValueError(f"{text!r} is not NAME=VALUE (e.g. --set country=FR).")
    return name.strip(), value


def build(
    event: str,
    *,
    secret: str | None,
    encoding: str = "form",
    settings: Iterable[tuple[str, str]] = (),
    now: datetime | None = None,
) -> Delivery:
    """A delivery of `event` carrying `secret` (None: no secrettoken at all).

    `settings` replace a parameter's sample value, or add a parameter.
    """
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}")
    params = catalog.sample_delivery(event, now=now or datetime.now(UTC))
    params = _with(params, SECRET_PARAM, secret)
    for name, value in settings:
        params = _with(params, name, value)
    if encoding == "form":
        return Delivery(event, params, "", {"Content-Type": FORM_TYPE}, urlencode(params).encode())
    if encoding == "json":
        body = json.dumps(dict(params), ensure_ascii=False).encode()
        return Delivery(event, params, "", {"Content-Type": JSON_TYPE}, body)
    return Delivery(event, params, urlencode(params), {}, b"")


def _with(params: list[tuple[str, str]], name: str, value: str | None) -> list[tuple[str, str]]:
    """`name` set to `value` where it stands, or added at the end; None removes it."""
    if value is None:
        return [(n, v) for n, v in params if n != name]
    if any(n == name for n, _ in params):
        return [(n, value if n == name else v) for n, v in params]
    return [*params, (name, value)]


# --- sending ---


def send(delivery: Delivery, target: str, timeout: float) -> Outcome:
    """POST the delivery to `target` on a new connection, as a webhook sender does.

    Redirects are shown, not followed.
    """
    started = time.perf_counter()
    try:
        response = requests.post(
            delivery.url(target),
            data=delivery.body,
            headers=delivery.headers,
            timeout=timeout,
            allow_redirects=False,
        )
    except requests.RequestException as error:
        return Outcome(None, latency_ms=_since(started), error=describe(error))
    return Outcome(
        status=response.status_code,
        headers=list(response.raw.headers.items()),
        body=response.content,
        latency_ms=_since(started),
    )


def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


@dataclass(frozen=True)
class Summary:
    """Many deliveries' outcomes in a few numbers."""

    sent: int
    ok: int
    failed: int
    statuses: Counter
    errors: Counter
    latency_ms: dict[str, float]  # min, median, p95, max; empty when nothing answered


def summarize(outcomes: list[Outcome]) -> Summary:
    ok = sum(1 for o in outcomes if o.ok)
    latencies = sorted(o.latency_ms for o in outcomes if o.status is not None)
    stats = {}
    if latencies:
        stats = {
            "min": latencies[0],
            "median": statistics.median(latencies),
            "p95": percentile(latencies, 95),
            "max": latencies[-1],
        }
    return Summary(
        sent=len(outcomes),
        ok=ok,
        failed=len(outcomes) - ok,
        statuses=Counter(o.status for o in outcomes if o.status is not None),
        errors=Counter(o.error for o in outcomes if o.error),
        latency_ms=stats,
    )


def percentile(ordered: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending, non-empty list."""
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]
