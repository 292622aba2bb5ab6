#!/usr/bin/env python3
"""DuckDB over the same raw executions as PRISM's analytics bench, side by side.

Reads the CSV the bench wrote (converted once to Parquet, not timed), then times the same
overview PRISM computes — totals with P50/P90/P95/P99/max, a time series with P95 per bucket,
per-endpoint count/failures/P99 and a log2 latency histogram — for the same three cases, as the
median of 9 runs. Prints both timings, the ratio PRISM / DuckDB (goal ≤ 2), and checks that
PRISM's percentiles are within its documented bound (0.99 %) of DuckDB's exact ones
(`quantile_disc` is the nearest-rank percentile).

Usage: duckdb_compare.py BENCH_DIR
"""
import json
import os
import statistics
import sys
import time

import duckdb

RUNS = 9
BOUND = 0.009902

bench_dir = sys.argv[1] if len(sys.argv) > 1 else "/tmp/prism-analytics-bench"
prism = json.load(open(os.path.join(bench_dir, "prism_times.json")))
csv = os.path.join(bench_dir, "executions.csv")
parquet = os.path.join(bench_dir, "executions.parquet")
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
if not os.path.exists(parquet):
    con.execute(
        f"""COPY (SELECT * FROM read_csv('{csv}', header = true, types = {{
              'workspace_id': 'VARCHAR', 'request_id': 'VARCHAR', 'protocol': 'VARCHAR',
              'method': 'VARCHAR', 'endpoint': 'VARCHAR', 'status_code': 'INTEGER',
              'failed': 'BOOLEAN', 'started_at': 'BIGINT', 'duration_ns': 'BIGINT'}}))
            TO '{parquet}' (FORMAT parquet)"""
    )

# The CSV carries the ids of the backend that generated it; the other backend holds the same
# values under its own ids, so the drill-down is the same (first) saved request in both.
csv_ids = json.load(open(os.path.join(bench_dir, "csv_ids.json")))
workspace = csv_ids["workspace_id"]


def overview(frm, to, step, request=None):
    """The four aggregates of one overview; returns the totals row."""
    where = f"workspace_id = '{workspace}' AND started_at >= {frm} AND started_at < {to}"
    if request:
        where += f" AND request_id = '{request}'"
    rows = f"(SELECT * FROM '{parquet}' WHERE {where})"
    total = con.execute(
        f"""SELECT count(*), count(*) FILTER (WHERE failed),
                   quantile_disc(duration_ns, [0.5, 0.9, 0.95, 0.99]), max(duration_ns)
            FROM {rows}"""
    ).fetchone()
    con.execute(
        f"""SELECT started_at // {step}, count(*), count(*) FILTER (WHERE failed),
                   quantile_disc(duration_ns, 0.95) FROM {rows} GROUP BY 1"""
    ).fetchall()
    con.execute(
        f"""SELECT protocol, method, endpoint, count(*), count(*) FILTER (WHERE failed),
                   quantile_disc(duration_ns, [0.5, 0.95, 0.99]) FROM {rows} GROUP BY ALL"""
    ).fetchall()
    con.execute(
        f"""SELECT ceil(log2(greatest(duration_ns, 1000) / 1000.0)), count(*)
            FROM {rows} GROUP BY 1"""
    ).fetchall()
    return total


print("| backend | case | PRISM ms | DuckDB ms | PRISM / DuckDB | goal ≤ 100 ms | percentiles within 0.99 % |")
print("|---|---|---|---|---|---|---|")
for backend in ("sqlite", "postgres"):
    if backend not in prism:
        continue
    request = csv_ids["request_id"]
    cases = {
        "last 24 h": None,
        "last 30 d": None,
        "request drill-down, 30 d": request,
    }
    for name, req in cases.items():
        # Exactly the window PRISM answered (the API's `window=24h` / `window=30d`).
        case = prism[backend][name]
        frm, to, step = case["from_ns"], case["to_ns"], case["step_ns"]
        times = []
        for _ in range(RUNS):
            began = time.perf_counter()
            total = overview(frm, to, step, req)
            times.append((time.perf_counter() - began) * 1e3)
        duck = statistics.median(times)
        ours = prism[backend][name]["ms"]
        answer = prism[backend][name]["answer"]
        count, failures, quantiles, maximum = total
        ok = answer["count"] == count and answer["failures"] == failures
        for q, exact in zip(("p50_ms", "p90_ms", "p95_ms", "p99_ms"), quantiles):
            ok &= abs(answer[q] - exact / 1e6) / (exact / 1e6) <= BOUND
        ok &= abs(answer["max_ms"] - maximum / 1e6) < 1e-9
        print(
            f"| {backend} | {name} | {ours:.1f} | {duck:.1f} | {ours / duck:.3f} | "
            f"{'met' if ours <= 100 else 'missed'} | {'yes' if ok else 'NO'} (n={count}) |"
        )
