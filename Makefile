# Rhenus — two commands do everything: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Re-install only when the project's dependencies change.
DEPS_STAMP := $(VENV)/.deps-$(shell cat pyproject.toml | sha256sum | cut -c1-12)
DEV_STAMP := $(VENV)/.dev-$(shell cat pyproject.toml | sha256sum | cut -c1-12)

.PHONY: run test lint typecheck pytest install install-dev test-services demo clean

$(BIN)/python:
	@echo "==> creating virtual environment in $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(DEPS_STAMP): $(BIN)/python pyproject.toml
	@echo "==> installing rhenus and its dependencies"
	$(BIN)/pip install --progress-bar on -e .
	@rm -f $(VENV)/.deps-* && touch $@

$(DEV_STAMP): $(DEPS_STAMP)
	@echo "==> installing development dependencies"
	$(BIN)/pip install --progress-bar on -e '.[dev]'
	@rm -f $(VENV)/.dev-* && touch $@

install: $(DEPS_STAMP)
install-dev: $(DEV_STAMP)

## Start a node on embedded defaults (SQLite, local encrypted blobs) at http://127.0.0.1:8080
run: install
	$(BIN)/rhenus run

## The federation story, told by live nodes on this machine
demo: install
	$(BIN)/rhenus demo

## Servers the tests use for real: PostgreSQL (server binaries; the tests start their own cluster)
test-services:
	@if ! command -v pg_ctl >/dev/null && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then \
	  echo "==> installing PostgreSQL server binaries (Debian package postgresql)"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	  else echo "PostgreSQL is missing: install the 'postgresql' package (needs root)"; exit 1; fi; \
	fi

lint: install-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install-dev
	$(BIN)/mypy

pytest: install-dev test-services
	$(BIN)/pytest -v -p no:cacheprovider --durations=15

## ruff, mypy and the whole suite (SQLite and PostgreSQL, local and S3 blobs)
test: lint typecheck pytest

clean:
	rm -rf $(VENV) .rhenus .mypy_cache .ruff_cache
