# Two commands matter: `make run` (the chat server) and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
XDIST ?= auto

.PHONY: install run demo shell test lint bench services js clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all,dev]'
	touch $(STAMP)

install: $(STAMP)

HOST ?= 127.0.0.1
PORT ?= 8000

run: $(STAMP)
	$(BIN)/agent-runtime serve --host $(HOST) --port $(PORT)

demo: $(STAMP)
	$(BIN)/python examples/crash_and_resume.py

# a shell with .venv/bin first on PATH, so `agent-runtime` and `python` are the project's
shell: $(STAMP)
	@echo "agent-runtime is on PATH in this shell (exit to leave)"
	@VIRTUAL_ENV="$(abspath $(VENV))" PATH="$(abspath $(BIN)):$$PATH" $${SHELL:-/bin/sh} -i

services:
	./scripts/ensure_services.sh

# The real chat clients the dialect tests drive (tests/js), installed from the lockfile; only a
# missing or stale node_modules asks the npm registry. Without npm the tests skip locally and
# fail under CI=true.
JS_STAMP := tests/js/node_modules/.package-lock.json
$(JS_STAMP): tests/js/package-lock.json
	@if command -v npm >/dev/null 2>&1; then cd tests/js && npm ci --no-audit --no-fund --prefer-offline --loglevel=error; \
	else echo "npm is not installed: the dialect client tests need Node.js" >&2; [ "$${CI:-}" != "true" ]; fi

js: $(JS_STAMP)

test: $(STAMP) services js
	$(BIN)/python -m pytest -n $(XDIST) -q -m "not serial"
	$(BIN)/python -m pytest -p no:xdist -q -m serial

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/mypy

bench: $(STAMP) services
	@status=0; for f in bench/*.py; do echo "== $$f"; $(BIN)/python $$f || status=1; done; \
	if [ $$status -ne 0 ]; then echo "some benchmark targets were missed (see above)"; fi; exit $$status

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .agent-runtime
