# The two commands: `make demo` and `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev
PEERS := bench/.venvs

# Debian packages the tests use, as package:command (the command, or file, that shows it is installed):
# wrk drives the gateway soak test; prometheus brings promtool for the SLO rules; prometheus-alertmanager receives
# the SLO alerts; chromium runs the dashboard's browser tests through Playwright; systemd's systemd-analyze checks
# the unit files; postgresql is the shared store's test server; Java runs a local Spark.
DEBIAN_PACKAGES := wrk:wrk redis-server:redis-server prometheus:prometheus prometheus-alertmanager:prometheus-alertmanager \
  chromium:chromium systemd:systemd-analyze postgresql:/usr/lib/postgresql/15/bin/initdb \
  openjdk-17-jre-headless:java
APT := $(shell command -v apt-get 2>/dev/null)

.PHONY: demo test lint typecheck bench bench-import bench-peers clean system-deps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m aisre demo $(DEMO_ARGS)

system-deps:
	@missing=""; for pc in $(DEBIAN_PACKAGES); do command -v $${pc#*:} >/dev/null || missing="$$missing $${pc%%:*}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ -n "$(APT)" ] && [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing Debian packages:$$missing (tests that need them are skipped)"; fi; \
	fi

# Lint, format check and type check first (seconds), then the suite.
test: $(STAMP) system-deps lint typecheck
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench examples
	$(VENV)/bin/ruff format --check src tests bench examples

typecheck: $(STAMP)
	$(VENV)/bin/mypy src

bench: $(STAMP)
	$(PY) bench/ingest.py

bench-import: $(STAMP)
	$(PY) bench/import_time.py

# The peers' own virtualenvs (their pins never meet ours), so anyone can reproduce
# docs/benchmarks.md: drift (Evidently, NannyML, Alibi Detect) and gateway (LiteLLM, nginx, wrk).
bench-peers: $(STAMP)
	@if [ -n "$(APT)" ] && [ "$$(id -u)" = 0 ]; then \
	  for p in nginx wrk; do command -v $$p >/dev/null || need="$$need $$p"; done; \
	  [ -z "$$need" ] || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$need >/dev/null); fi
	test -x $(PEERS)/evidently/bin/python || ($(PYTHON) -m venv $(PEERS)/evidently && \
	  $(PEERS)/evidently/bin/pip install -q 'evidently==0.7.23' 'pandas<3' 'plotly<6' pyarrow)
	test -x $(PEERS)/nannyml/bin/python || ($(PYTHON) -m venv $(PEERS)/nannyml && \
	  $(PEERS)/nannyml/bin/pip install -q 'nannyml==0.13.1' 'plotly<6' pyarrow statsmodels)
	test -x $(PEERS)/alibi/bin/python || ($(PYTHON) -m venv $(PEERS)/alibi && \
	  $(PEERS)/alibi/bin/pip install -q 'alibi-detect==0.13.0' pyarrow && $(PEERS)/alibi/bin/pip install -q 'pyarrow<20')
	test -x $(PEERS)/litellm/bin/litellm || ($(PYTHON) -m venv $(PEERS)/litellm && \
	  $(PEERS)/litellm/bin/pip install -q 'litellm[proxy]')
	@echo "peers ready under $(PEERS)/: run bench/drift.py and bench/gateway.py (see docs/benchmarks.md)"

clean:
	rm -rf $(VENV) demo.db demo.db-wal demo.db-shm .pytest_cache .mypy_cache
