# shared-gov — every target sets up what it needs; `make help` lists them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install run test lint format typecheck bench policy fuzz clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install the project with its dev tools

run: $(STAMP) ## Start PostgreSQL (embedded unless SHARED_GOV_DATABASE_URL), migrate, onboard + seed demo towns, serve on :8000 (SHARED_GOV_PORT); Ctrl-C stops all
	$(BIN)/shared-gov serve --demo

test: $(STAMP) ## Validate the Cedar policies, then run the test suite against a real PostgreSQL
	$(BIN)/shared-gov policy validate
	$(BIN)/pytest

fuzz: $(STAMP) ## API fuzzing (schemathesis, docs/fuzzing.md): FUZZ_EXAMPLES cases per operation (200), new FUZZ_SEED each run
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-200} FUZZ_SEED=$${FUZZ_SEED:-$$(date +%s)} \
		$(BIN)/pytest tests/fuzz --show-capture=no

policy: $(STAMP) ## Validate the Cedar policies against their schema
	$(BIN)/shared-gov policy validate

lint: $(STAMP) ## ruff (lint + format check), mypy --strict on src/, import-linter (the layers)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP) ## Apply ruff formatting and safe fixes
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: $(STAMP) ## Benchmarks (ratios against a baseline measured in the same run)
	@command -v wrk >/dev/null 2>&1 || (command -v apt-get >/dev/null 2>&1 && (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null 2>&1) || echo "wrk unavailable: falling back to the built-in load generator"
	$(BIN)/python bench/tenancy.py
	$(BIN)/python bench/policy.py
	$(BIN)/python bench/crypto.py
	$(BIN)/python bench/audit_verify.py
	$(BIN)/python bench/audit.py
	$(BIN)/python bench/sharing.py
	$(BIN)/python bench/load.py

clean: ## Remove the virtualenv, caches and the local data directory
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
	@echo "kept .shared-gov/ (your local database); remove it by hand to start over"
