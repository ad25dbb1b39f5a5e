# `make run`: install and start the server on SQLite at http://127.0.0.1:8000
# `make test`: install everything the tests need and run the whole suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint install browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

# Debian's Chromium drives the browser tests; no tool downloads a browser of its own.
browser:
	@command -v chromium >/dev/null 2>&1 || scripts/install-chromium.sh

# The whole suite on SQLite, then again on PostgreSQL (browser tests once).
test: install browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	PY=$(BIN)/python scripts/test-postgresql.sh $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check receiver tests wsgi.py gunicorn.conf.py
