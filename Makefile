# The few commands everyone uses. Only python3 (3.11+) and make are needed: the first run creates .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DB ?= sqlite:///milepost.db

.PHONY: install run test lint typecheck pytest fuzz crash clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

HOST ?= 127.0.0.1
PORT ?= 8000

## Set up, load demo data into a SQLite file, and serve Milepost (prints the address).
# The sandbox provider (deposits of money from nothing) is enabled here for the demo, and nowhere by default.
# The CSRF key is kept in a local file (made once, mode 0600), so that a restart does not refuse open forms.
SECRET_KEY_FILE ?= .milepost-secret-key
run: install $(SECRET_KEY_FILE)
	$(BIN)/milepost demo --db $(DB)
	MILEPOST_PROVIDERS=sandbox,manual MILEPOST_SECRET_KEY_FILE=$(SECRET_KEY_FILE) \
		$(BIN)/milepost serve --db $(DB) --host $(HOST) --port $(PORT)

$(SECRET_KEY_FILE):
	umask 077 && $(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(32))' > $@

## Set up and run every check: lint, types, and the whole test suite on SQLite and PostgreSQL.
test: install lint typecheck pytest

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest -n 2

## A long property-based fuzzing run of the whole API (CI runs 6 examples per operation).
FUZZ_EXAMPLES ?= 500
fuzz: install
	MILEPOST_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -n 2 -p no:cacheprovider tests/api/test_fuzz.py

## Kill the server (SIGKILL) under concurrent money operations and the worker mid-run, CRASH_ROUNDS times
## each on SQLite and on PostgreSQL (a database it creates on MILEPOST_TEST_POSTGRES_URL's server, else
## 127.0.0.1:5432, and drops); prints the figures. CI runs 2 rounds of it in tests/crash.
CRASH_ROUNDS ?= 20
CRASH_DATABASES ?= sqlite,postgres
crash: install
	$(BIN)/python -m tests.crash --rounds $(CRASH_ROUNDS) --databases $(CRASH_DATABASES)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis src/*.egg-info
