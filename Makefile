# driftloop: drift monitoring and self-retraining for a tabular binary classifier.
# `make help` lists the targets.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIPELINE := $(VENV)/bin/pipeline
STATE_DIR ?= .stack
DEMO_DIR ?= $(STATE_DIR)/demo
DEMO_ARGS ?= --rows 2000 --batches 12 --drift-at 6 --drift-kind covariate
# The demo's own names (an emergency-department triage admission model), given to the demo's commands only;
# the package's defaults are neutral (PIPELINE_MODEL_NAME driftloop-model, PIPELINE_EXPERIMENT_NAME driftloop).
DEMO_MODEL_NAME ?= ed-triage-admission
DEMO_EXPERIMENT_NAME ?= ed-triage-monitoring
DEMO_ENV = PIPELINE_MODEL_NAME=$(DEMO_MODEL_NAME) PIPELINE_EXPERIMENT_NAME=$(DEMO_EXPERIMENT_NAME)

# One shared setting: the bucket that `make local-up` creates and that infra/envs/localstack declares.
ARTIFACT_BUCKET ?= driftloop-artifacts
export ARTIFACT_BUCKET
export PIPELINE_ARTIFACT_BUCKET ?= $(ARTIFACT_BUCKET)
export PIPELINE_STATE_DIR ?= $(STATE_DIR)

-include mk/*.mk

.PHONY: help install local-up local-down monitor test test-fast lint clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk 'BEGIN{FS=":.*## "}{printf "  %-18s %s\n", $$1, $$2}'

# Exactly the locked versions (requirements/dev.lock, checked against its hashes; `make lock` writes it), then
# the project itself, editable, without resolving anything more.
$(VENV)/.installed: pyproject.toml requirements/dev.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements/dev.lock  # spark too: Java 17 only to run its tests
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $@

install: $(VENV)/.installed ## Create .venv and install the locked dependencies, all extras, and the project (editable)

# The local stack: host processes (STACK=embedded, the default, with or without Docker), or docker/compose.yaml
# (STACK=compose: Grafana and Adminer too; it needs a Docker engine and docker/.env with its passwords).
STACK ?= embedded
COMPOSE_ENV ?= docker/.env

local-up: install ## Start the local stack (host processes; STACK=compose for docker/compose.yaml)
	@case "$(STACK)" in \
	compose) \
		docker info >/dev/null 2>&1 || { echo "STACK=compose needs a Docker engine, and none answers (docker info); leave STACK unset for the embedded stack"; exit 2; }; \
		test -f $(COMPOSE_ENV) || { echo "STACK=compose: $(COMPOSE_ENV) is missing: cp docker/.env.example $(COMPOSE_ENV), set its passwords, and export PIPELINE_METRICS_DB_PASSWORD with the same METRICS_DB_PASSWORD"; exit 2; }; \
		echo "starting docker/compose.yaml (profile local)"; \
		docker compose -f docker/compose.yaml --env-file $(COMPOSE_ENV) --profile local up -d --wait ;; \
	embedded) \
		echo "Starting the embedded host stack (PostgreSQL, moto_server, MLflow) under $(STATE_DIR)/"; \
		$(PIPELINE) stack up ;; \
	*) echo "STACK=$(STACK): choose embedded (the default) or compose"; exit 2 ;; \
	esac

local-down: ## Stop the local stack (the bucket is snapshotted to disk first)
	@if [ "$(STACK)" = compose ]; then \
		docker compose -f docker/compose.yaml --env-file $(COMPOSE_ENV) --profile local down; \
	elif [ -x $(PIPELINE) ]; then \
		$(PIPELINE) stack down; \
	fi

$(DEMO_DIR)/manifest.json: | install
	$(PIPELINE) data synth --out $(DEMO_DIR) $(DEMO_ARGS)

monitor: install local-up $(DEMO_DIR)/manifest.json ## Bootstrap a champion if none, then monitor a drifting stream
	$(DEMO_ENV) $(PIPELINE) train --data $(DEMO_DIR)/reference.csv --if-no-champion
	$(DEMO_ENV) $(PIPELINE) monitor --reference $(DEMO_DIR)/reference.csv --current $(DEMO_DIR)/batch_*.csv \
		--report-json $(DEMO_DIR)/report.json
	@$(PIPELINE) stack snapshot >/dev/null 2>&1 || true

# The suite's tests run in TEST_WORKERS processes (pytest-xdist; each starts its own servers on free ports).
# TEST_WORKERS=0 runs them in this one process. Three on two cores: a test waits on its servers much of the time
# (the whole suite took 12 min 1 s with 3, 14 min 45 s with 2, on 2 cores).
TEST_WORKERS ?= 3

test: install tools-checkov ## Run the whole test suite (unit, integration, end to end, infra) in TEST_WORKERS processes
	$(VENV)/bin/pytest -n $(TEST_WORKERS)

test-fast: install tools-checkov ## Run the fast layer only (no end-to-end loop runs, no Spark)
	$(VENV)/bin/pytest -n $(TEST_WORKERS) -m "not e2e and not spark"

lint: install ## ruff, mypy on the package, the layers contract (import-linter), and a secrets scan (fails on any finding not audited in .secrets.baseline)
	$(VENV)/bin/ruff check pipeline tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	git ls-files -z | grep -zv '^.secrets.baseline$$' | xargs -0 $(VENV)/bin/detect-secrets-hook --baseline .secrets.baseline

clean: local-down ## Stop the stack and delete its state (registry, metrics, snapshots)
	rm -rf $(STATE_DIR)
