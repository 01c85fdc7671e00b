# One task runner. `make run` and `make test` are the README's first two commands.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip -q --disable-pip-version-check

.PHONY: run test lint typecheck fmt bench-ingest clean

$(VENV)/.core: pyproject.toml
	$(PY) -m venv $(VENV)
	$(PIP) install -e '.[dev]'
	touch $@

## run: set up, ingest your Claude Code history (or the bundled sample) and show what is stored
run: $(VENV)/.core
	$(BIN)/lmm ingest
	$(BIN)/lmm stats
	$(BIN)/lmm search "database is locked" -n 3

## test: set up, then lint, type-check and run the default test suite
test: $(VENV)/.core lint typecheck
	$(BIN)/pytest -q

lint: $(VENV)/.core
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench

typecheck: $(VENV)/.core
	$(BIN)/mypy

fmt: $(VENV)/.core
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench-ingest: $(VENV)/.core
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
