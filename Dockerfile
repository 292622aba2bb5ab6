# syntax=docker/dockerfile:1
# The `prism` image: one binary, both planes. Default command `prism up` (embedded SQLite in the
# /data volume); run `prism soul` or `prism intercept` with DATABASE_URL for the split deployment
# (see compose.prod.yml and docs/operations.md).
#
#   docker build -t prism .
#   docker run --rm -p 3000:3000 -p 7000:7000 -p 4317:4317 -v prism-data:/data prism

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

# --- planner: reduce the source tree to what decides the dependency graph -----------------------
# The skeleton holds the workspace and crate manifests, Cargo.lock and an empty file for every
# target a manifest names. It changes only when dependencies change, so the builder's dependency
# layer below is reused for every commit that edits only sources.
FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS planner
WORKDIR /src
COPY . .
RUN set -eu; \
    mkdir -p /skeleton; \
    cp Cargo.toml Cargo.lock /skeleton/; \
    for manifest in crates/*/Cargo.toml; do \
      crate=$(dirname "$manifest"); \
      mkdir -p "/skeleton/$crate/src"; \
      cp "$manifest" "/skeleton/$crate/"; \
      touch "/skeleton/$crate/src/lib.rs"; \
      for target in "$crate"/src/main.rs "$crate"/src/bin/*.rs "$crate"/tests/*.rs \
                    "$crate"/tests/*/main.rs "$crate"/benches/*.rs "$crate"/examples/*.rs; do \
        [ -f "$target" ] || continue; \
        mkdir -p "$(dirname "/skeleton/$target")"; \
        echo 'fn main() {}' > "/skeleton/$target"; \
      done; \
      if [ ! -f "$crate/src/lib.rs" ]; then rm "/skeleton/$crate/src/lib.rs"; fi; \
    done

# --- builder ---------------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS builder
WORKDIR /src
# Dependencies only: compiled against the skeleton's empty crates, cached as its own layer.
COPY --from=planner /skeleton/ ./
RUN cargo build --release --locked --bin prism
# The real sources. Their timestamps come from the build context and may be older than the
# skeleton build above, so touch them to make cargo rebuild the workspace crates.
COPY . .
RUN find crates -name '*.rs' -exec touch {} + \
    && cargo build --release --locked --bin prism \
    && cp target/release/prism /usr/local/bin/prism \
    && /usr/local/bin/prism --version

# --- runtime ---------------------------------------------------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# ca-certificates: the system trust roots for requests PRISM runs against HTTPS/TLS targets
# (rustls reads them through rustls-native-certs) and for TLS connections to PostgreSQL.
# Unpinned on purpose: the image should pick up the distribution's security updates on rebuild.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 prism \
    && useradd --system --uid 10001 --gid prism --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin prism \
    && mkdir -p /data \
    && chown prism:prism /data

COPY --from=builder /usr/local/bin/prism /usr/local/bin/prism
COPY deploy/docker/prism-healthcheck /usr/local/bin/prism-healthcheck

# Listen on every interface inside the container; publish ports to choose what is reachable.
# PRISM_DATA_DIR holds prism.db under `prism up` and the recorder's spool in every mode.
ENV PRISM_DATA_DIR=/data \
    PRISM_SOUL_LISTEN=0.0.0.0:3000 \
    PRISM_INTERCEPT_LISTEN=0.0.0.0:7000 \
    PRISM_OTLP_GRPC_LISTEN=0.0.0.0:4317

VOLUME ["/data"]
WORKDIR /data
# The prism user (numeric, so Kubernetes' runAsNonRoot can verify it).
USER 10001:10001
# 3000 control plane (soul), 7000 data plane (intercept, OTLP/HTTP), 4317 OTLP/gRPC.
EXPOSE 3000 7000 4317

# `prism healthcheck` against HEALTHCHECK_URL, by default the soul's /api/health (right for
# `prism up` and `prism soul`). An intercept-only container sets
# HEALTHCHECK_URL=http://127.0.0.1:7000/readyz (compose.prod.yml does).
HEALTHCHECK --interval=30s --timeout=10s --start-period=40s --retries=3 \
    CMD ["prism-healthcheck"]

ENTRYPOINT ["prism"]
CMD ["up"]
