# Developer and operator shortcuts. `make` (or `make help`) lists the targets.
# The commands themselves are the documented ones (README.md, docs/operations.md); this file only
# names them.

SHELL := bash
.DEFAULT_GOAL := help

# The Compose CLI: the docker plugin, or a standalone Compose v2 `docker-compose`.
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
# Which stack `make down` stops: compose.yml (development) or compose.prod.yml.
COMPOSE_FILE ?= compose.yml
# Volumes `make configure` creates (the names compose.yml and compose.prod.yml expect).
PRISM_DEV_VOLUME ?= prism-data
PRISM_PG_VOLUME ?= prism-pgdata
IMAGE ?= prism:dev

.PHONY: help dev test build lint static configure down image bench coverage ci

help: ## List the targets
	@awk 'BEGIN { FS = ":.*## " } /^[a-z-]+:.*## / { printf "  make %-10s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

dev: ## Run both planes (`prism up`, release build) on ./prism-data
	cargo run --release --locked --bin prism -- up

test: ## The test suite (README's command; PostgreSQL tests need PRISM_TEST_POSTGRES_URL)
	cargo test --workspace

build: ## Release binary at target/release/prism
	cargo build --release --locked --bin prism

lint: ## cargo fmt --check, clippy -D warnings, then the static checks
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	bash scripts/static-checks.sh

static: ## Only the static checks (workflows, Dockerfile, compose, nginx, Prometheus, cargo-deny)
	bash scripts/static-checks.sh

configure: ## Create the compose stacks' external volumes (SQLite data, PostgreSQL data)
	docker volume create $(PRISM_DEV_VOLUME)
	docker volume create $(PRISM_PG_VOLUME)

down: ## Stop a compose stack, all profiles (COMPOSE_FILE=compose.prod.yml for production); volumes are kept
	$(COMPOSE) -f $(COMPOSE_FILE) --profile '*' down

image: ## Build the Docker image (IMAGE=prism:dev)
	docker build -t $(IMAGE) .

bench: ## cargo bench, then the proxy-overhead benchmark (needs nginx and wrk)
	cargo bench --workspace
	bash bench/proxy/run.sh

coverage: ## Line coverage (cargo-tarpaulin) and the gate: data plane >= 85 %, control plane >= 80 %
	bash scripts/coverage.sh

ci: ## What CI runs (.ci/run): PostgreSQL, fmt, static checks, clippy, tests
	bash .ci/run
