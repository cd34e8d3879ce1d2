variable "name" {
  description = "Name of the DynamoDB table."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{3,255}$", var.name))
    error_message = "name must be 3-255 letters, digits, underscores, hyphens or dots."
  }
}

variable "deletion_protection" {
  description = "Refuse to delete the table (including via `terraform destroy`) until this is set to false and applied."
  type        = bool
  default     = true
}

variable "point_in_time_recovery" {
  description = "Continuous backups: restore the table to any second of the last 35 days."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "ARN of a customer managed KMS key encrypting the table. Null: the AWS owned key (encrypted at rest, no KMS cost)."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (arn:aws:kms:...), or null."
  }
}

variable "email_index" {
  description = "Add the `email-index` global secondary index (hash key `email`, KEYS_ONLY: a look-up gets the user_id, then reads the item). Off by default: every write to the table is also a write to the index, so keep it only where something queries it."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for the table (on top of the provider's default tags)."
  type        = map(string)
  default     = {}
}
