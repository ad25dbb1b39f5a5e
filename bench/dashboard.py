"""Dashboard speed with a large inbox: server time of each page, in process.

    .venv/bin/python bench/dashboard.py [--captures 1000000] [--repeat 15]

Fills one inbox of a fresh SQLite database with N realistic captures (written
directly, in bulk, with their per-inbox counts), then times the Flask app
answering the pages a person opens: the inbox page, the event-type counts, the
first page of the list, a filtered page (one event type), a filtered page by
verdict, a text search, and a capture's detail. Prints the median and p90 of
each in milliseconds. The goal: each median under 100 ms.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from receiver import catalog, create_app  # noqa: E402
from receiver.cli import setup_database  # noqa: E402

VERDICTS = ["verified"] * 8 + ["mismatch", "missing"]


def fill(path: Path, count: int) -> None:
    events = [*catalog.EVENTS, "UNKNOWN"]
    start = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=count)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    inbox_id = conn.execute("SELECT id FROM inbox WHERE slug = 'default'").fetchone()[0]
    counts: dict[tuple[str, str], int] = {}
    rng = random.Random(7)
    batch = []
    for i in range(count):
        event = rng.choice(events)
        verdict = rng.choice(VERDICTS)
        counts[(event, verdict)] = counts.get((event, verdict), 0) + 1
        params = [
            ["post", "event", event],
            ["post", "timestamp", str(1764262800 + i)],
            ["post", "user", f"user{i % 97}"],
            ["post", "code", f"https://qr.example/{i:x}"],
            ["post", "secrettoken", "[secrettoken:0a1b2c3d]"],
            ["post", "device", "iPhone"],
        ]
        body = "&".join(f"{n}={v}" for _s, n, v in params).encode()
        batch.append(
            (
                inbox_id,
                (start + timedelta(seconds=i)).strftime("%Y-%m-%d %H:%M:%S.%f"),
                "POST",
                "/hooks/default/" + event,
                event,
                b"",
                json.dumps(
                    [["Host", "127.0.0.1"], ["Content-Type", "application/x-www-form-urlencoded"]]
                ),
                body,
                "application/x-www-form-urlencoded",
                len(body),
                "127.0.0.1",
                json.dumps(params),
                json.dumps({"notes": {}, "parts": [], "findings": [], "json": False}),
                event,
                params[3][2],
                params[2][2],
                verdict,
                "prod" if verdict == "verified" else None,
                "abcd…0a1b2c3d",
                False,
                200,
                0,
            )
        )
        if len(batch) == 20_000:
            _insert(conn, batch)
            batch.clear()
    _insert(conn, batch)
    conn.executemany(
        "INSERT INTO capture_count (inbox_id, event_type, verdict, n) VALUES (?, ?, ?, ?)",
        [(inbox_id, e, v, n) for (e, v), n in counts.items()],
    )
    conn.commit()
    conn.close()


def _insert(conn, rows) -> None:
    conn.executemany(
        "INSERT INTO capture (inbox_id, received_at, method, path, subpath, query_string, "
        "headers, body, content_type, content_length, remote_addr, params, details, "
        'event_type, code, "user", verdict, secret_label, secret_fingerprint, rejected, '
        "answered_status, finding_count) VALUES "
        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--captures", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()

    path = Path(tempfile.mkdtemp()) / "dashboard.sqlite3"
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}", "SECRET_KEY": "bench", "TESTING": True}
    )
    with app.app_context():
        setup_database()
    started = time.perf_counter()
    fill(path, args.captures)
    print(f"filled {args.captures:,} captures in {time.perf_counter() - started:.0f} s")

    client = app.test_client()
    newest = args.captures
    pages = {
        "inbox page (counts + first page)": "/inboxes/default",
        "event-type counts (live refresh)": f"/inboxes/default/rows?after={newest}",
        "first page of the list (API)": "/api/inboxes/default/captures?limit=50",
        "filtered page: one event type": "/inboxes/default?event=LEAD_CREATED",
        "filtered page: verdict mismatch": "/inboxes/default?verdict=mismatch",
        "older page (cursor deep in the inbox)": f"/inboxes/default/rows?before={newest // 2}",
        "capture detail": f"/inboxes/default/captures/{newest // 3}",
        "text search (scans the inbox)": "/inboxes/default?q=user42",
    }
    print(f"\n| page ({args.captures:,} captures in one inbox) | median ms | p90 ms |")
    print("|---|--:|--:|")
    for name, url in pages.items():
        times = []
        repeat = 3 if "search" in name else args.repeat
        for _ in range(repeat):
            t0 = time.perf_counter()
            response = client.get(url, headers={"HX-Request": "true"} if "rows" in url else {})
            times.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, (url, response.status_code)
        times.sort()
        p90 = times[min(len(times) - 1, int(len(times) * 0.9))]
        print(f"| {name} | {statistics.median(times):.1f} | {p90:.1f} |")


if __name__ == "__main__":
    main()
