# 手机党校 — `make run` sets everything up and starts the site; `make test` runs the tests.
SHELL := /bin/bash
# The first Python 3.11+ on this machine.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
  command -v $$p >/dev/null && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app app
MO := school/translations/zh/LC_MESSAGES/messages.mo
HOST ?= 127.0.0.1
PORT ?= 5000
export HOST PORT

.PHONY: run test lint install migrate demo translations shots bench-pages clean audit

run: install migrate demo  ## set up and start the site and its worker (Ctrl-C stops both)
	$(BIN)/python -m school.serve

test: install  ## the whole test suite
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .

audit: install  ## bandit over the shipped code; pip-audit over requirements.txt (see README, Security)
	$(BIN)/bandit -c pyproject.toml -r school app.py -q
	$(BIN)/python .ci/pip_audit.py

install: $(VENV)/.installed $(MO)

$(VENV)/.installed: requirements.txt
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is needed" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt
	@touch $@

$(MO): school/translations/zh/LC_MESSAGES/messages.po $(VENV)/.installed
	$(BIN)/pybabel compile -d school/translations --statistics

migrate: install
	$(FLASK) db upgrade

demo: install
	$(FLASK) content load content/demo

translations: install  ## extract new strings; fill them in school/translations/zh/…/messages.po
	$(BIN)/pybabel extract -F babel.cfg -k _l -o school/translations/messages.pot --no-location --omit-header . >/dev/null
	$(BIN)/python -m school.translations.update

bench-pages: install
	$(BIN)/python bench/pages.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
