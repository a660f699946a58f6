# lineage-intake. The two commands a new user needs are `make run` and `make test`; both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# aws-sam-cli pins versions that conflict with the dev tools (boto3, jsonschema...): it gets a venv of its own.
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
SAM_STAMP := $(SAM_VENV)/.installed-stamp
PORT ?= 3000

.DEFAULT_GOAL := help
.PHONY: help install run test test-producers test-ui unit lint format bench demo clean

help:
	@echo "make run    serve the whole pipeline locally on 127.0.0.1:$(PORT) (no Docker, no AWS account)"
	@echo "make test   lint, cfn-lint and every test (unit, integration, e2e)"
	@echo "make lint   ruff, mypy, cfn-lint and sam validate --lint only"
	@echo "make test-producers  dbt-ol, Airflow and openlineage-python against the local stack (installs them once)"
	@echo "make test-ui  Marquez's web UI (built from source) browsing a local stack in headless chromium (needs npm, chromium)"
	@echo "make bench  benchmarks, each figure next to its anchor"
	@echo "make demo   post real events with openlineage-python to a running 'make run' and show the lineage"

$(STAMP): requirements.txt requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt -c requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

$(SAM_STAMP): requirements-sam.txt requirements-sam.lock
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-sam.txt -c requirements-sam.lock
	@touch $(SAM_STAMP)

install: $(STAMP) $(SAM_STAMP)

lint: $(STAMP) $(SAM_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/cfn-lint template.yaml
	SAM_CLI_TELEMETRY=0 $(SAM) validate --lint --region us-east-1 --template template.yaml

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: lint
	$(BIN)/pytest

# Each producer gets its own venv under $${XDG_CACHE_HOME:-~/.cache}/lineage-intake/producers, built on first use.
test-producers: $(STAMP)
	$(BIN)/pytest -m producers tests/producers

# Opt-in: needs Node.js 18+ with npm and Debian's chromium; builds Marquez's UI once (cached). README "make test-ui".
test-ui: $(STAMP)
	$(BIN)/python -m tests.ui.ui_check $(if $(UI_OUT),--out $(UI_OUT))

unit: $(STAMP)
	$(BIN)/pytest tests/unit tests/integration

run: $(STAMP)
	$(BIN)/python -m lineage_intake_tools.local.stack --port $(PORT) \
		$(if $(START_GRACE_SECONDS),--parameter StartGraceSeconds=$(START_GRACE_SECONDS))

demo: $(STAMP)
	$(BIN)/python -m lineage_intake_tools.local.demo

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) $(SAM_VENV) .local .pytest_cache .mypy_cache .ruff_cache .aws-sam
