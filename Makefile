# The two commands of the README, and a few for developers.
#   make run    install what is needed, load demo data, start the whole system (Ctrl-C stops it)
#   make test   install what the tests need and run the whole suite (SQLite and PostgreSQL)

SHELL := /bin/bash
VENV := .venv
DIDEHBAN := $(VENV)/bin/didehban
PYTEST_ARGS ?=

.PHONY: run test lint format bootstrap-run bootstrap-test prompts demo

run: bootstrap-run
	$(DIDEHBAN) demo
	@if $(DIDEHBAN) --help | grep -q ' prompts '; then $(DIDEHBAN) prompts build; fi
	$(DIDEHBAN) up --test-phones

test: bootstrap-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	@if $(DIDEHBAN) --help | grep -q ' prompts '; then $(DIDEHBAN) prompts build; fi
	DIDEHBAN_TEST_POSTGRES_URL="$$(bash scripts/postgres-for-tests.sh)" \
	  bash scripts/run-tests.sh $(PYTEST_ARGS)

bootstrap-run:
	bash scripts/bootstrap.sh run

bootstrap-test:
	bash scripts/bootstrap.sh test

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format:
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
