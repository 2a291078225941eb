# The two set-up commands: `make run` serves the shipped model, `make test` runs every check.
# Each creates/uses the virtualenv in .venv and installs what it needs first.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint typecheck pytest lock audit bench grpc-stubs clean

run: $(VENV)/.serve-installed
	$(BIN)/attnserve serve

test: $(VENV)/.dev-installed lint typecheck pytest

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy

pytest: $(VENV)/.dev-installed
	$(BIN)/pytest

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.serve-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

# torch comes in first, pinned exactly, so nothing else can pull a CUDA build. The Python
# client (client/, its own distribution) is installed editable so its tests can import it.
$(VENV)/.dev-installed: pyproject.toml client/pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[train,dev]' -e ./client
	touch $@ $(VENV)/.serve-installed

# The serving install resolved in a clean virtualenv and pinned: the Docker build's constraints.
lock: | $(BIN)/python
	rm -rf $(VENV)/lock && $(PYTHON) -m venv $(VENV)/lock
	$(VENV)/lock/bin/pip install --quiet .
	{ sed -n '/^#/p' requirements/serving.txt; \
	  $(VENV)/lock/bin/pip freeze --exclude-editable | grep -v '^attnserve'; } > requirements/serving.lock.tmp
	mv requirements/serving.lock.tmp requirements/serving.txt
	rm -rf $(VENV)/lock

# Known vulnerabilities in the pinned serving packages (pip-audit; see .ci/audit).
audit: $(VENV)/.dev-installed
	BIN=$(BIN) .ci/audit

# The benchmark suite (minutes; needs wrk and h2load, e.g. apt-get install wrk nghttp2-client):
# writes BENCHMARKS.md.
bench: $(VENV)/.dev-installed
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench

# The gRPC messages (service/grpc/attnserve_oip_pb2.py and its .pyi) from their .proto, with
# grpcio-tools' protoc; tests/service/grpc/test_stubs.py fails when they no longer match it.
grpc-stubs: $(VENV)/.dev-installed
	cd service/grpc && $(abspath $(BIN))/python -m grpc_tools.protoc -I. \
		--python_out=. --pyi_out=. attnserve_oip.proto

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
