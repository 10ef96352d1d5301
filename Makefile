# The two commands of the README: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test test-fast lint install

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "The portal needs Python 3.11; set PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(VENV)

# torch first, pinned, with pip (which finds the CPU build a machine may keep on disk): boltz
# depends on it, and a torch already installed keeps the rest from pulling another build. The
# rest with uv, which resolves the same versions as pip and installs them in a fraction of the
# time; compiled to bytecode as pip would, since uv does not by default and a process that may
# not write it (PYTHONDONTWRITEBYTECODE) then compiles what it imports at every start: about
# 7 s of `import boltz.main` in each engine, 4 s of boltz's parser in each web process.
UV_INSTALL := $(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python
$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0 uv==0.13.9
	$(UV_INSTALL) -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	$(UV_INSTALL) -r requirements-dev.txt
	touch $@

# Browser libraries (package.json), served as static files.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

install: $(VENV)/.installed node_modules/.installed

run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py seed_demo --url http://$(HOST):$(PORT)/
	$(BIN)/python manage.py runall --host $(HOST) --port $(PORT)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

# Tests run in TEST_WORKERS processes side by side (pytest-xdist; each with its own database,
# work directory and Redis databases, tests/workers.py): most of a test's time is spent waiting
# on the processes it started, so two workers keep a 2-core machine busy.
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal

# With DATABASE_URL set (CI: PostgreSQL), the tests whose outcome depends on the database (marked
# `database`) run once more on the embedded default, SQLite.
test: lint node_modules/.installed
	$(PYTEST)
ifneq ($(DATABASE_URL),)
	env -u DATABASE_URL -u REDIS_URL $(PYTEST) -m database
endif

# The inner loop: everything not marked slow (no process stacks, engines or browser).
test-fast: $(VENV)/.installed-dev node_modules/.installed
	$(PYTEST) -m "not slow"
