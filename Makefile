# Developer tasks. The two set-up commands users need are in README.md.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: check lint format typecheck test

check: lint typecheck  ## lint + type-check

lint:
	$(PY) -m ruff check rag ui eval tests bench
	$(PY) -m ruff format --check rag ui eval tests bench

format:
	$(PY) -m ruff format rag ui eval tests bench
	$(PY) -m ruff check --fix rag ui eval tests bench

typecheck:
	$(PY) -m mypy rag

test:
	$(PY) -m pytest
