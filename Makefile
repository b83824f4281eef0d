# Everything a newcomer needs: `make demo` runs the main job on the embedded emulated fleet,
# `make test` runs lint, types, architecture contracts and the whole test suite.
# Both create their own virtual environment and install the few Debian packages the emulated
# monitors need (BusyBox, the OpenSSH client), so they work on a fresh machine.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
APT_PACKAGES := busybox-static openssh-client openssh-server tmux chromium poppler-utils tshark time nftables iptables softhsm2
PYTEST_ARGS ?=

.PHONY: demo test lint typecheck unit deps venv bench clean

# KEEP=1 keeps the demo's journal after it ends (its path is printed), to export or inspect it.
demo: venv deps
	$(BIN)/cmspatch demo $(if $(KEEP),--keep)

test: venv deps lint typecheck
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check orchestrator tui tests bench
	$(BIN)/lint-imports

typecheck: venv
	$(BIN)/mypy

unit: venv
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

bench: venv deps
	$(BIN)/python -m bench

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

# The emulated monitors run a real BusyBox shell; tests also drive the OpenSSH client.
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing" >&2; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache demo-run
