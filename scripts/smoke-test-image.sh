#!/usr/bin/env bash
# Smoke test of a built image: starts it with its default command (`prism up`), waits until
# `prism healthcheck` passes on both planes (soul /api/health, intercept /readyz), then removes it.
# Used by the CI and CD workflows before an image is pushed; needs a Docker engine.
#
#   scripts/smoke-test-image.sh prism:dev
set -euo pipefail
image=${1:?usage: scripts/smoke-test-image.sh IMAGE}
name="prism-smoke-$$"

docker run --rm "$image" --version
docker run -d --name "$name" "$image" >/dev/null
trap 'docker rm -f "$name" >/dev/null 2>&1 || true' EXIT

for _ in $(seq 1 30); do
  if docker exec "$name" prism healthcheck \
    && docker exec "$name" prism healthcheck http://127.0.0.1:7000/readyz; then
    echo "smoke test passed: $image"
    exit 0
  fi
  sleep 1
done
echo "smoke test failed: $image is not healthy after 30 s; its log:" >&2
docker logs "$name" >&2
exit 1
