# Stacklight: `make run` starts the demo plant HMI, `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=
PYTEST_ARGS ?=

.PHONY: run test test-unit test-integration test-browser bench setup clean

$(VENV)/.runtime-installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: $(VENV)/.runtime-installed requirements-dev.txt
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

setup: $(VENV)/.runtime-installed

run: $(VENV)/.runtime-installed
	$(PY) -m launcher $(ARGS)

test: $(VENV)/.dev-installed
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: $(VENV)/.dev-installed
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-integration: $(VENV)/.dev-installed
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

test-browser: $(VENV)/.dev-installed
	$(PY) -m pytest tests/browser $(PYTEST_ARGS)

bench: $(VENV)/.dev-installed
	$(PY) -m bench.ingest_opcua

clean:
	rm -rf $(VENV) data .pytest_cache
