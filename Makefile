# Serverless data pipeline. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON        ?= python3
VENV          ?= .venv
BIN           := $(VENV)/bin
CHECKOV_VENV  ?= .venv-checkov
# A directory laid out as a Terraform provider mirror (<host>/<namespace>/<type>/<version>/<os_arch>/...).
# When set, `terraform init` installs providers only from it, so no registry is needed. Left unset, it is
# looked up (mk/provider-mirror) only if the public registry is unreachable, once, and only by the
# targets that run Terraform. Set it empty to force the registry.
TF_PLUGIN_MIRROR ?= $(eval TF_PLUGIN_MIRROR := $(shell mk/provider-mirror))$(TF_PLUGIN_MIRROR)
TF_ENV = TF_PLUGIN_MIRROR='$(TF_PLUGIN_MIRROR)'

# Deploy settings (see README: "Deploying to AWS").
AWS_PROFILE     ?=
AWS_REGION      ?= us-east-1
TF_DIR          := terraform

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-18s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

.PHONY: setup
setup: $(BIN)/python ## create .venv: the runtime package, its test tools, the dev toolkit (toolkit/) and the tracker (tracker/)
	# The toolkit first: it depends on the runtime package of this checkout, which the second step then
	# installs editable (in the other order pip would replace the editable install with a copy).
	$(BIN)/pip install --quiet -e ./toolkit
	# The tracker client (tracker/, only urllib3): after the toolkit, which depends on it, for the same reason.
	$(BIN)/pip install --quiet -e ./tracker
	$(BIN)/pip install --quiet -e '.[dev]'

$(CHECKOV_VENV)/bin/checkov:
	# checkov pins its own boto3, so it lives in a venv of its own.
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet -r requirements/checkov.txt

.PHONY: test
test: setup $(CHECKOV_VENV)/bin/checkov lint ## lint, the whole suite (unit, integration, terraform, images, e2e), e2e via compose
	$(TF_ENV) $(BIN)/pytest
	# The end-to-end suite again, against the emulator in docker compose (without an engine: says so, loudly).
	$(TF_ENV) $(BIN)/python -m pipeline_toolkit.compose --skip-without-engine e2e -q

.PHONY: check
check: setup lint ## the fast inner loop: lint, unit, integration and tracker tests (no terraform, emulator server or Docker)
	$(BIN)/pytest -q -m "not terraform and not e2e and not containers" tests/unit tests/integration tests/tracker

.PHONY: test-shuffled
test-shuffled: setup ## the whole suite in a random order (pytest-randomly; prints the seed to replay it)
	$(TF_ENV) $(BIN)/pytest -o addopts="-ra --strict-markers --import-mode=importlib" -p randomly

.PHONY: lint
lint: ## ruff, mypy, terraform fmt
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	terraform fmt -check -recursive $(TF_DIR)

.PHONY: fmt
fmt: ## format Python and Terraform in place
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
	terraform fmt -recursive $(TF_DIR)

.PHONY: openapi
openapi: ## write the ingest API's OpenAPI document (docs/openapi.json) from its routes
	$(BIN)/python -m pipeline_toolkit.openapi

.PHONY: checkov
checkov: $(CHECKOV_VENV)/bin/checkov ## static security analysis of terraform/
	$(CHECKOV_VENV)/bin/checkov --quiet --compact -d $(TF_DIR) --framework terraform

.PHONY: bench
bench: ## throughput and memory benchmarks (prints figures beside targets)
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/cold_start.py
	$(BIN)/python benchmarks/curated.py

# Target groups live in mk/: images.mk (build, push, deploy), local.mk (demo and the embedded target).
include $(sort $(wildcard mk/*.mk))
