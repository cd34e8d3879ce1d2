variable "name" {
  description = "Globally unique name of the bucket."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.name)) && !can(regex("\\.\\.", var.name))
    error_message = "A bucket name is 3-63 characters of lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit; ${var.name} has ${length(var.name)}. (In the root stack: shorten project, environment or bucket_name_suffix.)"
  }
}

variable "force_destroy" {
  description = "Allow `terraform destroy` to delete the bucket while it still holds objects (and object versions). Keep false for real data."
  type        = bool
  default     = false
}

variable "versioning_enabled" {
  description = "Keep every version of every object. Disabling it on an existing bucket suspends versioning (it cannot be turned off)."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "ARN of a customer managed KMS key for default encryption (SSE-KMS with an S3 Bucket Key). Null uses SSE-S3 (AES-256, no KMS cost). The key policy must let the bucket's writers and readers use it."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (arn:aws:kms:...), or null for SSE-S3."
  }
}

variable "transition_days" {
  description = "Move current object versions to `transition_storage_class` this many days after creation. Null: never."
  type        = number
  default     = null

  validation {
    condition     = var.transition_days == null || try(var.transition_days >= 1 && floor(var.transition_days) == var.transition_days, false)
    error_message = "transition_days must be a whole number of days >= 1, or null."
  }
}

variable "transition_storage_class" {
  description = "Storage class current versions move to after `transition_days`."
  type        = string
  default     = "STANDARD_IA"

  validation {
    condition     = contains(["STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"], var.transition_storage_class)
    error_message = "transition_storage_class must be one of STANDARD_IA, ONEZONE_IA, INTELLIGENT_TIERING, GLACIER_IR, GLACIER, DEEP_ARCHIVE."
  }
}

variable "expiration_days" {
  description = "Expire current object versions this many days after creation (on a versioned bucket they become noncurrent, then `noncurrent_version_expiration_days` removes them). Null: never."
  type        = number
  default     = null

  validation {
    condition     = var.expiration_days == null || try(var.expiration_days >= 1 && floor(var.expiration_days) == var.expiration_days, false)
    error_message = "expiration_days must be a whole number of days >= 1, or null."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Permanently delete object versions this many days after they become noncurrent (overwritten or deleted). Null: keep them forever."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_expiration_days == null || try(var.noncurrent_version_expiration_days >= 1 && floor(var.noncurrent_version_expiration_days) == var.noncurrent_version_expiration_days, false)
    error_message = "noncurrent_version_expiration_days must be a whole number of days >= 1, or null."
  }
}

variable "abort_incomplete_multipart_upload_days" {
  description = "Abort multipart uploads (and free their parts) left incomplete this many days after they started."
  type        = number
  default     = 7

  validation {
    condition     = var.abort_incomplete_multipart_upload_days >= 1 && floor(var.abort_incomplete_multipart_upload_days) == var.abort_incomplete_multipart_upload_days
    error_message = "abort_incomplete_multipart_upload_days must be a whole number of days >= 1."
  }
}

variable "tags" {
  description = "Tags for the bucket (on top of the provider's default tags)."
  type        = map(string)
  default     = {}
}

variable "policy_documents" {
  description = "IAM policy documents (JSON) whose statements join the bucket policy beside its TLS-only deny, e.g. a read grant to CloudFront. Their sids must differ from `DenyInsecureTransport`."
  type        = list(string)
  default     = []
}

variable "cors_rules" {
  description = "CORS rules of the bucket (browsers sending requests straight to it, e.g. presigned POSTs from the upload page). Empty: no CORS configuration."
  type = list(object({
    allowed_origins = list(string)
    allowed_methods = list(string)
    allowed_headers = optional(list(string), [])
    expose_headers  = optional(list(string), [])
    max_age_seconds = optional(number)
  }))
  default = []

  validation {
    condition     = alltrue([for rule in var.cors_rules : length(rule.allowed_origins) > 0 && !contains(rule.allowed_origins, "*")])
    error_message = "Each CORS rule names its origins; * is refused."
  }
}
