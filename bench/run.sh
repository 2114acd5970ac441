#!/usr/bin/env bash
# obole's load figures (not run in CI): builds the release binaries, installs wrk from
# Debian's packages if missing, and runs obole-bench on SQLite, then on PostgreSQL when
# it is reachable. Extra arguments go to obole-bench (e.g. --members 1000 --seconds 5).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null 2>&1; then
  echo "== installing wrk"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
cargo build --release --locked --bin obole --bin obole-bench

echo "== SQLite"
target/release/obole-bench --database sqlite "$@"

PG_URL="${OBOLE_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
if command -v psql >/dev/null 2>&1 && psql "$PG_URL" -qtAc 'SELECT 1' >/dev/null 2>&1; then
  echo "== PostgreSQL"
  target/release/obole-bench --database postgres --postgres-url "$PG_URL" "$@"
else
  echo "== PostgreSQL not reachable at $PG_URL: skipped"
fi
