"""Ingest benchmark: the receiver against a bare Flask app, side by side, same settings.

    .venv/bin/python bench/run.py [--rounds 3] [--duration 10] [--connections 32]
                                  [--database sqlite|postgresql|both]

Per database and round, the baseline (bench/baseline_app.py) and the receiver (wsgi:app
with the repository's gunicorn.conf.py) are each started under gunicorn with identical
worker flags on a free 127.0.0.1 port, warmed up, and loaded with wrk for each payload
(bench/scan_form.lua, bench/json_2k.lua); the server order alternates between rounds.
The receiver gets a fresh database per start (a temp SQLite file, or a PostgreSQL
database created and dropped on 127.0.0.1:5432). After each receiver run the rows stored
in `capture` are counted and compared with the 2xx responses wrk reported.

Writes a Markdown report to stdout and bench/results/latest.md (raw numbers in
bench/results/latest.json). See bench/README.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
if not GUNICORN.exists():  # pragma: no cover - another venv layout
    GUNICORN = Path(sys.executable).with_name("gunicorn")
WRK = shutil.which("wrk") or "/usr/bin/wrk"

HOOK_PATH = "/hooks/default/QR_CODE_SCANNED"
PAYLOADS = [
    ("scan_form", "form QR_CODE_SCANNED", BENCH / "scan_form.lua"),
    ("json_2k", "JSON QR_CODE_SCANNED", BENCH / "json_2k.lua"),
]
GOALS = {"sqlite": 0.6, "postgresql": 0.5}
# The receiver's inbox capacity, as shipped unless set for the run.
CAPACITY = int(os.environ.get("RECEIVER_INBOX_CAPACITY", "") or 10_000)
P99_GOAL_MS = 50.0
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{name}"

WARMUP_S = 2
DISTURBED_CORES = 0.25  # other processes' CPU during a run above which it is flagged
WRK_THREADS = 2
WRK_TIMEOUT = "10s"  # slow answers count in the latency, not as timeouts
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Worker settings: (gunicorn flag, environment variable read by gunicorn.conf.py, default).
WORKER_SETTINGS = [
    ("--workers", "RECEIVER_WORKERS", "2"),
    ("--worker-class", "RECEIVER_WORKER_CLASS", "gthread"),
    ("--threads", "RECEIVER_THREADS", "16"),
    ("--keep-alive", "RECEIVER_KEEPALIVE", "5"),
    ("--timeout", "RECEIVER_TIMEOUT", "120"),
    ("--graceful-timeout", "RECEIVER_GRACEFUL_TIMEOUT", "30"),
    ("--log-level", "RECEIVER_LOG_LEVEL", "info"),
    ("--forwarded-allow-ips", "FORWARDED_ALLOW_IPS", "127.0.0.1,::1"),
]


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- settings ---


def conf_default(env: str, fallback: str) -> str:
    """The default gunicorn.conf.py gives an environment variable, if it still reads it."""
    try:
        text = (ROOT / "gunicorn.conf.py").read_text()
    except OSError:
        return fallback
    match = re.search(r'os\.environ\.get\(\s*"%s"\s*,\s*"([^"]*)"\s*\)' % re.escape(env), text)
    return match.group(1) if match else fallback


def worker_settings() -> list[tuple[str, str, str]]:
    """(flag, env name, value): the environment's value, else gunicorn.conf.py's default."""
    out = []
    for flag, env, fallback in WORKER_SETTINGS:
        value = os.environ.get(env, "").strip() or conf_default(env, fallback)
        out.append((flag, env, value))
    return out


def source_fingerprint() -> str:
    """A short hash of the app's source as it is now (others edit it while we measure)."""
    import hashlib

    digest = hashlib.sha256()
    files = sorted(
        [*ROOT.glob("receiver/*.py"), ROOT / "wsgi.py", ROOT / "gunicorn.conf.py"]
        + list(ROOT.glob("migrations/**/*.py"))
    )
    for path in files:
        try:
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
        except OSError:
            pass
    return digest.hexdigest()[:12]


# --- servers ---


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    kind: str  # "baseline" or "receiver"
    cmd: list[str]
    env: dict[str, str]
    port: int
    log_path: Path
    proc: subprocess.Popen | None = None
    _log: object = None

    def start(self, timeout: float = 60) -> None:
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            self.cmd,
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise StartError(f"{self.kind} exited with status {self.proc.returncode}")
            status = probe(self.port, "/readyz")
            # The receiver says ready once its database answers; the baseline only has
            # to answer at all (it has no /readyz: 404).
            if status is not None and (self.kind == "baseline" or status == 200):
                return
            time.sleep(0.2)
        raise StartError(f"{self.kind} did not answer on port {self.port} within {timeout:.0f}s")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=45)
            except subprocess.TimeoutExpired:
                log(f"{self.kind} (pid {self.proc.pid}) ignored SIGTERM for 45 s: SIGKILL")
                os.killpg(self.proc.pid, signal.SIGKILL)  # its own session, started above
                self.proc.wait()
        self._log.close()

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def cpu_ticks(self) -> int:
        """utime+stime of the master and its workers (all their threads)."""
        if self.proc is None:
            return 0
        pids = {self.proc.pid} | children(self.proc.pid)
        total = 0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
            except (OSError, IndexError, ValueError):
                pass
        return total


def system_busy_ticks() -> int:
    """Non-idle CPU time of the whole machine (all cores), in clock ticks."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields[:8]) - idle


def postgres_ticks(database: str | None) -> dict[int, int]:
    """utime+stime per process of the local PostgreSQL server that works for `database`:
    its backends for that database plus the server's background processes (WAL writer,
    checkpointer, ...); other databases' backends (other people's tests) are left out."""
    out: dict[int, int] = {}
    if not database:
        return out
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            text = (proc / "stat").read_text()
            if text[text.find("(") + 1 : text.rfind(")")] != "postgres":
                continue
            title = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        # A backend's title names its database and client, "... postgres <db> 127.0.0.1(port) ..."
        if "(" in title and f" {database} " not in title:
            continue
        fields = text.rsplit(")", 1)[1].split()
        out[int(proc.name)] = int(fields[11]) + int(fields[12])
    return out


def ticks_delta(before: dict[int, int], after: dict[int, int]) -> int:
    """CPU ticks spent between two samples by processes alive at the second one."""
    return sum(t - before.get(pid, 0) for pid, t in after.items())


class StartError(RuntimeError):
    pass


def children(pid: int) -> set[int]:
    out = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out |= {int(p) for p in (task / "children").read_text().split()}
        except (OSError, ValueError):
            pass
    return out


def probe(port: int, path: str) -> int | None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def server_env(settings, port: int, extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("GUNICORN_CMD_ARGS", None)  # nothing but the flags below
    env.pop("RECEIVER_ACCESS_LOG", None)
    for _flag, name, value in settings:
        env[name] = value
    env["RECEIVER_BIND"] = f"127.0.0.1:{port}"
    env.update(extra)
    return env


def gunicorn_flags(settings, port: int) -> list[str]:
    flags = ["--bind", f"127.0.0.1:{port}"]
    for flag, _name, value in settings:
        flags += [flag, value]
    # Errors to stderr (a log file here); no access log; gunicorn 27's control socket
    # off so the servers never clash with another gunicorn's default socket path.
    flags += ["--error-logfile", "-", "--no-control-socket"]
    return flags


def baseline_cmd(settings, port: int) -> list[str]:
    return [str(GUNICORN), "-c", "bench/gunicorn_baseline.conf.py",
            *gunicorn_flags(settings, port), "--pythonpath", "bench", "baseline_app:app"]


def receiver_cmd(settings, port: int) -> list[str]:
    return [str(GUNICORN), "-c", "bench/gunicorn_receiver.conf.py",
            *gunicorn_flags(settings, port), "wsgi:app"]


# --- databases ---


class Database:
    """A fresh receiver database for one server start."""

    kind = ""

    def url(self) -> str:
        raise NotImplementedError

    def query(self, sql: str, params=()) -> tuple:
        raise NotImplementedError

    def drop(self) -> None:
        pass

    def state(self) -> tuple[int, int]:
        """(max capture id, rows in capture)."""
        max_id, rows = self.query("SELECT coalesce(max(id), 0), count(*) FROM capture")
        return int(max_id), int(rows)

    def stored_since(self, after_id: int, body_bytes: int) -> tuple[int, int]:
        """(rows with id > after_id, of which are this payload's deliveries, whole)."""
        rows, whole = self.query(
            "SELECT count(*), coalesce(sum(CASE WHEN content_length = %d AND "
            "event_type = 'QR_CODE_SCANNED' THEN 1 ELSE 0 END), 0) FROM capture "
            "WHERE id > %d" % (int(body_bytes), int(after_id))
        )
        return int(rows), int(whole)


class SQLiteDatabase(Database):
    kind = "sqlite"

    def __init__(self, tmp: Path):
        self.path = tmp / "receiver.sqlite3"

    def url(self) -> str:
        return f"sqlite:///{self.path}"  # absolute path: sqlite:////tmp/...

    def query(self, sql: str, params=()) -> tuple:
        conn = sqlite3.connect(self.path, timeout=30)
        try:
            return conn.execute(sql, params).fetchone()
        finally:
            conn.close()


class PostgresDatabase(Database):
    kind = "postgresql"

    def __init__(self, name: str):
        import psycopg

        self.name = name
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')

    def url(self) -> str:
        return PG_URL.format(name=self.name)

    def query(self, sql: str, params=()) -> tuple:
        import psycopg

        dsn = f"postgresql://postgres@127.0.0.1:5432/{self.name}"
        with psycopg.connect(dsn, autocommit=True) as conn:
            return conn.execute(sql, params or None).fetchone()

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def postgres_version() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as conn:
            return conn.execute("SHOW server_version").fetchone()[0]
    except Exception as exc:  # noqa: BLE001 - reported, the PostgreSQL part is skipped
        log(f"PostgreSQL at 127.0.0.1:5432 unreachable: {exc}")
        return None


def settle(db: Database, quiet_s: float = 1.5, limit_s: float = 30) -> tuple[int, int]:
    """Wait until no capture has been committed for quiet_s (requests still in flight
    when wrk stopped finish), then return the database state."""
    state = db.state()
    still_since = time.monotonic()
    deadline = still_since + limit_s
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = db.state()
        if now != state:
            state, still_since = now, time.monotonic()
        elif time.monotonic() - still_since >= quiet_s:
            break
    return state


# --- load ---


def run_wrk(script: Path, port: int, duration: float, connections: int) -> dict:
    cmd = [WRK, f"-t{WRK_THREADS}", f"-c{connections}", f"-d{duration:g}s",
           f"--timeout={WRK_TIMEOUT}", "-s", str(script),
           f"http://127.0.0.1:{port}{HOOK_PATH}"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("WRK_RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stdout}\n{proc.stderr}")
    result = json.loads(line.split(" ", 1)[1])
    result["acked"] = result["requests"] - result["non2xx"]
    result["wrk_cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result


@dataclass
class Measurement:
    database: str
    round: int
    server: str
    payload: str
    wrk: dict
    server_cpu_s: float
    other_cpu_s: float = 0.0  # the rest of the machine during the run (not wrk, not PostgreSQL)
    postgres_cpu_s: float = 0.0
    stored: int | None = None  # captures committed during the run (receiver)
    stored_whole: int | None = None  # of those, this payload's deliveries, intact
    max_id_delta: int | None = None
    rows_after: int | None = None
    notes: list[str] = field(default_factory=list)


def measure_server(server: Server, db: Database | None, args, database: str, rnd: int,
                   order: list) -> list[Measurement]:
    out = []
    for name, _title, script in order:
        run_wrk(script, server.port, WARMUP_S, args.connections)  # warm-up, not counted
        before = settle(db) if db else None
        pg_name = getattr(db, "name", None)
        ticks, busy, pg = server.cpu_ticks(), system_busy_ticks(), postgres_ticks(pg_name)
        result = run_wrk(script, server.port, args.duration, args.connections)
        cpu = (server.cpu_ticks() - ticks) / CLK_TCK
        pg_cpu = ticks_delta(pg, postgres_ticks(pg_name)) / CLK_TCK
        busy_s = (system_busy_ticks() - busy) / CLK_TCK
        other = max(0.0, busy_s - cpu - pg_cpu - result["wrk_cpu_s"])
        m = Measurement(database, rnd, server.kind, name, result, cpu, other, pg_cpu)
        if other / result["duration_s"] > DISTURBED_CORES:
            m.notes.append(
                f"{server.kind} run disturbed: other processes used "
                f"{other / result['duration_s']:.2f} cores"
            )
        if db:
            after = settle(db)
            m.stored, m.stored_whole = db.stored_since(before[0], result["body_bytes"])
            m.max_id_delta = after[0] - before[0]
            m.rows_after = after[1]
            if m.max_id_delta != m.stored:
                m.notes.append(
                    f"max id grew by {m.max_id_delta}, {m.stored} new rows present "
                    "(capacity trim or sequence gaps)"
                )
        out.append(m)
        log(
            f"{database} round {rnd} {server.kind:8s} {name:9s} {result['rps']:8.1f} req/s "
            f"p50 {result['p50_ms']:.1f} ms p99 {result['p99_ms']:.1f} ms "
            f"non2xx {result['non2xx']} sockerr {result['socket_errors']}"
            + (f" stored {m.stored}/{result['acked']} acked" if db else "")
        )
    return out


def start_with_retry(make_server, kind: str, failures: list) -> Server:
    """Start a server; if the receiver fails, show its log and retry once a minute later."""
    for attempt in (1, 2):
        server = make_server()
        try:
            server.start()
            return server
        except StartError as exc:
            tail = server.log_tail()
            server.stop()
            failures.append(f"{kind} start attempt {attempt} failed: {exc}\n{tail}")
            log(f"{kind} failed to start: {exc}\n----- its output -----\n{tail}\n-----")
            if attempt == 1:
                log("retrying in 60 s")
                time.sleep(60)
    raise StartError(f"{kind} failed to start twice")


def run_database(database: str, args, settings, failures: list, fingerprints: list):
    measurements: list[Measurement] = []
    for rnd in range(1, args.rounds + 1):
        # Alternate which server goes first (ABBA...), so drift over the run hits both.
        servers = ["baseline", "receiver"] if rnd % 2 else ["receiver", "baseline"]
        order = PAYLOADS if rnd % 2 else PAYLOADS[::-1]
        for kind in servers:
            tmp = Path(tempfile.mkdtemp(prefix=f"receiver-bench-{database}-"))
            db = None
            try:
                port = free_port()
                if kind == "baseline":
                    def make(port=port, tmp=tmp):
                        return Server("baseline", baseline_cmd(settings, port),
                                      server_env(settings, port, {}), port, tmp / "server.log")
                else:
                    fingerprints.append(source_fingerprint())

                    def make(port=port, tmp=tmp, rnd=rnd):
                        nonlocal db
                        if db is not None:
                            db.drop()
                        if database == "sqlite":
                            db = SQLiteDatabase(tmp)
                            if db.path.exists():
                                db.path.unlink()
                        else:
                            db = PostgresDatabase(f"receiver_bench_{os.getpid()}_{rnd}")
                        env = server_env(settings, port, {"DATABASE_URL": db.url()})
                        return Server("receiver", receiver_cmd(settings, port), env, port,
                                      tmp / "server.log")
                server = start_with_retry(make, kind, failures)
                try:
                    measurements += measure_server(server, db, args, database, rnd, order)
                finally:
                    server.stop()
                    if server.proc and server.proc.returncode not in (0, None):
                        log(f"{kind} exited with {server.proc.returncode}:\n{server.log_tail(20)}")
            finally:
                if db is not None:
                    db.drop()
                shutil.rmtree(tmp, ignore_errors=True)
    return measurements


# --- report ---


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    wrk_version = subprocess.run([WRK, "-v"], capture_output=True, text=True).stdout
    wrk_version = wrk_version.splitlines()[0] if wrk_version else "?"

    def version(pkg: str) -> str:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return "-"

    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "gunicorn": version("gunicorn"),
        "flask": version("flask"),
        "werkzeug": version("werkzeug"),
        "sqlalchemy": version("sqlalchemy"),
        "psycopg": version("psycopg"),
        "sqlite": sqlite3.sqlite_version,
        "wrk": wrk_version.split("[")[0].strip(),
        "loadavg": Path("/proc/loadavg").read_text().split()[:3],
    }


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, digits=1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def summarize(database: str, ms: list[Measurement], connections: int) -> dict:
    rows = {}
    for name, title, _script in PAYLOADS:
        base = {m.round: m for m in ms if m.payload == name and m.server == "baseline"}
        recv = {m.round: m for m in ms if m.payload == name and m.server == "receiver"}
        rounds = sorted(set(base) & set(recv))
        if not rounds:
            continue
        b_rps = [base[r].wrk["rps"] for r in rounds]
        r_rps = [recv[r].wrk["rps"] for r in rounds]
        ratios = [recv[r].wrk["rps"] / base[r].wrk["rps"] for r in rounds]
        acked = sum(recv[r].wrk["acked"] for r in rounds)
        # Once the inbox is full, its capacity drops the oldest captures, this run's
        # first ones among them: then the ids the run's captures took are counted.
        by_id = [r for r in rounds if (recv[r].rows_after or 0) >= CAPACITY]
        counted = {r: (recv[r].max_id_delta if r in by_id else recv[r].stored) or 0
                   for r in rounds}
        stored = sum(counted.values())
        whole = sum(recv[r].stored_whole or 0 for r in rounds)
        # Each acknowledged delivery must be stored; up to `connections` more may be
        # stored per run (requests in flight when wrk stopped, answered too late to count).
        ok = all(
            recv[r].wrk["acked"] <= counted[r] <= recv[r].wrk["acked"] + connections
            for r in rounds
        )
        ratio_med = med(ratios)
        p99 = med([recv[r].wrk["p99_ms"] for r in rounds])
        goal = GOALS[database]
        rows[name] = {
            "title": title,
            "body_bytes": recv[rounds[0]].wrk["body_bytes"],
            "rounds": rounds,
            "baseline_rps": med(b_rps),
            "receiver_rps": med(r_rps),
            "ratio_of_medians": med(r_rps) / med(b_rps),
            "median_ratio": ratio_med,
            "ratios": ratios,
            "baseline_p50": med([base[r].wrk["p50_ms"] for r in rounds]),
            "baseline_p99": med([base[r].wrk["p99_ms"] for r in rounds]),
            "receiver_p50": med([recv[r].wrk["p50_ms"] for r in rounds]),
            "receiver_p99": p99,
            "receiver_p99_worst": max(recv[r].wrk["p99_ms"] for r in rounds),
            "non2xx": (sum(base[r].wrk["non2xx"] for r in rounds),
                       sum(recv[r].wrk["non2xx"] for r in rounds)),
            "socket_errors": (sum(base[r].wrk["socket_errors"] for r in rounds),
                              sum(recv[r].wrk["socket_errors"] for r in rounds)),
            "acked": acked,
            "stored": stored,
            "stored_by_id": bool(by_id),
            "stored_whole": whole,
            "stored_ok": ok,
            "goal": goal,
            "goal_met": ratio_med >= goal and p99 < P99_GOAL_MS,
        }
    return rows


def report(args, settings, mach, pg_version, results, failures, fingerprints, started,
           elapsed) -> str:
    cmd = ".venv/bin/python bench/run.py " + shlex.join(sys.argv[1:])
    out = []
    w = out.append
    w("# Ingest benchmark: receiver vs bare Flask app")
    w("")
    w(f"Run {started:%Y-%m-%d %H:%M} UTC, {elapsed / 60:.1f} min. Command (in `{ROOT}`):")
    w("")
    w(f"    {cmd.strip()}")
    w("")
    w("## Machine")
    w("")
    w(f"- {mach['nproc']} CPUs (nproc), {mach['cpu']}; Linux {mach['kernel']}; "
      f"load average at start {' '.join(mach['loadavg'])}, at end "
      f"{' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    w(f"- Python {mach['python']}, gunicorn {mach['gunicorn']}, Flask {mach['flask']}, "
      f"Werkzeug {mach['werkzeug']}, SQLAlchemy {mach['sqlalchemy']}, psycopg {mach['psycopg']}")
    w(f"- SQLite {mach['sqlite']} (Python's sqlite3), PostgreSQL {pg_version or 'not reached'} "
      f"on 127.0.0.1:5432; {mach['wrk']}")
    w("")
    w("## Settings (identical for both servers)")
    w("")
    flags = " ".join(f"{flag} {shlex.quote(value)}" for flag, _env, value in settings)
    w(f"- gunicorn flags for both: `--bind 127.0.0.1:<free port> {flags} "
      "--error-logfile - --no-control-socket`; no access log on either")
    w("- baseline: `gunicorn -c bench/gunicorn_baseline.conf.py <flags> --pythonpath bench "
      "baseline_app:app` (an empty settings file, so gunicorn does not read the repo's "
      "`gunicorn.conf.py`; answers `ok`, stores nothing)")
    w("- receiver: `gunicorn -c bench/gunicorn_receiver.conf.py <flags> wsgi:app` = the repo's "
      "`gunicorn.conf.py` executed unchanged (wire.install, migrations + `default` inbox in "
      "`on_starting`) with `accesslog = None`")
    recv_env = {k: v for k, v in os.environ.items()
                if k.startswith("RECEIVER_") and k not in {e for _f, e, _v in settings}}
    recv_env.pop("RECEIVER_ACCESS_LOG", None)
    w("- receiver app settings: as shipped (defaults), e.g. RECEIVER_LOG_CAPTURES on (a "
      "`Fired WebHook` log record per capture, to a log file), RECEIVER_SQLITE_SYNCHRONOUS "
      "NORMAL (WAL), RECEIVER_INBOX_CAPACITY 10000; "
      + ("overridden from the environment: " + ", ".join(f"{k}={v}" for k, v in recv_env.items())
         if recv_env else "no RECEIVER_* overrides in the environment"))
    w("- database: a fresh one per receiver start: SQLite file in a temp dir "
      "(`DATABASE_URL=sqlite:////tmp/receiver-bench-*/receiver.sqlite3`), or a PostgreSQL "
      "database created and dropped per start "
      "(`postgresql+psycopg://postgres@127.0.0.1:5432/receiver_bench_<pid>_<round>`)")
    w(f"- load: `wrk -t{WRK_THREADS} -c{args.connections} -d{args.duration:g}s "
      f"--timeout={WRK_TIMEOUT} -s bench/<payload>.lua "
      f"http://127.0.0.1:<port>{HOOK_PATH}`, after a {WARMUP_S} s warm-up (not counted) per "
      "payload; every delivery distinct (own code URL), timestamp = now")
    w(f"- {args.rounds} rounds per database; server order alternates per round "
      "(baseline first in odd rounds), payload order too")
    distinct = sorted(set(fingerprints))
    w(f"- app source fingerprint (sha256 of receiver/*.py, wsgi.py, gunicorn.conf.py, "
      f"migrations): {', '.join(distinct) or '-'}"
      + (" — **the app changed during the run**" if len(distinct) > 1 else ""))
    w("")
    for database, (ms, rows) in results.items():
        title = "SQLite" if database == "sqlite" else "PostgreSQL"
        goal = GOALS[database]
        w(f"## {title} (goal: receiver ≥ {goal}x the baseline, p99 < {P99_GOAL_MS:g} ms at "
          f"{args.connections} connections)")
        w("")
        disturbed = sum(1 for m in ms if any("disturbed" in n for n in m.notes))
        if disturbed:
            w(f"**{disturbed} of {len(ms)} runs were disturbed by other processes (> "
              f"{DISTURBED_CORES} cores busy outside the server, wrk and PostgreSQL): the "
              "figures below are unreliable; rerun on a quiet machine.**")
            w("")
        if not rows:
            w("No complete round.")
            w("")
            continue
        w("| payload | body | baseline req/s | receiver req/s | ratio of medians | "
          "median of per-round ratios | baseline p50 / p99 ms | receiver p50 / p99 ms | "
          "non-2xx (base / recv) | socket errors (base / recv) | stored / acknowledged | goal |")
        w("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|")
        for r in rows.values():
            stored = f"{r['stored']:,} / {r['acked']:,}" + (" ok" if r["stored_ok"] else
                                                             " **MISMATCH**")
            if r["stored_by_id"]:
                stored += " (by id: the inbox filled and dropped its oldest)"
            elif r["stored_whole"] != r["stored"]:
                stored += f" ({r['stored_whole']:,} intact)"
            verdict = "met" if r["goal_met"] else "**not met**"
            w(f"| {r['title']} | {r['body_bytes']} B | {fmt(r['baseline_rps'])} | "
              f"{fmt(r['receiver_rps'])} | {r['ratio_of_medians']:.3f}x | "
              f"{r['median_ratio']:.3f}x | {fmt(r['baseline_p50'])} / {fmt(r['baseline_p99'])} | "
              f"{fmt(r['receiver_p50'])} / {fmt(r['receiver_p99'])} | "
              f"{r['non2xx'][0]} / {r['non2xx'][1]} | "
              f"{r['socket_errors'][0]} / {r['socket_errors'][1]} | {stored} | {verdict} |")
        w("")
        w("Per round:")
        w("")
        w("| round | payload | baseline req/s | receiver req/s | ratio | baseline p99 ms | "
          "receiver p99 ms | receiver max ms | server CPU ms/req (base / recv) | "
          "server cores busy (base / recv) | PostgreSQL cores (recv) | "
          "other load, cores (base / recv) | "
          "wrk CPU ms/req (base / recv) | acked | stored | rows in capture after |")
        w("|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
        for name, _t, _s in PAYLOADS:
            for rnd in sorted({m.round for m in ms}):
                b = next((m for m in ms if (m.round, m.payload, m.server) ==
                          (rnd, name, "baseline")), None)
                rv = next((m for m in ms if (m.round, m.payload, m.server) ==
                           (rnd, name, "receiver")), None)
                if not b or not rv:
                    continue

                def per_req(m, seconds):
                    return seconds * 1000 / max(m.wrk["requests"], 1)

                w(f"| {rnd} | {name} | {fmt(b.wrk['rps'])} | {fmt(rv.wrk['rps'])} | "
                  f"{rv.wrk['rps'] / b.wrk['rps']:.3f} | {fmt(b.wrk['p99_ms'])} | "
                  f"{fmt(rv.wrk['p99_ms'])} | {fmt(rv.wrk['max_ms'])} | "
                  f"{per_req(b, b.server_cpu_s):.2f} / {per_req(rv, rv.server_cpu_s):.2f} | "
                  f"{b.server_cpu_s / b.wrk['duration_s']:.2f} / "
                  f"{rv.server_cpu_s / rv.wrk['duration_s']:.2f} | "
                  f"{rv.postgres_cpu_s / rv.wrk['duration_s']:.2f} | "
                  f"{b.other_cpu_s / b.wrk['duration_s']:.2f} / "
                  f"{rv.other_cpu_s / rv.wrk['duration_s']:.2f} | "
                  f"{per_req(b, b.wrk['wrk_cpu_s']):.3f} / "
                  f"{per_req(rv, rv.wrk['wrk_cpu_s']):.3f} | "
                  f"{rv.wrk['acked']:,} | {rv.stored:,} | {rv.rows_after:,} |")
        notes = [f"round {m.round} {m.payload}: {n}" for m in ms for n in m.notes]
        if notes:
            w("")
            w("Notes: " + "; ".join(notes))
        w("")
    if failures:
        w("## Start failures")
        w("")
        for failure in failures:
            w("```")
            w(failure)
            w("```")
        w("")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    if args.rounds < 1 or args.duration <= 0 or args.connections < WRK_THREADS:
        parser.error("rounds >= 1, duration > 0, connections >= 2")

    started = datetime.now(UTC)
    t0 = time.monotonic()
    settings = worker_settings()
    mach = machine()
    databases = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    pg_version = postgres_version() if "postgresql" in databases else None
    per_server = WARMUP_S * 2 + args.duration * 2 + 10
    log(f"about {len(databases) * args.rounds * 2 * per_server / 60:.1f} min; settings: "
        + " ".join(f"{f} {v}" for f, _e, v in settings))

    results: dict[str, tuple[list[Measurement], dict]] = {}
    failures: list[str] = []
    fingerprints: list[str] = []
    status = 0
    for database in databases:
        if database == "postgresql" and pg_version is None:
            failures.append("PostgreSQL at 127.0.0.1:5432 not reachable: skipped. Start it with "
                            "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) "
                            "main start`.")
            status = 1
            continue
        try:
            ms = run_database(database, args, settings, failures, fingerprints)
        except StartError as exc:
            failures.append(f"{database}: {exc}; its measurements are incomplete.")
            status = 1
            continue
        results[database] = (ms, summarize(database, ms, args.connections))

    text = report(args, settings, mach, pg_version, results, failures, fingerprints, started,
                  time.monotonic() - t0)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.md").write_text(text + "\n")
    raw = {
        "command": sys.argv,
        "started": started.isoformat(),
        "machine": mach,
        "settings": {env: value for _f, env, value in settings},
        "summary": {db: rows for db, (_ms, rows) in results.items()},
        "measurements": [m.__dict__ for _db, (ms, _rows) in results.items() for m in ms],
        "failures": failures,
    }
    (RESULTS / "latest.json").write_text(json.dumps(raw, indent=1, default=str) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
