variable "database_name" {
  description = "Name of the Glue database (Athena wants lowercase letters, digits and underscores: no hyphens)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,254}$", var.database_name))
    error_message = "database_name must be lowercase letters, digits and underscores, starting with a letter (Athena needs no quoting then)."
  }
}

variable "datalake_bucket_name" {
  description = "Bucket of the data lake, whose curated zone the users and events tables describe."
  type        = string
}

variable "curated_prefix" {
  description = "Key prefix of the curated zone in the data lake bucket, ending with `/`: objects are `<prefix>dataset=<dataset>/ingest_date=<YYYY-MM-DD>/<name>.parquet`."
  type        = string
  default     = "curated/"

  validation {
    condition     = endswith(var.curated_prefix, "/") && !startswith(var.curated_prefix, "/")
    error_message = "curated_prefix must end with / and not start with one, e.g. curated/."
  }
}

variable "quarantine_bucket_name" {
  description = "Bucket holding the rejects (`rejects/...jsonl`) that the rejects table describes."
  type        = string
}

variable "projection_start_date" {
  description = "First ingest date partition projection considers (yyyy-MM-dd); the range ends today (NOW). Earlier partitions are not read."
  type        = string
  default     = "2024-01-01"

  validation {
    condition     = can(regex("^[0-9]{4}-[0-9]{2}-[0-9]{2}$", var.projection_start_date))
    error_message = "projection_start_date must be a date, yyyy-MM-dd."
  }
}

variable "workgroup_name" {
  description = "Name of the Athena workgroup."
  type        = string
}

variable "results_bucket_name" {
  description = "Globally unique name of the bucket for Athena's query results (created here, with the bucket module's baseline)."
  type        = string
}

variable "results_expiration_days" {
  description = "Query results expire this many days after they are written."
  type        = number
  default     = 30
}

variable "bytes_scanned_cutoff_per_query" {
  description = "Athena cancels a query of the workgroup that scans more than this many bytes (at least 10 MB)."
  type        = number
  default     = 10737418240

  validation {
    condition     = var.bytes_scanned_cutoff_per_query >= 10485760
    error_message = "bytes_scanned_cutoff_per_query must be at least 10485760 (10 MB), Athena's minimum."
  }
}

variable "kms_key_arn" {
  description = "ARN of a customer managed KMS key: the results bucket and the query results (SSE_KMS) use it. Null: SSE-S3."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (arn:aws:kms:...), or null."
  }
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete the results bucket while it holds results, and the workgroup with its named queries and history. For throw-away environments only."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for the workgroup and the results bucket (on top of the provider's default tags)."
  type        = map(string)
  default     = {}
}
