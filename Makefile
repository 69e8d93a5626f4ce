# The two commands of the README: `make demo` runs the bridge beside local
# simulators; `make test` runs the whole suite (lint, types, tests on SQLite and
# PostgreSQL) on every Python that pyproject.toml allows: .python-version's first,
# then each of NEWER in its own environment (.venv-3.12, ...). Both set up what they
# need on a fresh machine: the project and its dev tools are installed from uv.lock
# (what the platform builds, plus the `dev` extra), with uv from PATH or, when
# missing, installed from PyPI into .tools. `make pytest` is one Python's run.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TOOLS := $(CURDIR)/.tools
UV ?= $(or $(shell command -v uv 2>/dev/null),$(TOOLS)/bin/uv)
export UV
NODE_PACKAGES := tests/browser/node_modules/.package-lock.json
NEWER := 3.12 3.13
# An interpreter for Python $(1): pyenv's when it has one (its shims answer only for
# the selected version), else python$(1) from PATH.
python_for = $(or $(wildcard $(shell pyenv prefix $(1) 2>/dev/null)/bin/python$(1)),python$(1))

.PHONY: demo test check lint types pytest pytest-newer services bench clean

demo: $(VENV)/.installed
	$(BIN)/drip-bridge demo

test: check pytest-newer

check: lint types pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(VENV)/.installed
	$(BIN)/mypy

pytest: $(VENV)/.installed services $(NODE_PACKAGES)
	$(BIN)/pytest

pytest-newer: $(NEWER:%=$(VENV)-%/.installed) services $(NODE_PACKAGES)
	set -e; for version in $(NEWER); do $(VENV)-$$version/bin/pytest; done

# Segment's JavaScript libraries for the browser and Node tests (analytics-next,
# analytics-node), exactly as tests/browser/package-lock.json pins them.
$(NODE_PACKAGES): tests/browser/package-lock.json
	@command -v npm >/dev/null && npm ci --prefix tests/browser --no-audit --no-fund \
	  || echo "npm is not installed: the browser tests need Node.js 20 and npm (npm ci in tests/browser)"

# PostgreSQL for the Postgres half of the suite: start the machine's cluster if it is down.
# Debian's Chromium for the dashboard's browser tests (Playwright drives it; it
# downloads no browser of its own).
services:
	@pg_isready -q -h 127.0.0.1 -p 5432 || { \
	  command -v pg_ctlcluster >/dev/null && \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | head -n1) main start && \
	  sleep 2; } || echo "PostgreSQL is not running and could not be started"
	@test -x /usr/bin/chromium || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
	  || echo "Chromium is not installed and could not be installed (apt-get install chromium)"

# bench/ingest loads the servers with wrk, from Debian's packages.
bench: $(VENV)/.installed services
	@command -v wrk >/dev/null || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; } \
	  || echo "wrk is not installed and could not be installed (apt-get install wrk)"
	$(BIN)/python -m bench

$(VENV)/.installed: pyproject.toml uv.lock .python-version | $(UV)
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --locked --extra dev --quiet
	touch $@

$(VENV)-%/.installed: pyproject.toml uv.lock | $(UV)
	UV_PROJECT_ENVIRONMENT=$(VENV)-$* $(UV) sync --locked --extra dev --quiet \
	  --python $(call python_for,$*)
	touch $@

$(TOOLS)/bin/uv:
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet 'uv>=0.9,<1'

clean:
	rm -rf $(VENV) $(NEWER:%=$(VENV)-%) .tools instance .pytest_cache .mypy_cache .ruff_cache tests/browser/node_modules
