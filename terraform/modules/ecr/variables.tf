variable "name" {
  description = "Name of the ECR repository."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$", var.name)) && length(var.name) >= 2 && length(var.name) <= 256
    error_message = "name must be a valid ECR repository name: 2-256 lowercase letters, digits and . _ - / separators."
  }
}

variable "keep_last_images" {
  description = "The lifecycle policy keeps this many most recent images and expires older ones."
  type        = number
  default     = 10

  validation {
    condition     = var.keep_last_images >= 1 && var.keep_last_images <= 1000 && floor(var.keep_last_images) == var.keep_last_images
    error_message = "keep_last_images must be a whole number between 1 and 1000."
  }
}

variable "untagged_expiry_days" {
  description = "Untagged images (layers of superseded multi-arch manifests, failed pushes) expire this many days after they were pushed."
  type        = number
  default     = 7

  validation {
    condition     = var.untagged_expiry_days >= 1 && floor(var.untagged_expiry_days) == var.untagged_expiry_days
    error_message = "untagged_expiry_days must be a whole number of days >= 1."
  }
}

variable "force_delete" {
  description = "Allow `terraform destroy` to delete the repository while it still holds images."
  type        = bool
  default     = false
}

variable "kms_key_arn" {
  description = "ARN of a customer managed KMS key encrypting the images at rest. Null: AES-256 with an ECR-managed key."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (arn:aws:kms:...), or null."
  }
}

variable "lambda_function_arns" {
  description = "Unqualified ARNs of the Lambda functions that run this repository's images: the repository policy lets lambda.amazonaws.com pull for them (and their versions and aliases) only. Empty: no repository policy."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.lambda_function_arns : can(regex("^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:[A-Za-z0-9_-]{1,64}$", arn))])
    error_message = "lambda_function_arns must be unqualified Lambda function ARNs (arn:aws:lambda:<region>:<account>:function:<name>)."
  }
}

variable "tags" {
  description = "Tags for the repository (on top of the provider's default tags)."
  type        = map(string)
  default     = {}
}
