#!/bin/sh
# Analytics at 10 million executions: PRISM on SQLite and PostgreSQL, then DuckDB over the same rows.
# The first run generates the data (minutes); later runs reuse it from $BENCH_DIR.
# PostgreSQL: BENCH_POSTGRES_URL (or PRISM_TEST_POSTGRES_URL), e.g. postgres://postgres@127.0.0.1:5432/postgres
set -eu
cd "$(dirname "$0")/../.."
export BENCH_DIR="${BENCH_DIR:-/tmp/prism-analytics-bench}"
cargo bench -p prism-store --bench analytics
python3 bench/analytics/duckdb_compare.py "$BENCH_DIR"
