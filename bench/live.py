"""Live latency: from a capture's 200 to its SSE event at every connected dashboard.

    .venv/bin/python bench/live.py [--dashboards 50] [--captures 40]

Starts the receiver as the README does (gunicorn.conf.py, 2 gthread workers,
SQLite in a temp dir), opens N dashboard streams (`/inboxes/default/stream`)
from threads, then sends captures one at a time, a random 50-250 ms apart, and
records for each stream how long after the sender's 200 the event naming that
capture arrived. Prints the 50th, 95th and 99th percentiles over all
(capture, dashboard) pairs. The goal: p95 under 500 ms with 50 dashboards.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dashboards", type=int, default=50)
    parser.add_argument("--captures", type=int, default=40)
    args = parser.parse_args()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    workdir = Path(tempfile.mkdtemp())
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{workdir / 'live.sqlite3'}",
        "RECEIVER_BIND": f"127.0.0.1:{port}",
        "RECEIVER_ACCESS_LOG": "",
        "RECEIVER_STREAM_SECONDS": "300",
    }
    gunicorn = Path(sys.executable).parent / "gunicorn"
    log = open(workdir / "server.log", "wb")  # noqa: SIM115 - closed at the end
    server = subprocess.Popen(
        [str(gunicorn), "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=log,
    )
    try:
        for _ in range(100):
            try:
                requests.get(url + "/healthz", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.1)
        arrivals: list[dict[int, float]] = [{} for _ in range(args.dashboards)]
        connected = threading.Barrier(args.dashboards + 1, timeout=60)
        refused: dict[int, int] = {}

        def watch(index: int) -> None:
            response = requests.get(url + "/inboxes/default/stream", stream=True, timeout=600)
            if response.status_code != 200:
                refused[index] = response.status_code
                connected.wait()
                return
            lines = response.iter_lines(decode_unicode=True)
            next(lines)
            connected.wait()
            for line in lines:
                if line.startswith("data: "):
                    arrivals[index].setdefault(int(line[6:]), time.monotonic())

        for i in range(args.dashboards):
            threading.Thread(target=watch, args=(i,), daemon=True).start()
        connected.wait()
        time.sleep(1)
        sent: dict[int, float] = {}
        session = requests.Session()
        for _ in range(args.captures):
            response = session.post(
                url + "/hooks/default/QR_CODE_SCANNED", data={"event": "QR_CODE_SCANNED"}
            )
            sent[response.json()["id"]] = time.monotonic()
            time.sleep(random.uniform(0.05, 0.25))
        time.sleep(2)
        delays = []
        missing = 0
        for index, seen in enumerate(arrivals):
            if index in refused:
                continue
            for capture_id, at in sent.items():
                # An event names the newest capture; earlier ones it covers count as seen then.
                later = [t for cid, t in seen.items() if cid >= capture_id]
                if later:
                    delays.append((min(later) - at) * 1000)
                else:
                    missing += 1
        delays.sort()

        def pct(p: float) -> float:
            return delays[min(len(delays) - 1, int(len(delays) * p / 100))]

        print(f"{args.dashboards} dashboards ({len(refused)} refused), {args.captures} captures")
        print("| p50 ms | p95 ms | p99 ms | max ms | missed |")
        print("|--:|--:|--:|--:|--:|")
        row = [statistics.median(delays), pct(95), pct(99), delays[-1]]
        print("| " + " | ".join(f"{v:.0f}" for v in row) + f" | {missing} |")
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()


if __name__ == "__main__":
    main()
