# `make run` starts the local stack; `make test` runs lint, types and every test.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint unit bench venv clean

# (Re)installs only when the requirements changed: a no-op when up to date.
$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(PY) -m devserver

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy

unit: $(STAMP)
	$(PY) -m pytest -q

test: lint unit

# Figures, not pass/fail: run by hand, never by `make test`.
bench: $(STAMP)
	$(PY) -m bench.upload
	$(PY) -m bench.download

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build
