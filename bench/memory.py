"""Memory: peak RSS of a worker while it receives a 10 MiB body.

    .venv/bin/python bench/memory.py [--mib 10]

Starts the receiver with one worker, reads the worker's peak RSS (VmHWM) after
a warm-up delivery, sends one body of N MiB of each kind (binary, form-encoded,
JSON), and reports how far the peak rose, as a multiple of the body's size.
The goal: under 4x the body.
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
    return {
        "binary (application/octet-stream)": ("application/octet-stream", binary),
        "form-encoded, one large field": ("application/x-www-form-urlencoded", form),
        "JSON, one large string": ("application/json", document.encode()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=10)
    args = parser.parse_args()
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
