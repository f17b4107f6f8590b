# rcgate: the two commands a newcomer runs are `make run` and `make test`.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: run test check setup sysdeps venv web assistants bench clean

run: setup ## set everything up and start the gateway with a demo (http://localhost:8080)
	$(BIN)/rcgate demo

test: setup sysdeps assistants ## set everything up and run every check and test
	scripts/test

check: setup ## ruff, mypy strict, import-linter, hadolint
	scripts/check

setup: venv web

venv: $(VENV)/.stamp
$(VENV)/.stamp: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $@

web: web/node_modules/.stamp
web/node_modules/.stamp: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The real assistant CLIs (Claude Code, Codex, Gemini) the hook tests drive offline.
assistants: tools/assistants/node_modules/.stamp
tools/assistants/node_modules/.stamp: tools/assistants/package.json tools/assistants/package-lock.json
	cd tools/assistants && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# System packages the tests drive for real; installed only when missing.
sysdeps:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v oathtool >/dev/null || missing="$$missing oathtool"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v ssh >/dev/null || missing="$$missing openssh-client"; \
	command -v tmux >/dev/null || missing="$$missing tmux"; \
	command -v unshare >/dev/null || missing="$$missing util-linux"; \
	command -v ip >/dev/null || missing="$$missing iproute2"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

bench: setup
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) web/node_modules .mypy_cache .ruff_cache .pytest_cache
