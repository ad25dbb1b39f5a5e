#!/usr/bin/env bash
# Run the test suite against PostgreSQL: a database made for this run and dropped after.
# Uses PG_ADMIN_URL (default: the local server, user postgres, trust auth).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
ADMIN=${PG_ADMIN_URL:-postgresql://postgres@127.0.0.1:5432/postgres}
NAME="receiver_test_$$"

if ! "$PY" - "$ADMIN" <<'PYEOF'
import sys, psycopg
try:
    psycopg.connect(sys.argv[1], connect_timeout=3).close()
except Exception as exc:
    print(f"PostgreSQL is not reachable at {sys.argv[1]}: {exc}", file=sys.stderr)
    sys.exit(1)
PYEOF
then
  if [ "${CI:-}" = "true" ]; then
    echo "CI needs PostgreSQL for the second half of the suite." >&2
    exit 1
  fi
  echo "Skipping the PostgreSQL run: no server (set PG_ADMIN_URL to point at one)." >&2
  exit 0
fi

sql() { "$PY" -c "import sys, psycopg; c = psycopg.connect(sys.argv[1], autocommit=True); c.execute(sys.argv[2]); c.close()" "$ADMIN" "$1"; }
sql "CREATE DATABASE $NAME"
trap 'sql "DROP DATABASE IF EXISTS $NAME WITH (FORCE)"' EXIT
base=${ADMIN%/*}
echo "== the suite on PostgreSQL ($NAME)"
TEST_DATABASE_URL="${base/postgresql:/postgresql+psycopg:}/$NAME" "$PY" -m pytest -m "not browser and not slow" "$@"
