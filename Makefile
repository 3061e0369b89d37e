# The two commands: `make up` runs the platform in the foreground, `make test` runs the suite.
# `make node` joins one more node (HARBORMASTER_NODE, DOCKER_HOST) to the installation `make up`
# runs, in the foreground; `make node-down` stops that node's processes.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: up down node node-down test unit venv

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@$(PY) -m venv $(VENV) 2>/dev/null || { echo "installing python3-venv"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null && \
	  $(PY) -m venv $(VENV); }
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	@touch $@

up: venv
	$(BIN)/python -m ops up

down: venv
	$(BIN)/python -m ops down

node: venv
	$(BIN)/python -m ops node

node-down: venv
	$(BIN)/python -m ops node-down

test: venv
	$(BIN)/python -m pytest

unit: venv
	$(BIN)/python -m pytest tests/unit
