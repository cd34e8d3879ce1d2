terraform {
  required_version = ">= 1.9"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # Pinned to the patch series: there is no committed lock file (see README, "Offline init"), so the pin is
      # what keeps the registry, a provider mirror and CI on the same provider.
      version = "~> 5.100.0"
    }
  }

  # No backend block: state is local by default (terraform.tfstate here, or wherever -state says). For a shared
  # environment, add the S3 backend with an override file (README, "State").
}

# No endpoint, credential or account settings here: the provider takes them from the standard AWS environment
# (AWS_PROFILE / AWS_ACCESS_KEY_ID..., AWS_REGION, and AWS_ENDPOINT_URL for LocalStack or the embedded emulator),
# so the same configuration deploys to all three targets.
provider "aws" {
  region = var.region
  # Null: the provider's default, 25 attempts. The provider does not read AWS_MAX_ATTEMPTS (measured with
  # 5.100: 25 attempts either way), so a low budget is set here (README, "Against the embedded emulator").
  max_retries = var.provider_max_retries

  default_tags {
    tags = merge(var.tags, {
      Project     = var.project
      Environment = var.environment
      ManagedBy   = "terraform"
    })
  }
}
