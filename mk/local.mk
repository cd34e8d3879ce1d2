# The embedded target and LocalStack (docs/local.md). Included by the Makefile.
#
#   make demo             the whole pipeline on the embedded emulator (moto, a child process), then a summary
#   make local-up         keep an embedded stack running; prints the env for the aws CLI and boto3
#   make e2e-localstack   the end-to-end tests against LocalStack in docker compose (Docker + auth token)

LOCAL_STATE      ?= .local
LOCALSTACK_STATE ?= $(LOCAL_STATE)/localstack
LOCALSTACK_URL   ?= http://localhost:4566
# LocalStack's wildcard DNS name (resolves to 127.0.0.1), so virtual-hosted S3 bucket names resolve too.
LOCALSTACK_S3    ?= http://s3.localhost.localstack.cloud:4566
# managed: LocalStack polls the queues and runs the image (paid LocalStack tiers);
# rie: the local runtime polls and invokes the function containers (the generated compose file, below).
LOCALSTACK_MODE  ?= rie
COMPOSE          ?= docker compose
# `pipeline local deploy` writes these from the deployed functions: one compose service per function (the one
# image, its handler as the command, its env file, 127.0.0.1:9001, 9002, ...) and their invoker URLs.
FUNCTIONS_COMPOSE := $(LOCALSTACK_STATE)/compose.functions.yml
INVOKER_URLS_FILE := $(LOCALSTACK_STATE)/invoker-urls

LOCALSTACK_ENV := AWS_ENDPOINT_URL=$(LOCALSTACK_URL) AWS_ENDPOINT_URL_S3=$(LOCALSTACK_S3) \
	AWS_REGION=$(AWS_REGION) AWS_DEFAULT_REGION=$(AWS_REGION) AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
	AWS_PROFILE= AWS_SESSION_TOKEN=

.PHONY: demo local-up e2e-localstack localstack-down
demo: setup ## run the pipeline end to end on an embedded emulator with the sample files, then summarise
	$(TF_ENV) $(BIN)/pipeline --state-dir $(LOCAL_STATE) demo

local-up: setup ## start an embedded stack and keep it running (Ctrl-C stops it); prints how to reach it
	$(TF_ENV) $(BIN)/pipeline --state-dir $(LOCAL_STATE) local up

e2e-localstack: setup ## end-to-end tests against LocalStack in docker compose (needs Docker and LOCALSTACK_AUTH_TOKEN)
	@test -n "$$LOCALSTACK_AUTH_TOKEN" || { echo "LOCALSTACK_AUTH_TOKEN is not set: LocalStack images need it (docs/local.md)"; exit 2; }
	$(COMPOSE) up -d --wait localstack
	# The deploy path of `make deploy`: ECR repositories, one image build, its content tag pushed to every
	# function's repository, terraform apply with the digests; then the compose file of the function containers.
	$(LOCALSTACK_ENV) $(TF_ENV) $(BIN)/pipeline --state-dir $(LOCALSTACK_STATE) local deploy \
		$(if $(filter managed,$(LOCALSTACK_MODE)),--managed-polling)
	$(if $(filter rie,$(LOCALSTACK_MODE)),$(COMPOSE) -f docker-compose.yml -f $(FUNCTIONS_COMPOSE) up -d --wait)
	$(LOCALSTACK_ENV) PIPELINE_E2E_OUTPUTS=$(LOCALSTACK_STATE)/outputs.json \
		$(if $(filter rie,$(LOCALSTACK_MODE)),PIPELINE_E2E_RUNTIME=1 PIPELINE_E2E_INVOKER_URLS="$$(cat $(INVOKER_URLS_FILE))") \
		$(BIN)/pytest -m e2e tests/e2e; status=$$?; $(MAKE) --no-print-directory localstack-down; exit $$status

localstack-down: ## stop the docker compose services (LocalStack and the function containers)
	$(COMPOSE) -f docker-compose.yml $(if $(wildcard $(FUNCTIONS_COMPOSE)),-f $(FUNCTIONS_COMPOSE)) down --volumes --remove-orphans

.PHONY: e2e-compose compose-down standin
e2e-compose: setup ## end-to-end suite against the emulator in docker compose, functions in their containers (Docker)
	$(TF_ENV) $(BIN)/python -m pipeline_toolkit.compose e2e $(PYTEST_ARGS)

compose-down: ## stop the docker compose emulator of e2e-compose, if one was left running
	$(BIN)/python -m pipeline_toolkit.compose down

standin: ## build the STAND-IN Lambda base image (tests only: images/standin/README.md); prints its tag
	$(BIN)/python -m pipeline_toolkit.standin
