# `make run` starts the local stack; `make test` runs lint, types and every test.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint unit bench package scan venv clean

# (Re)installs only when the requirements changed: a no-op when up to date.
$(STAMP): requirements.txt requirements-build.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(PY) -m devserver

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m vulture

unit: $(STAMP)
	$(PY) -m pytest -q

test: lint package scan unit

# The deployable template (build/template.yaml) and code (build/deployment.zip): chalice's
# output with infra/template.yaml merged in. A region is enough; no AWS credentials.
# chalice targets the Lambda runtime of the Python it runs on, and AWS no longer accepts
# python3.11 for new functions: package from the newest interpreter available.
PACKAGE_PYTHON ?= $(firstword \
	$(foreach p,python3.13 python3.12,$(shell $(p) -c 'import sys; print(sys.executable)' 2>/dev/null)) \
	$(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13 $(HOME)/.pyenv/versions/3.12*/bin/python3.12) \
	python3)
PACKAGE_VENV := .venv-package

$(PACKAGE_VENV)/.installed: requirements.txt requirements-build.txt
	rm -rf $(PACKAGE_VENV)
	$(PACKAGE_PYTHON) -m venv $(PACKAGE_VENV)
	$(PACKAGE_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		-r requirements.txt -r requirements-build.txt
	touch $@

package: $(STAMP) $(PACKAGE_VENV)/.installed
	rm -rf build
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(PACKAGE_VENV)/bin/chalice package \
		--pkg-format cloudformation --template-format yaml \
		--merge-template infra/template.yaml build
	mv build/sam.yaml build/template.yaml
	$(PACKAGE_VENV)/bin/python infra/finish_package.py build/deployment.zip
	@$(PY) -c 'import zipfile, os; z = "build/deployment.zip"; \
		n = sum(i.file_size for i in zipfile.ZipFile(z).infolist()); \
		print(f"Lambda package: {os.path.getsize(z) / 1e6:.1f} MB zipped, {n / 1e6:.1f} MB unzipped")'
	# Any finding fails the build, informational ones included; no rule is silenced.
	$(VENV)/bin/cfn-lint --non-zero-exit-code informational build/template.yaml

# checkov pins its own dependencies (boto3 among them): it gets a virtualenv of its own.
CHECKOV_VENV := .venv-checkov
$(CHECKOV_VENV)/.installed: requirements-scan.txt
	rm -rf $(CHECKOV_VENV)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-scan.txt
	touch $@

# The security scan of the packaged template; infra/checkov.yaml lists each skipped
# check with why it does not apply.
scan: package $(CHECKOV_VENV)/.installed
	$(CHECKOV_VENV)/bin/checkov -f build/template.yaml --config-file infra/checkov.yaml

# Figures, not pass/fail: run by hand, never by `make test`.
bench: $(STAMP) package
	$(PY) -m bench.coldstart
	$(PY) -m bench.upload
	$(PY) -m bench.download
	$(PY) -m bench.publish
	$(PY) -m bench.releases
	$(PY) -m bench.pages
	$(PY) -m bench.simple_vs_devpi

clean:
	rm -rf $(VENV) $(PACKAGE_VENV) $(CHECKOV_VENV) .pytest_cache .mypy_cache .ruff_cache build
