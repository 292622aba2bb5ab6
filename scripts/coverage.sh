#!/usr/bin/env bash
# Line coverage with cargo-tarpaulin and the gate from the seed's targets: the data plane
# (prism-intercept, prism-grpc) at least 85 %, the control plane (prism-soul) at least 80 %.
# Prints coverage per crate and per plane; fails when a plane is under its floor.
# Used by .ci/run, `make coverage` and the GitHub workflow.
#
#   scripts/coverage.sh            # run tarpaulin, then gate
#   scripts/coverage.sh --report   # gate an existing target/coverage/lcov.info only
#
# cargo-tarpaulin (pinned) is installed on first use when absent into ~/.cargo/bin. Its llvm engine needs no
# llvm-tools component. PostgreSQL tests run when PRISM_TEST_POSTGRES_URL is set.
set -euo pipefail
cd "$(dirname "$0")/.."

TARPAULIN_VERSION="0.37.5"
DATA_PLANE_MIN="${DATA_PLANE_MIN:-85}"
CONTROL_PLANE_MIN="${CONTROL_PLANE_MIN:-80}"
OUT=target/coverage
export PATH="$HOME/.cargo/bin:$PATH"

if [ "${1:-}" != "--report" ]; then
  if ! cargo tarpaulin --version >/dev/null 2>&1; then
    echo "   installing cargo-tarpaulin $TARPAULIN_VERSION (crates)"
    cargo install --locked --quiet cargo-tarpaulin --version "$TARPAULIN_VERSION"
  fi
  # Only the gated crates' own test suites; a separate target dir keeps the instrumented build
  # from invalidating the normal one.
  cargo tarpaulin --locked --engine llvm --skip-clean --target-dir target/tarpaulin --timeout 900 \
    -p prism-intercept -p prism-grpc -p prism-soul \
    --out Lcov --output-dir "$OUT" >"$OUT.log" 2>&1 || {
    tail -n 60 "$OUT.log"
    echo "coverage run failed (full log: $OUT.log)"
    exit 1
  }
fi

# Sums covered (LH) and coverable (LF) lines from the LCOV report, per crate and per plane.
awk -v data_min="$DATA_PLANE_MIN" -v control_min="$CONTROL_PLANE_MIN" '
  /^SF:/ { crate = ""; if (match($0, /crates\/prism-[a-z]+\/src\//)) crate = substr($0, RSTART + 7, RLENGTH - 12) }
  crate != "" && /^LF:/ { found[crate] += substr($0, 4) }
  crate != "" && /^LH:/ { hit[crate] += substr($0, 4) }
  END {
    for (c in found) printf "   %-16s %5.1f%% of %d lines\n", c, 100 * hit[c] / found[c], found[c]
    status = 0
    status += gate("data plane (prism-intercept, prism-grpc)", hit["prism-intercept"] + hit["prism-grpc"], found["prism-intercept"] + found["prism-grpc"], data_min)
    status += gate("control plane (prism-soul)", hit["prism-soul"], found["prism-soul"], control_min)
    exit status ? 1 : 0
  }
  function gate(name, h, f, min,    pct) {
    if (f == 0) { printf "%s: no coverable lines found\n", name; return 1 }
    pct = 100 * h / f
    printf "%s: %.1f%% (minimum %d%%) %s\n", name, pct, min, (pct + 0.0001 < min) ? "FAILED" : "ok"
    return (pct + 0.0001 < min) ? 1 : 0
  }' "$OUT/lcov.info"
