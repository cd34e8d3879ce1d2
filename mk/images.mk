# The Lambda image and deploys to AWS (images/README.md). The logic lives in the toolkit: pipeline_toolkit.deploy.
#
#   make images                     build the one function image for LAMBDA_ARCH (Docker; buildx, else BuildKit)
#   make deploy AWS_PROFILE=dev     first time: create the ECR repositories; then the image, push, apply
#   make plan AWS_PROFILE=dev       review what deploy would change
#
# One variable sets the architecture everywhere: docker --platform (x86_64 -> linux/amd64,
# arm64 -> linux/arm64) and Terraform's lambda_architecture.
LAMBDA_ARCH  ?= x86_64
# Terraform addresses that create the ECR repositories, applied alone on the first deploy (before any push).
ECR_TARGETS  ?= module.ecr
# AUTO_APPROVE=1 applies without Terraform's confirmation prompt (for CI); otherwise Terraform asks.
AUTO_APPROVE ?=
LOCK_VENV    ?= .venv-lock

# Terraform finds the provider mirror itself from TF_PLUGIN_MIRROR ($(TF_ENV)).
DEPLOY = $(TF_ENV) $(BIN)/python -m pipeline_toolkit.deploy --arch '$(LAMBDA_ARCH)' --tf-dir '$(TF_DIR)' \
	--region '$(AWS_REGION)' $(if $(AWS_PROFILE),--profile '$(AWS_PROFILE)') \
	$(foreach target,$(ECR_TARGETS),--ecr-target '$(target)') $(if $(AUTO_APPROVE),--auto-approve)

.PHONY: images push deploy plan lock
images: ## build the Lambda image (every function runs it) for LAMBDA_ARCH (x86_64|arm64), attestations off
	$(DEPLOY) images

push: ## log in to ECR and push the image to every function's repository under its content tag (skips tags ECR has)
	$(DEPLOY) push

deploy: ## deploy to AWS: ECR repos (first time), the image, push, terraform apply with the pushed digests
	$(DEPLOY) deploy

plan: ## terraform plan against AWS with the digests of the current image content, for review
	$(DEPLOY) plan

$(LOCK_VENV)/bin/uv:
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install --quiet -r requirements/lock.txt

lock: $(LOCK_VENV)/bin/uv ## regenerate the hash-pinned locks: requirements/runtime.txt (image), the emulator image's
	$(LOCK_VENV)/bin/uv pip compile pyproject.toml --universal --generate-hashes --python-version 3.11 \
		--custom-compile-command 'make lock' --output-file requirements/runtime.txt
	$(LOCK_VENV)/bin/uv pip compile images/emulator/requirements.in --universal --generate-hashes \
		--python-version 3.13 --custom-compile-command 'make lock' --output-file images/emulator/requirements.txt
