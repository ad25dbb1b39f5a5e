"""Memory: peak RSS of a worker while it receives a 10 MiB body; an export's memory.

    .venv/bin/python bench/memory.py [--mib 10] [--export 20000,100000]

Starts the receiver with one worker, reads the worker's peak RSS (VmHWM) after
a warm-up delivery, sends one body of N MiB of each kind (binary, form-encoded,
JSON), and reports how far the peak rose, as a multiple of the body's size.
The goal: under 4x the body.

Then, for each export size, fills an inbox with that many 600-byte captures
and streams its NDJSON export in process, reporting the peak of Python's
allocations (tracemalloc) against the bytes exported. The goal: the same
peak whatever the size (constant memory).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


def worker_of(master: int) -> int:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return int(children[0])


def bodies(size: int) -> dict[str, tuple[str, bytes]]:
    binary = os.urandom(size)
    field = "x" * (size - 100)
    form = f"event=QR_CODE_SCANNED&secrettoken=s3cr3t-key&note={field}".encode()
    document = json.dumps({"event": "LEAD_CREATED", "secrettoken": "s3cr3t-key", "note": field})
    upload = (
        b'--b0undary\r\nContent-Disposition: form-data; name="event"\r\n\r\nLEAD_CREATED\r\n'
        b'--b0undary\r\nContent-Disposition: form-data; name="file"; filename="f.bin"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n"
        + binary[: size - 300]
        + b"\r\n--b0undary--\r\n"
    )
    return {
        "binary (application/octet-stream)": ("application/octet-stream", binary),
        "form-encoded, one large field": ("application/x-www-form-urlencoded", form),
        "JSON, one large string": ("application/json", document.encode()),
        "multipart, one binary file": ("multipart/form-data; boundary=b0undary", upload),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=10)
    parser.add_argument("--export", default="20000,100000", help="capture counts, or empty")
    args = parser.parse_args()
    body_rise(args)
    if args.export:
        export_peaks([int(n) for n in args.export.split(",")])


def export_peaks(counts: list[int]) -> None:
    import tracemalloc
    from datetime import datetime

    from sqlalchemy import insert

    sys.path.insert(0, str(ROOT))
    from receiver import create_app
    from receiver.cli import setup_database
    from receiver.extensions import db
    from receiver.models import Capture, CaptureCount, Inbox

    print()
    print("| captures exported (NDJSON) | bytes exported | peak Python allocations |")
    print("|--:|--:|--:|")
    for count in counts:
        workdir = Path(tempfile.mkdtemp())
        app = create_app(
            {
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{workdir / 'export.sqlite3'}",
                "RECEIVER_SETTINGS_CACHE_SECONDS": 0,
            }
        )
        with app.app_context():
            setup_database()
            inbox = db.session.query(Inbox).filter_by(slug="default").one()
            row = {
                "inbox_id": inbox.id,
                "received_at": datetime(2026, 11, 27),
                "method": "POST",
                "path": "/hooks/default",
                "subpath": "",
                "query_string": b"",
                "headers": '[["Content-Type", "application/octet-stream"]]',
                "content_type": "application/octet-stream",
                "content_length": 600,
                "remote_addr": "127.0.0.1",
                "params": "[]",
                "details": '{"notes": {}, "parts": [], "findings": [], "json": false}',
                "event_type": "UNKNOWN",
                "code": "",
                "user": "",
                "verdict": "not_configured",
                "rejected": False,
                "answered_status": 200,
                "finding_count": 0,
            }
            for start in range(0, count, 10_000):
                batch = range(start, min(count, start + 10_000))
                db.session.execute(
                    insert(Capture.__table__),
                    [{**row, "body": f"{i:010d}".encode() * 60} for i in batch],
                )
            db.session.execute(
                insert(CaptureCount.__table__).values(
                    inbox_id=inbox.id, event_type="UNKNOWN", verdict="not_configured", n=count
                )
            )
            db.session.commit()
        client = app.test_client()
        response = client.get(
            "/api/inboxes/default/export?format=ndjson",
            buffered=False,
            environ_base={"REMOTE_ADDR": "127.0.0.1"},
        )
        assert response.status_code == 200, response.status
        exported = 0
        tracemalloc.start()
        try:
            for chunk in response.response:
                exported += len(chunk)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            response.close()
        print(f"| {count:,} | {exported / 2**20:.0f} MiB | {peak / 2**20:.1f} MiB |")


def body_rise(args) -> None:
    size = args.mib * 1024 * 1024 - 1024

    print(f"| body ({args.mib} MiB) | worker peak RSS before | after | rise | rise / body |")
    print("|---|--:|--:|--:|--:|")
    for name, (content_type, body) in bodies(size).items():
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        workdir = Path(tempfile.mkdtemp())
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{workdir / 'memory.sqlite3'}",
            "RECEIVER_BIND": f"127.0.0.1:{port}",
            "RECEIVER_WORKERS": "1",
            "RECEIVER_ACCESS_LOG": "",
        }
        gunicorn = Path(sys.executable).parent / "gunicorn"
        server = subprocess.Popen(
            [str(gunicorn), "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                try:
                    requests.post(url + "/hooks/default", data=b"warm-up", timeout=1)
                    break
                except requests.RequestException:
                    time.sleep(0.1)
            worker = worker_of(server.pid)
            before = peak_rss(worker)
            response = requests.post(
                url + "/hooks/default",
                data=body,
                headers={"Content-Type": content_type},
                timeout=120,
            )
            assert response.status_code == 200, response.text
            after = peak_rss(worker)
            rise = after - before
            print(
                f"| {name} | {before / 2**20:.0f} MiB | {after / 2**20:.0f} MiB | "
                f"{rise / 2**20:.1f} MiB | {rise / len(body):.1f}x |"
            )
        finally:
            server.terminate()
            server.wait(timeout=60)


if __name__ == "__main__":
    main()
