# The README's two commands: `make run` and `make test`. Both need only Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint check-migrations test-fast test-slow test-postgres bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py runhub

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

check-migrations: $(STAMP)
	$(BIN)/python manage.py makemigrations --check --dry-run

# The suite in three passes (.ci/run times each): fast is everything not marked slow (SQLite, real local
# services); slow is the kill rounds, fault, load and property-heavy tests; postgres runs the postgres-marked
# tests again on PostgreSQL. Sub-makes, so the passes run one after another even under `make -j`.
test: lint check-migrations
	$(MAKE) --no-print-directory test-fast
	$(MAKE) --no-print-directory test-slow
	$(MAKE) --no-print-directory test-postgres

test-fast: $(STAMP)
	$(BIN)/pytest -m "not slow"

test-slow: $(STAMP)
	$(BIN)/pytest -m slow

test-postgres: $(STAMP)
	$(BIN)/pytest --postgres -m postgres -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
