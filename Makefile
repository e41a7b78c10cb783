# CaseTrail — two commands on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PORT ?= 8000
HOST ?= 127.0.0.1
UV_VERSION ?= 0.13.9
SWAGGER_UI_VERSION ?= 5.35.0
SWAGGER_UI_DIR := server/static/swagger-ui
SWAGGER_UI_FILES := LICENSE NOTICE favicon-32x32.png swagger-ui-bundle.js \
  swagger-ui-standalone-preset.js swagger-ui.css

# The server, the test tools, and ffmpeg as a wheel only where no system ffmpeg exists.
EXTRAS := server dev $(if $(shell command -v ffmpeg 2>/dev/null),,ffmpeg)
comma := ,
EXTRAS_CSV := $(subst $(eval) ,$(comma),$(strip $(EXTRAS)))

.PHONY: run test setup system lint types contracts pytest bench clean lock vendor-swagger-ui

# Installs exactly the versions in uv.lock (with their hashes), then the project itself
# (editable). A dependency added to pyproject.toml but not yet locked still installs
# in the second step, within its range; `make lock` pins it.
$(STAMP): pyproject.toml uv.lock
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "CaseTrail needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"
	$(BIN)/uv export --frozen --no-emit-project --format requirements-txt --quiet \
	  $(addprefix --extra ,$(EXTRAS)) -o $(VENV)/requirements.lock.txt
	$(BIN)/python -m pip install --quiet --require-hashes -r $(VENV)/requirements.lock.txt
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS_CSV)]'
	@touch $(STAMP)

setup: $(STAMP) system

# Regenerate uv.lock after changing dependencies in pyproject.toml (resolves for every
# platform and every extra; needs PyPI). The integrator runs this at merge:
#   .venv/bin/uv lock          (uv from `pip install uv==$(UV_VERSION)`)
lock:
	@test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"
	$(BIN)/uv lock

# System packages the tests need (PostgreSQL server); installed when absent and possible.
system:
	@bash .ci/system-deps

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

contracts: $(STAMP)
	$(BIN)/lint-imports

types: $(STAMP)
	$(BIN)/mypy

pytest: setup
	$(BIN)/pytest $(PYTEST_ARGS)

test: setup lint contracts types pytest

# `make run PORT=8080 HOST=0.0.0.0`; CASETRAIL_* variables or a config file pick the data.
run: setup
	$(BIN)/casetrail serve --init --host $(HOST) --port $(PORT)

bench: setup
	$(BIN)/python -m bench $(BENCH_ARGS)

# Swagger UI is vendored from npm's swagger-ui-dist (server/static/swagger-ui/VENDOR.toml
# records the version, the tarball's integrity and each file's SHA-256). To update:
#   make vendor-swagger-ui SWAGGER_UI_VERSION=5.x.y   (then review and commit)
vendor-swagger-ui:
	@set -euo pipefail; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	  integrity=$$(npm view "swagger-ui-dist@$(SWAGGER_UI_VERSION)" dist.integrity); \
	  (cd "$$tmp" && npm pack --silent "swagger-ui-dist@$(SWAGGER_UI_VERSION)" >/dev/null); \
	  got="sha512-$$(openssl dgst -sha512 -binary "$$tmp"/swagger-ui-dist-*.tgz | base64 -w0)"; \
	  [ "$$got" = "$$integrity" ] || { echo "integrity mismatch: $$got != $$integrity"; exit 1; }; \
	  tar -xzf "$$tmp"/swagger-ui-dist-*.tgz -C "$$tmp"; \
	  cd $(SWAGGER_UI_DIR); for f in $(SWAGGER_UI_FILES); do cp "$$tmp/package/$$f" .; done; \
	  { echo '# swagger-ui-dist from the npm registry, vendored for offline agency networks.'; \
	    echo '# Refresh: `make vendor-swagger-ui SWAGGER_UI_VERSION=…` (checks the tarball integrity).'; \
	    echo 'package = "swagger-ui-dist"'; echo 'version = "$(SWAGGER_UI_VERSION)"'; \
	    echo "integrity = \"$$integrity\""; echo; echo '[sha256]'; \
	    for f in $(SWAGGER_UI_FILES); do echo "\"$$f\" = \"$$(sha256sum "$$f" | cut -d' ' -f1)\""; done; \
	  } > VENDOR.toml

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
