# One task runner. `make run` and `make test` are the README's first two commands.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip -q --disable-pip-version-check
# torch first and pinned, so no resolver pulls another build (override for your platform:
# make TORCH='torch --index-url https://download.pytorch.org/whl/cpu')
TORCH ?= torch==2.13.0
EXTRAS ?= dev,embed,llm,train,mcp,eval,team
# the Claude Code CLI the real-client tests drive (tests/assets/claude_cli.py)
CLAUDE_CODE_VERSION ?= 2.1.332

.PHONY: run test test-slow lint typecheck fmt bench clean claude-cli team-db

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(PIP) install $(TORCH)
	$(PIP) install -e '.[$(EXTRAS)]'
	touch $@

# No Claude Code history on this machine: `make run` shows lmm on the bundled sample, in a demo
# store of its own (.lmm-demo), never in the user's store.
HISTORY := $(wildcard $(or $(LMM_SOURCE),$(HOME)/.claude/projects)/*/*.jsonl)
DEMO := $(if $(HISTORY),,LMM_HOME=$(CURDIR)/.lmm-demo)

## run: set up, ingest your Claude Code history (or the bundled sample, into a demo store) with
## what it teaches (the rule extractor runs on every ingest), and show what lmm would tell your agent
run: $(VENV)/.installed
	$(DEMO) $(BIN)/lmm ingest $(if $(HISTORY),,--sample)
	$(DEMO) $(BIN)/lmm stats
	$(DEMO) $(BIN)/lmm memories --limit 15
	$(DEMO) $(BIN)/lmm recall "the sqlite database is locked again, how did we fix that?"

## test: set up, then lint, type-check and run the default test suite
test: $(VENV)/.installed lint typecheck
	$(BIN)/pytest -q

## test-slow: the tests behind the `slow` marker (real models, long runs)
test-slow: $(VENV)/.installed
	$(BIN)/pytest -q -m slow

lint: $(VENV)/.installed
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/vulture src scripts vulture_whitelist.py --min-confidence 60

typecheck: $(VENV)/.installed
	$(BIN)/mypy

fmt: $(VENV)/.installed
	$(BIN)/ruff format src tests bench scripts
	$(BIN)/ruff check --fix src tests bench scripts

## bench: the CPU benchmarks recorded in docs/benchmarks.md
bench: $(VENV)/.installed
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/memorycode.py
	$(BIN)/python bench/locomo_recall.py
	$(BIN)/python bench/retrieval_latency.py
	$(BIN)/python bench/recall_latency.py

## team-db: a local PostgreSQL 18 with pgvector for trying team memory (Ctrl-C stops it)
team-db: $(VENV)/.installed
	$(BIN)/python scripts/team_db.py .lmm-team-db

## claude-cli: the pinned Claude Code CLI in .cache/claude-code (npm), for the real-client tests
claude-cli: .cache/claude-code/node_modules/.bin/claude

.cache/claude-code/node_modules/.bin/claude:
	mkdir -p .cache/claude-code
	npm install --prefix .cache/claude-code --no-audit --no-fund @anthropic-ai/claude-code@$(CLAUDE_CODE_VERSION)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
