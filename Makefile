# Two commands matter: `make run` (the chat server) and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
XDIST ?= auto

.PHONY: install run demo test lint bench services clean

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

services:
	./scripts/ensure_services.sh

test: $(STAMP) services
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
