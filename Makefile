# EP Park — every target bootstraps .venv from requirements.lock by itself.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench lock clean services

$(STAMP): requirements.lock pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

PORT ?=
# make demo PORT=8080 serves on another port (default 8000).
demo: $(STAMP)
	$(VENV)/bin/eppark demo $(if $(PORT),--port $(PORT))

PG_URL ?= postgres://postgres@127.0.0.1:5432/eppark

# Unit and integration tests on SQLite (the demo default), then the
# integration tests again on PostgreSQL (production); each pass on TEST_WORKERS
# processes (pytest-xdist; PostgreSQL gets one test database per worker).
TEST_WORKERS ?= 2
test: $(STAMP) lint typecheck services
	$(PY) -m pytest -q -n $(TEST_WORKERS) tests
	DATABASE_URL=$(PG_URL) $(PY) -m pytest -q -n $(TEST_WORKERS) tests/integration

services:
	@tools/ensure-services

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

typecheck: $(STAMP)
	EPPARK_TESTING=1 $(VENV)/bin/mypy

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

bench: $(STAMP) services
	$(PY) -m bench

lock: $(STAMP)
	$(VENV)/bin/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links \
	    --extra dev --output-file requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
