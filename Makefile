# dancu — two commands on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
HOST ?= 127.0.0.1
PORT ?= 8000
# make demo-oidc: the OpenID provider on PORT, the demo relying party on RP_PORT.
RP_PORT ?= $(shell echo $$(( $(PORT) + 1 )))
PEOPLE ?= 10000
export DANCU_DATA_DIR ?= $(CURDIR)/var

.PHONY: install run test bench lint lock chromium java clean messages demo-oidc

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv

# Installs the pinned lock, then dancu itself in editable mode.
$(VENV)/.installed: requirements.lock pyproject.toml | $(BIN)/python
	$(UV) pip sync --quiet --python $(BIN)/python requirements.lock
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

install: $(VENV)/.installed

# Regenerates the lock from pyproject.toml (run by hand after changing dependencies).
lock: | $(BIN)/python
	$(UV) pip compile --quiet --python $(BIN)/python --extra dev --extra faces --extra spark -o requirements.lock pyproject.toml

# The UI tests drive Debian's Chromium; install it when it is missing (we are root in CI).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

run: install
	$(BIN)/dancu db upgrade
	$(BIN)/dancu demo seed --people $(PEOPLE)
	$(BIN)/dancu serve --host $(HOST) --port $(PORT)

# The Spark engine's tests run PySpark in local mode, which needs a Java runtime (17+).
java:
	@command -v java >/dev/null 2>&1 || { \
	  echo "installing a Java runtime for the Spark tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless >/dev/null; }

test: install chromium java
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q

bench: install
	$(BIN)/python -m bench

# Merges new UI messages into the Vietnamese catalog; translate the empty ones it lists.
messages: install
	$(BIN)/python tools/messages.py

lint: install
	$(BIN)/ruff check src tests bench tools
	$(BIN)/ruff format --check src tests bench tools
	$(BIN)/mypy src

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

# The OpenID provider and a demo relying party (tools/demo_rp.py) side by side: open
# http://127.0.0.1:$(RP_PORT) (PORT + 1 unless given) and sign in with the demo citizen printed by `dancu demo seed`.
demo-oidc: install
	$(BIN)/dancu db upgrade
	$(BIN)/dancu demo seed --people $(PEOPLE) --rp-url http://127.0.0.1:$(RP_PORT)
	@trap 'kill 0' EXIT; \
	  $(BIN)/dancu serve --host 127.0.0.1 --port $(PORT) & \
	  $(BIN)/python tools/demo_rp.py --provider http://127.0.0.1:$(PORT) --port $(RP_PORT)
