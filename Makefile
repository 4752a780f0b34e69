# Kitsu platform. `make help` lists the targets. Every setup target is idempotent.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export KITSU_DB ?= kitsu

.PHONY: help venv postgrest env setup migrate run test test-fast bench bench-auth bench-ingest lint up down grant-role browser-deps titles bench-search bench-accounts

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed ## create .venv and install pinned dependencies

postgrest: ## install the PostgREST 12.0.2 binary into bin/ (checksum verified)
	@bash ops/install_postgrest.sh

setup: venv postgrest ## roles, database, migrations and api code (keeps data)
	$(PY) -m ops.db setup

migrate: venv ## apply pending migrations, then rebuild api code and grants
	$(PY) -m ops.db migrate

run: venv postgrest titles ## set up, start PostgREST, auth_service, the gateway (nginx), workers (+ offline upstream); Ctrl-C stops
	$(PY) -m ops.run

test: venv postgrest titles ## the whole suite (what CI runs): DATABASE_URL, the default address, or an embedded cluster
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: venv ## unit and SQL tests only (no service processes), well under a minute
	$(PY) -m pytest -m "not processes" -q $(PYTEST_ARGS)

lint: venv ## ruff, mypy on the product, and the import contracts (product never imports ops; no cycles)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: venv postgrest titles ## PostgREST benchmark with wrk (seeds 20,000 anime, 1,000 users)
	$(PY) -m ops.bench.api

bench-auth: venv ## auth_service benchmark with wrk: logins/s, p50/p95 vs the hashing limit, flood memory
	$(PY) -m ops.bench.auth $(BENCH_ARGS)

import-legacy: venv ## cut-over: make import-legacy LEGACY_DATABASE_URL=postgresql://… [DRY_RUN=1]
	LEGACY_DATABASE_URL="$(LEGACY_DATABASE_URL)" $(PY) -m legacy_import $(if $(DRY_RUN),--dry-run)

bench-import: venv ## legacy import benchmark: 100,000 users x (20 favorites + 10 progress), 20,000 titles
	$(PY) -m ops.bench.legacy_import

grant-role: venv ## grant an RBAC role: make grant-role EMAIL=a@b.c ROLE=super_admin
	$(PY) -m ops.db grant-role "$(EMAIL)" "$(ROLE)"

env: venv ## write a git-ignored .env with generated secrets and a dev signing key (kept if present)
	$(PY) -c 'from ops import env; print(env.ensure())'

up: env ## docker compose up (where docker exists)
	docker compose up -d --build

down: ## docker compose down
	docker compose down

bench-accounts: venv ## accounts benchmark with wrk: forgot requests/s and p95 at 50 clients; mails/s of one worker
	$(PY) -m ops.bench.accounts $(BENCH_ARGS)

bench-ingest: venv ## ingest benchmark: 20,000 titles/s with the limit off, limited run vs its floor
	$(PY) -m ops.bench.ingest

# tests/browser: @supabase/postgrest-js bundled for the browser (npm registry; git-ignored .cache/browser).
# The bundle's name carries the versions, so changing one rebuilds it; the last line printed is its path.
BROWSER_CACHE := .cache/browser
POSTGREST_JS_VERSION := 1.21.4
ESBUILD_VERSION := 0.28.2
BROWSER_BUNDLE := $(BROWSER_CACHE)/postgrest-js-$(POSTGREST_JS_VERSION)-esbuild-$(ESBUILD_VERSION).mjs

$(BROWSER_BUNDLE):
	@command -v npm >/dev/null || { echo "error: npm is not on PATH; the browser test bundles @supabase/postgrest-js with it (Node.js)" >&2; exit 1; }
	npm install --prefix $(BROWSER_CACHE) --save-exact --no-audit --no-fund --loglevel=error \
		@supabase/postgrest-js@$(POSTGREST_JS_VERSION) esbuild@$(ESBUILD_VERSION)
	cd $(BROWSER_CACHE) && ./node_modules/.bin/esbuild node_modules/@supabase/postgrest-js/dist/esm/wrapper.mjs \
		--bundle --platform=browser --format=esm --log-level=warning --outfile=$(notdir $@).tmp
	mv $@.tmp $@

browser-deps: $(BROWSER_BUNDLE) ## postgrest-js bundled for tests/browser (npm; skipped when built); prints its path
	@echo $(BROWSER_BUNDLE)

# Real anime titles (issue 10): the npm package bangumi-data, pinned by version and tarball integrity
# in ops/titles/package-lock.json (`npm ci` refuses a download that does not match), installed into
# the git-ignored .cache/bangumi-data and never committed. Without npm it says so and succeeds: the
# offline upstream and the benchmarks then fall back to made-up titles (tests that need real ones
# skip, or fail under CI).
TITLES_CACHE := .cache/bangumi-data
TITLES_DATA := $(TITLES_CACHE)/node_modules/bangumi-data/dist/data.json

$(TITLES_DATA): ops/titles/package.json ops/titles/package-lock.json
	@if ! command -v npm >/dev/null; then echo "titles: npm is not on PATH; real titles unavailable (made-up ones are used)" >&2; exit 0; fi; \
	mkdir -p $(TITLES_CACHE) && cp ops/titles/package.json ops/titles/package-lock.json $(TITLES_CACHE)/ && \
	cd $(TITLES_CACHE) && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/bangumi-data/dist/data.json

titles: $(TITLES_DATA) ## real anime titles: bangumi-data (npm, pinned + integrity-checked) into .cache/bangumi-data

bench-search: venv postgrest titles ## search on real titles with wrk: 20k/100k/1M catalogs (BENCH_ARGS="--sizes 20000,100000")
	$(PY) -m ops.bench.search $(BENCH_ARGS)

.PHONY: bench-pooling
bench-pooling: venv postgrest ## PostgREST direct vs through PgBouncer (transaction mode) with wrk: req/s, p95, cores
	$(PY) -m ops.bench.pooling $(BENCH_ARGS)

# load and fault evidence (issue 14, contract §14)
.PHONY: load soak
load: venv postgrest ## load harness: the audit's scenarios + the 500-user mix with locust through the gateway, at 1 and 2 replicas (LOAD_ARGS="--replicas 1,2 --readme")
	$(PY) -m ops.load $(LOAD_ARGS)

soak: venv postgrest ## the long fault runs (PostgreSQL restarts, killed workers, schema reloads, the replica stopped, under load)
	KITSU_SOAK=1 $(PY) -m pytest -m processes tests/faults -q $(PYTEST_ARGS)
