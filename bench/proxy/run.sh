#!/usr/bin/env bash
# Proxy overhead, measured side by side in one run on this machine:
#   direct  — wrk → upstream (nginx answering a small 200)
#   nginx   — wrk → nginx proxy_pass (keepalive to the upstream) → upstream   (the reference proxy)
#   prism   — wrk → POST /rest on `prism up` → upstream, recording every execution in SQLite
# and, to show what the libraries alone cost, the floor under PRISM (examples/proxy_floor.rs: the
# same axum server and reqwest client, doing nothing of PRISM's own work):
#   floor-bytes — wrk → axum → reqwest → upstream, the upstream's body answered as is
#   floor-json  — the same, parsing the call as JSON and answering a JSON envelope like /rest
#   floor-hyper — like floor-bytes with hyper-util's client instead of reqwest
# at c=1 (added p50 latency) and c=64 (throughput kept). Needs nginx and wrk (Debian packages).
#
#   bench/proxy/run.sh            # 10 s per measurement
#   DURATION=30s bench/proxy/run.sh
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="${OUT:-$ROOT/target/bench-proxy}"
DURATION="${DURATION:-10s}"
UPSTREAM_PORT=18080
NGINX_PORT=18081
SOUL_PORT=18090
INTERCEPT_PORT=18091
FLOOR_BYTES_PORT=18092
FLOOR_JSON_PORT=18093
FLOOR_HYPER_PORT=18094

for tool in nginx wrk python3; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install nginx-light wrk)" >&2; exit 2; }
done

rm -rf "$OUT"
mkdir -p "$OUT/logs"
cargo build --release --locked --bin prism --manifest-path "$ROOT/Cargo.toml" >&2
cargo build --release --locked -p prism-intercept --example proxy_floor --manifest-path "$ROOT/Cargo.toml" >&2
PRISM="${CARGO_TARGET_DIR:-$ROOT/target}/release/prism"
FLOOR="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/proxy_floor"

cat >"$OUT/nginx.conf" <<CONF
worker_processes auto;
pid $OUT/nginx.pid;
error_log $OUT/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $OUT/tmp;
    proxy_temp_path $OUT/tmp;
    fastcgi_temp_path $OUT/tmp;
    uwsgi_temp_path $OUT/tmp;
    scgi_temp_path $OUT/tmp;
    keepalive_requests 1000000;
    upstream backend { server 127.0.0.1:$UPSTREAM_PORT; keepalive 128; }
    server {
        listen 127.0.0.1:$UPSTREAM_PORT;
        location / { default_type text/plain; return 200 "hello\n"; }
    }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
CONF
mkdir -p "$OUT/tmp"
nginx -c "$OUT/nginx.conf" -p "$OUT" -g "daemon on;"

PRISM_PID=""
FLOOR_PIDS=()
cleanup() {
    [ -n "$PRISM_PID" ] && kill "$PRISM_PID" 2>/dev/null || true
    for pid in "${FLOOR_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    [ -f "$OUT/nginx.pid" ] && kill "$(cat "$OUT/nginx.pid")" 2>/dev/null || true
}
trap cleanup EXIT

DATA="$OUT/prism-data"
export PRISM_LOG=warn
echo "correct horse battery staple" | "$PRISM" user add --email bench@example.test --password-stdin --data-dir "$DATA" >/dev/null
WORKSPACE="$("$PRISM" workspace create --name bench --owner bench@example.test --data-dir "$DATA" | tail -1)"
TOKEN="$("$PRISM" token create --email bench@example.test --data-dir "$DATA" | tail -1)"
"$PRISM" up --data-dir "$DATA" --soul-listen "127.0.0.1:$SOUL_PORT" \
    --intercept-listen "127.0.0.1:$INTERCEPT_PORT" --otlp-grpc-listen 127.0.0.1:0 >"$OUT/logs/prism.log" 2>&1 &
PRISM_PID=$!
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$INTERCEPT_PORT/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done

"$FLOOR" "127.0.0.1:$FLOOR_BYTES_PORT" "http://127.0.0.1:$UPSTREAM_PORT/hello" bytes &
FLOOR_PIDS+=($!)
"$FLOOR" "127.0.0.1:$FLOOR_JSON_PORT" "http://127.0.0.1:$UPSTREAM_PORT/hello" json &
FLOOR_PIDS+=($!)
"$FLOOR" "127.0.0.1:$FLOOR_HYPER_PORT" "http://127.0.0.1:$UPSTREAM_PORT/hello" hyper &
FLOOR_PIDS+=($!)
for port in "$FLOOR_BYTES_PORT" "$FLOOR_JSON_PORT" "$FLOOR_HYPER_PORT"; do
    for _ in $(seq 1 100); do
        curl -fsS -X POST -d '{}' "http://127.0.0.1:$port/rest" >/dev/null 2>&1 && break
        sleep 0.1
    done
done

cat >"$OUT/rest.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"method":"GET","url":"http://127.0.0.1:$UPSTREAM_PORT/hello","workspace_id":"$WORKSPACE"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
LUA

# Warm-up (connection pools, page cache), not measured.
wrk -t1 -c8 -d2s "http://127.0.0.1:$UPSTREAM_PORT/hello" >/dev/null
wrk -t1 -c8 -d2s "http://127.0.0.1:$NGINX_PORT/hello" >/dev/null
wrk -t1 -c8 -d2s --latency -s "$OUT/rest.lua" "http://127.0.0.1:$INTERCEPT_PORT/rest" >"$OUT/prism-warmup.txt"
wrk -t1 -c8 -d2s -s "$OUT/rest.lua" "http://127.0.0.1:$FLOOR_BYTES_PORT/rest" >/dev/null
wrk -t1 -c8 -d2s -s "$OUT/rest.lua" "http://127.0.0.1:$FLOOR_JSON_PORT/rest" >/dev/null
wrk -t1 -c8 -d2s -s "$OUT/rest.lua" "http://127.0.0.1:$FLOOR_HYPER_PORT/rest" >/dev/null

measure() { # name conns threads url [script]
    local name=$1 conns=$2 threads=$3 url=$4 script=${5:-}
    local args=(-t"$threads" -c"$conns" -d"$DURATION" --latency)
    [ -n "$script" ] && args+=(-s "$script")
    wrk "${args[@]}" "$url" >"$OUT/$name-c$conns.txt"
}
for conns in 1 64; do
    threads=$([ "$conns" = 1 ] && echo 1 || echo 2)
    measure direct "$conns" "$threads" "http://127.0.0.1:$UPSTREAM_PORT/hello"
    measure nginx "$conns" "$threads" "http://127.0.0.1:$NGINX_PORT/hello"
    measure floor-bytes "$conns" "$threads" "http://127.0.0.1:$FLOOR_BYTES_PORT/rest" "$OUT/rest.lua"
    measure floor-json "$conns" "$threads" "http://127.0.0.1:$FLOOR_JSON_PORT/rest" "$OUT/rest.lua"
    measure floor-hyper "$conns" "$threads" "http://127.0.0.1:$FLOOR_HYPER_PORT/rest" "$OUT/rest.lua"
    measure prism "$conns" "$threads" "http://127.0.0.1:$INTERCEPT_PORT/rest" "$OUT/rest.lua"
done

# Peak memory, then stop PRISM (SIGTERM flushes the recorder) and count what it recorded.
PEAK_RSS="$(awk '/VmHWM/ {print $2 " " $3}' "/proc/$PRISM_PID/status")"
kill -TERM "$PRISM_PID"; wait "$PRISM_PID" || true; PRISM_PID=""
python3 - "$OUT" "$DATA/prism.db" "$DURATION" "$PEAK_RSS" <<'PY'
import re, sqlite3, sys, pathlib
out, db, duration, peak_rss = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]

def parse(name):
    text = (out / f"{name}.txt").read_text()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    total = int(re.search(r"(\d+) requests in", text).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: (.*)", text)
    p50 = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    scale = {"us": 1.0, "ms": 1000.0, "s": 1e6}
    return {
        "rps": rps, "total": total,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "errors": errors.group(1) if errors else "",
        "p50_us": float(p50.group(1)) * scale[p50.group(2)],
        "p99_us": float(p99.group(1)) * scale[p99.group(2)],
    }

PATHS = ("direct", "nginx", "floor-hyper", "floor-bytes", "floor-json", "prism")
r = {f"{n}-c{c}": parse(f"{n}-c{c}") for n in PATHS for c in (1, 64)}
recorded = sqlite3.connect(db).execute("SELECT count(*) FROM executions").fetchone()[0]
prism_sent = r["prism-c1"]["total"] + r["prism-c64"]["total"] + parse("prism-warmup")["total"]

lines = [f"Proxy overhead — {duration} per measurement, wrk, one run, 2-core machine", "",
         "| path | c | req/s | p50 | p99 | non-2xx |", "|---|---|---|---|---|---|"]
for c in (1, 64):
    for n in PATHS:
        m = r[f"{n}-c{c}"]
        lines.append(f"| {n} | {c} | {m['rps']:.0f} | {m['p50_us']:.0f} µs | {m['p99_us']:.0f} µs | {m['non2xx']} |")
d64, n64, p64 = (r[f"{n}-c64"]["rps"] for n in ("direct", "nginx", "prism"))
d1, n1, p1 = (r[f"{n}-c1"]["p50_us"] for n in ("direct", "nginx", "prism"))
lines += ["",
  f"- c=64 throughput kept vs direct: nginx {n64/d64:.1%}, PRISM {p64/d64:.1%} (goal: ≥ nginx's ratio; PRISM/nginx ratio {p64/n64:.2f})",
  f"- c=1 p50 added vs direct: nginx {n1-d1:.0f} µs, PRISM {p1-d1:.0f} µs (goal: ≤ 200 µs)",
  f"- the libraries' floor, c=64 throughput kept vs direct: axum+hyper-util client "
  f"{r['floor-hyper-c64']['rps']/d64:.1%}, axum+reqwest forwarding bytes "
  f"{r['floor-bytes-c64']['rps']/d64:.1%}, with a JSON envelope {r['floor-json-c64']['rps']/d64:.1%}; "
  f"c=1 p50 added: {r['floor-hyper-c1']['p50_us']-d1:.0f} µs, {r['floor-bytes-c1']['p50_us']-d1:.0f} µs "
  f"and {r['floor-json-c1']['p50_us']-d1:.0f} µs",
  f"- executions recorded by PRISM: {recorded}; requests wrk completed (incl. warm-up): {prism_sent} "
  f"(requests cut off in flight when wrk stops are executed and recorded but not counted by wrk)",
  f"- PRISM peak RSS over the whole run: {peak_rss}",
  ]
text = "\n".join(lines)
(out / "results.md").write_text(text + "\n")
print(text)
PY
