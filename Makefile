# `make run` starts the local stack; `make test` runs lint, types and every test.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint unit bench package venv clean

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

test: lint package unit

# The deployable template (build/template.yaml) and code (build/deployment.zip): chalice's
# output with infra/template.yaml merged in. A region is enough; no AWS credentials.
# chalice targets the Lambda runtime of the Python it runs on, and AWS no longer accepts
# python3.11 for new functions: package from the newest interpreter available.
PACKAGE_PYTHON ?= $(firstword \
	$(foreach p,python3.13 python3.12,$(shell $(p) -c 'import sys; print(sys.executable)' 2>/dev/null)) \
	$(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13 $(HOME)/.pyenv/versions/3.12*/bin/python3.12) \
	python3)
PACKAGE_VENV := .venv-package

$(PACKAGE_VENV)/.installed: requirements.txt
	rm -rf $(PACKAGE_VENV)
	$(PACKAGE_PYTHON) -m venv $(PACKAGE_VENV)
	$(PACKAGE_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

package: $(STAMP) $(PACKAGE_VENV)/.installed
	rm -rf build
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(PACKAGE_VENV)/bin/chalice package \
		--pkg-format cloudformation --template-format yaml \
		--merge-template infra/template.yaml build
	mv build/sam.yaml build/template.yaml
	# Errors fail the build; warnings are printed for the operator to read.
	$(VENV)/bin/cfn-lint --non-zero-exit-code error build/template.yaml

# Figures, not pass/fail: run by hand, never by `make test`.
bench: $(STAMP)
	$(PY) -m bench.upload
	$(PY) -m bench.download

clean:
	rm -rf $(VENV) $(PACKAGE_VENV) .pytest_cache .mypy_cache .ruff_cache build
