# Two commands matter: `make run` (the server with embedded storage) and `make test` (every test).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Reinstall whenever pyproject.toml's content changes: the stamp is named by its hash, so a checkout
# that only touches the file (a new clone, a worktree) installs nothing again.
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: run worker test test-deps system-packages-run system-packages-test azurite install lint schema migration clean sweep graphiql-assets docs docs-build

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

# With STORAGE_BACKEND=azure (and no Azure account set) the embedded storage is Azurite.
run: install system-packages-run $(if $(filter azure,$(STORAGE_BACKEND)),azurite)
	$(PY) -m app.run

# A standalone version worker (needs QUEUE_URL and the API's DATABASE_URL and storage settings).
worker: install
	$(PY) -m app.worker

# The suite on SQLite, then the database tests again on PostgreSQL (127.0.0.1:5432, database
# `test`; skipped locally when it is not running, required when CI is set). Exit code 5 (nothing
# collected) is not a failure of a pass that selects a subset.
test: install lint test-deps
	$(PY) -m pytest
	TEST_DATABASE=postgres $(PY) -m pytest -m db || [ $$? -eq 5 ]

# Debian packages, installed by tools/debian-packages.sh when missing (one apt-get for all):
# clamd, the virus scanner (app/embedded/clamd.py starts its own; without it `make run` starts without
# a scanner and says so); Pango, which WeasyPrint needs to render value_upload's HTML into PDF (without
# it such a request answers PDF_RENDERER_UNAVAILABLE); Chromium for the browser tests (driven by
# Playwright, whose own browser download is never used).
RUN_PACKAGES := clamav-daemon clamav libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core
TEST_PACKAGES := $(RUN_PACKAGES) chromium

system-packages-run:
	@tools/debian-packages.sh "make run" $(RUN_PACKAGES)

system-packages-test:
	@tools/debian-packages.sh "make test" $(TEST_PACKAGES)

# What the tests need besides Python: the Debian packages above and the npm packages of tests/js and
# tools/azurite, each pinned by its lock file.
test-deps: system-packages-test tests/js/node_modules/.package-lock.json azurite

# Reinstalled only when the lock file changes (npm writes node_modules/.package-lock.json).
tests/js/node_modules/.package-lock.json: tests/js/package-lock.json
	@if command -v npm >/dev/null; then cd tests/js && npm ci --no-audit --no-fund && touch node_modules/.package-lock.json; \
	else echo "test-deps: npm is missing: install Node.js 20+ (the Apollo test fails without it)" >&2; fi

# Azurite, the Azure Storage emulator (the Azure storage tests, `make run` with STORAGE_BACKEND=azure),
# pinned by tools/azurite's lock file and installed there, never globally.
azurite: tools/azurite/node_modules/.package-lock.json

tools/azurite/node_modules/.package-lock.json: tools/azurite/package-lock.json
	@if command -v npm >/dev/null; then cd tools/azurite && npm ci --no-audit --no-fund && touch node_modules/.package-lock.json; \
	else echo "azurite: npm is missing: install Node.js 20+ (the Azure storage tests fail without it)" >&2; exit 1; fi

# The docs site on http://127.0.0.1:8001, rebuilt on every change (mkdocs.yml; `make test` builds it
# with --strict in tests/test_docs.py). NO_MKDOCS_2_WARNING silences Material's notice about MkDocs 2.
docs: install
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs serve --dev-addr 127.0.0.1:8001

# The static site in site/, as tests/test_docs.py builds it.
docs-build: install
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

lint: install
	$(VENV)/bin/ruff check app tests bench tools
	$(VENV)/bin/ruff format --check app tests bench tools
	$(VENV)/bin/mypy app

# Regenerate the committed SDL after changing the GraphQL types.
schema: install
	$(PY) -c "from app.graphql.schema import build_schema; open('schema.graphql', 'w').write(str(build_schema()) + '\n')"

# After upgrading strawberry-graphql: copy the GraphiQL page's assets (React, GraphiQL) from the npm
# registry into app/static/graphiql/, checked against the page's integrity hashes.
graphiql-assets: install
	$(PY) tools/vendor_graphiql.py

# After changing app/models.py: write a migration (see docs/development.md, "Migrations").
migration: install
	$(VENV)/bin/aerich -c aerich.ini migrate --name $(or $(NAME),change)

# One pass of the clean-up sweep (never-saved uploads, stale multipart uploads, discarded files).
sweep: install
	$(PY) -m app.sweep

clean:
	rm -rf $(VENV) var site .pytest_cache .mypy_cache .ruff_cache
