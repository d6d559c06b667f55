# Stacklight: `make run` starts the demo plant HMI, `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=
PYTEST_ARGS ?=
# Test files run in this many worker processes (pytest-xdist; a file's tests stay together).
TEST_WORKERS ?= 2

.PHONY: run test test-unit test-integration test-browser bench setup clean proto

$(VENV)/.runtime-installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: $(VENV)/.runtime-installed requirements-dev.txt
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

setup: $(VENV)/.runtime-installed

# The OPC UA interoperability tests run against node-opcua, a second, independent stack (needs npm).
INTEROP_SERVER := tests/interop/node_opcua_server
$(INTEROP_SERVER)/node_modules/.installed: $(INTEROP_SERVER)/package-lock.json
	cd $(INTEROP_SERVER) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

ifneq ($(shell command -v npm),)
TEST_NEEDS := $(VENV)/.dev-installed $(INTEROP_SERVER)/node_modules/.installed
else
TEST_NEEDS := $(VENV)/.dev-installed
endif

run: $(VENV)/.runtime-installed
	$(PY) -m launcher $(ARGS)

test: $(TEST_NEEDS)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

test-unit: $(VENV)/.dev-installed
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-integration: $(TEST_NEEDS)
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

test-browser: $(VENV)/.dev-installed
	$(PY) -m pytest tests/browser $(PYTEST_ARGS)

bench: $(VENV)/.dev-installed
	$(PY) -m bench.ingest_opcua
	$(PY) -m bench.ingest_mqtt
	$(PY) -m bench.alarm_engine
	$(PY) -m bench.history_query --reuse
	$(PY) -m bench.write_path

# The Sparkplug B schema, compiled in-project; the generated module is committed (the runtime needs only protobuf).
proto: $(VENV)/.dev-installed
	$(PY) -m grpc_tools.protoc -Idata_sources/sparkplug --python_out=data_sources/sparkplug \
		data_sources/sparkplug/sparkplug_b.proto

clean:
	rm -rf $(VENV) data .pytest_cache $(INTEROP_SERVER)/node_modules
