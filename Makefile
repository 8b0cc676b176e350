# citykpi — every target installs what it needs, so each works on a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DB     ?= citykpi.duckdb

.PHONY: install demo test test-all test-wheel lint format bench sample browser java clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install citykpi with its dev extras

demo: $(STAMP) ## ingest the sample city, evaluate its last day, print the scorecard, write the HTML report
	$(BIN)/python -m citykpi.demo

test: $(STAMP) browser java ## install what the tests need and run them
	$(BIN)/pytest

test-all: $(STAMP) browser java ## also the slow fault-injection and soak tests
	$(BIN)/pytest -m ''

test-wheel: $(STAMP) ## build the wheel, install it without extras into a clean venv, run the whole job with it
	$(BIN)/pytest -m wheel tests/test_packaging.py

browser: ## headless Chromium from Debian's packages, for the HTML report test (skipped if it cannot be installed)
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-wqy-zenhei >/dev/null 2>&1) || \
	  echo "note: chromium not installed; the browser test will be skipped"; }

java: ## Java 17+ from Debian's packages, for the Spark backend's tests (they fail in CI without it)
	@v=$$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1); \
	[ -n "$$v" ] && [ "$$v" -ge 17 ] 2>/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null 2>&1 || \
	   DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-21-jre-headless >/dev/null 2>&1) || \
	  echo "note: Java 17 not installed; the Spark tests will be skipped (and fail under CI=true)"; }

lint: $(STAMP) ## ruff (lint + format check) and mypy
	$(BIN)/ruff check citykpi tests bench
	$(BIN)/ruff format --check citykpi tests bench
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format citykpi tests bench
	$(BIN)/ruff check --fix citykpi tests bench

sample: $(STAMP) ## regenerate the sample city (deterministic)
	$(BIN)/python -m citykpi.sample

bench: $(STAMP) ## city-scale benchmark (see bench/README.md); SCALE=small for a quick run
	$(BIN)/python bench/run.py --scale $${SCALE:-city}

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache out $(DB) $(DB).wal
