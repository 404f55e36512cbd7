# The two commands: `make demo` and `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev

# Debian packages the tests use (wrk drives the gateway soak test).
DEBIAN_PACKAGES := wrk redis-server
APT := $(shell command -v apt-get 2>/dev/null)

.PHONY: demo test lint bench clean system-deps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/instrument_sklearn.py --store sqlite:///demo.db

system-deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do command -v $$p >/dev/null || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ -n "$(APT)" ] && [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing Debian packages:$$missing (tests that need them are skipped)"; fi; \
	fi

test: $(STAMP) system-deps
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench examples

bench: $(STAMP)
	$(PY) bench/ingest.py

clean:
	rm -rf $(VENV) demo.db demo.db-wal demo.db-shm .pytest_cache
