variable "topic_name" {
  description = "Name of the SNS topic the source bucket publishes its events to."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,256}$", var.topic_name))
    error_message = "topic_name must be 1-256 letters, digits, hyphens or underscores."
  }
}

variable "queue_name_prefix" {
  description = "Prefix of every queue name: a consumer `<key>` gets the queue `<prefix>-<key>` and the dead-letter queue `<prefix>-<key>-dlq`."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,40}$", var.queue_name_prefix))
    error_message = "queue_name_prefix must be 1-40 letters, digits, hyphens or underscores."
  }
}

variable "source_bucket_name" {
  description = "Name of the S3 bucket whose events feed the topic. It is the only principal allowed to publish, and this module owns its notification configuration."
  type        = string
}

variable "source_account_id" {
  description = "AWS account that owns the source bucket; the topic policy requires it (aws:SourceAccount) so a same-named bucket in another account cannot publish."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.source_account_id))
    error_message = "source_account_id must be a 12-digit AWS account id."
  }
}

variable "events" {
  description = "S3 event types the source bucket publishes."
  type        = list(string)
  default     = ["s3:ObjectCreated:*"]

  validation {
    condition     = length(var.events) > 0 && alltrue([for e in var.events : startswith(e, "s3:")])
    error_message = "events must be a non-empty list of S3 event types such as s3:ObjectCreated:*."
  }
}

variable "filter_prefix" {
  description = "Only objects whose key starts with this prefix are announced. Null: every key."
  type        = string
  default     = null
}

variable "filter_suffix" {
  description = "Only objects whose key ends with this suffix are announced. Null: every key."
  type        = string
  default     = null
}

variable "consumers" {
  description = <<-EOT
    One SQS queue (with its dead-letter queue) per consumer, keyed by consumer name:
    - visibility_timeout_seconds: how long a received message stays hidden. For a Lambda consumer AWS asks for at
      least six times the function timeout plus its batching window; the caller checks that.
    - max_receive_count: receives before a message moves to the dead-letter queue (1-1000).
    - message_retention_seconds: how long the queue keeps a message (60 s - 14 days).
    - dlq_message_retention_seconds: how long the dead-letter queue keeps one. A standard queue keeps a message's
      original enqueue time when it is dead-lettered, so this must be longer than message_retention_seconds.
    - subscribe: whether the queue receives the topic's events (default true); false makes a work queue that
      other producers send to (its policy then admits no topic).
  EOT
  type = map(object({
    visibility_timeout_seconds    = number
    max_receive_count             = optional(number, 5)
    message_retention_seconds     = optional(number, 345600)
    dlq_message_retention_seconds = optional(number, 1209600)
    subscribe                     = optional(bool, true)
  }))

  validation {
    condition     = length(var.consumers) > 0 && alltrue([for k in keys(var.consumers) : can(regex("^[A-Za-z0-9_-]{1,30}$", k))])
    error_message = "consumers must have at least one entry; each key is 1-30 letters, digits, hyphens or underscores."
  }

  validation {
    condition     = alltrue([for c in values(var.consumers) : c.visibility_timeout_seconds >= 0 && c.visibility_timeout_seconds <= 43200])
    error_message = "visibility_timeout_seconds must be between 0 and 43200 (12 hours)."
  }

  validation {
    condition     = alltrue([for c in values(var.consumers) : c.max_receive_count >= 1 && c.max_receive_count <= 1000 && floor(c.max_receive_count) == c.max_receive_count])
    error_message = "max_receive_count must be a whole number between 1 and 1000."
  }

  validation {
    condition = alltrue([for c in values(var.consumers) :
      c.message_retention_seconds >= 60 && c.message_retention_seconds <= 1209600 &&
      c.dlq_message_retention_seconds >= 60 && c.dlq_message_retention_seconds <= 1209600
    ])
    error_message = "message_retention_seconds and dlq_message_retention_seconds must be between 60 and 1209600 (14 days)."
  }

  validation {
    condition     = alltrue([for c in values(var.consumers) : c.dlq_message_retention_seconds > c.message_retention_seconds])
    error_message = "dlq_message_retention_seconds must be longer than message_retention_seconds, or dead-lettered messages expire on arrival."
  }
}

variable "subscription_dlq_message_retention_seconds" {
  description = "How long the subscriptions' dead-letter queue keeps a message SNS could not deliver (60 s - 14 days)."
  type        = number
  default     = 1209600

  validation {
    condition     = var.subscription_dlq_message_retention_seconds >= 60 && var.subscription_dlq_message_retention_seconds <= 1209600
    error_message = "subscription_dlq_message_retention_seconds must be between 60 and 1209600 (14 days)."
  }
}

variable "raw_message_delivery" {
  description = "Deliver the S3 event JSON itself as the SQS message body (true), instead of wrapping it in an SNS notification envelope (false)."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "ARN of a customer managed KMS key encrypting the topic and the queues. Its key policy must let s3.amazonaws.com and sns.amazonaws.com use it (kms:GenerateDataKey*, kms:Decrypt). Null: the queues use SQS-managed encryption (SSE-SQS) and the topic is not encrypted at rest (an AWS managed key cannot be used by S3 event notifications)."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (arn:aws:kms:...), or null."
  }
}

variable "tags" {
  description = "Tags for the topic and queues (on top of the provider's default tags)."
  type        = map(string)
  default     = {}
}
