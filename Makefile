# The few commands everyone uses. Only python3 (3.11+) and make are needed: the first run creates .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DB ?= sqlite:///milepost.db

.PHONY: install run test lint typecheck pytest clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

## Set up, load demo data into a SQLite file and show where the money is.
run: install
	$(BIN)/milepost demo --db $(DB)
	$(BIN)/milepost ledger verify --db $(DB)

## Set up and run every check: lint, types, and the whole test suite on SQLite and PostgreSQL.
test: install lint typecheck pytest

lint: install
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest -n 2

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis src/*.egg-info
