variable "name" {
  description = "Name of the function. Its role is `<name>-<region>` (IAM names are global) and its log group `/aws/lambda/<name>`."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,64}$", var.name))
    error_message = "name must be 1-64 letters, digits, hyphens or underscores (and leave room for -<region> in the role name's 64)."
  }
}

variable "image_uri" {
  description = "Container image of the function: `<repository_url>:<tag>` or, to pin it, `<repository_url>@sha256:<digest>`."
  type        = string

  validation {
    condition     = can(regex("^[^:@ ]+(:[A-Za-z0-9_][A-Za-z0-9._-]{0,127}|@sha256:[0-9a-f]{64})$", var.image_uri))
    error_message = "image_uri must be <repository_url>:<tag> or <repository_url>@sha256:<64 hex digits>."
  }
}

variable "command" {
  description = "The image's command override (`image_config.command`): the handler to run, e.g. [\"pipeline.handlers.datalake.handler\"]."
  type        = list(string)

  validation {
    condition     = length(var.command) > 0
    error_message = "command must name the handler."
  }
}

variable "architecture" {
  description = "Instruction set the image is built for: x86_64 or arm64."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64."
  }
}

variable "memory_size" {
  description = "Memory of the function in MB (CPU scales with it)."
  type        = number
  default     = 512

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240 && floor(var.memory_size) == var.memory_size
    error_message = "memory_size must be a whole number of MB between 128 and 10240."
  }
}

variable "timeout" {
  description = "Maximum run time of one invocation, in seconds."
  type        = number
  default     = 60

  validation {
    condition     = var.timeout >= 1 && var.timeout <= 900 && floor(var.timeout) == var.timeout
    error_message = "timeout must be a whole number of seconds between 1 and 900."
  }
}

variable "environment_variables" {
  description = "Environment variables of the function. Configuration only: no secrets."
  type        = map(string)
  default     = {}
}

variable "policy_statements" {
  description = "What the function may do besides consuming its queue and writing its logs: IAM statements (Allow), each with a unique sid, explicit actions (no wildcards) and explicit resources."
  type = list(object({
    sid       = string
    actions   = list(string)
    resources = list(string)
  }))
  default = []

  validation {
    condition     = alltrue([for s in var.policy_statements : can(regex("^[A-Za-z0-9]+$", s.sid)) && length(s.actions) > 0 && length(s.resources) > 0])
    error_message = "Each statement needs an alphanumeric sid and at least one action and one resource."
  }

  validation {
    condition     = alltrue(flatten([for s in var.policy_statements : [for a in s.actions : !strcontains(a, "*")]]))
    error_message = "Actions must be named explicitly: no wildcards."
  }

  validation {
    condition     = length(distinct([for s in var.policy_statements : s.sid])) == length(var.policy_statements)
    error_message = "Statement sids must be unique."
  }
}

variable "consumes_queue" {
  description = "Whether the function consumes an SQS queue (queue_arn, through an event source mapping). False: an API-invoked function, with no mapping, queue permissions or queue alarms."
  type        = bool
  default     = true
}

variable "queue_arn" {
  description = "ARN of the SQS queue the function consumes (required when consumes_queue)."
  type        = string
  default     = null
}

variable "queue_visibility_timeout_seconds" {
  description = "Visibility timeout of that queue (required with a queue). AWS asks for at least six times the function timeout plus the batching window, so a message is not redelivered while a retried batch is still running."
  type        = number
  default     = null

  validation {
    condition     = var.queue_visibility_timeout_seconds == null || try(var.queue_visibility_timeout_seconds >= 6 * var.timeout + var.maximum_batching_window_in_seconds && var.queue_visibility_timeout_seconds <= 43200, false)
    error_message = "queue_visibility_timeout_seconds must be at least 6 x timeout + maximum_batching_window_in_seconds (so a message is not redelivered while its batch is still being retried) and at most 43200."
  }
}

variable "oldest_message_alarm_seconds" {
  description = "The alarm on the queue's ApproximateAgeOfOldestMessage fires above this many seconds. Null: twice the queue's visibility timeout, at least 900 (a message that old waited for a consumer, or failed twice)."
  type        = number
  default     = null

  validation {
    condition     = var.oldest_message_alarm_seconds == null || try(var.oldest_message_alarm_seconds >= 60 && var.oldest_message_alarm_seconds <= 1209600, false)
    error_message = "oldest_message_alarm_seconds must be between 60 and 1209600 (14 days), or null."
  }
}

variable "dead_letter_queue_name" {
  description = "Name of the queue's dead-letter queue, watched by the DLQ depth alarm (required with a queue)."
  type        = string
  default     = null
}

variable "batch_size" {
  description = "Most messages handed to one invocation (1-10000; above 10 needs a batching window)."
  type        = number
  default     = 10

  validation {
    condition     = var.batch_size >= 1 && var.batch_size <= 10000 && floor(var.batch_size) == var.batch_size
    error_message = "batch_size must be a whole number between 1 and 10000."
  }

  validation {
    condition     = var.batch_size <= 10 || var.maximum_batching_window_in_seconds >= 1
    error_message = "A batch_size above 10 needs maximum_batching_window_in_seconds of at least 1."
  }
}

variable "maximum_batching_window_in_seconds" {
  description = "How long Lambda gathers messages before invoking with a partial batch (0-300 s)."
  type        = number
  default     = 0

  validation {
    condition     = var.maximum_batching_window_in_seconds >= 0 && var.maximum_batching_window_in_seconds <= 300 && floor(var.maximum_batching_window_in_seconds) == var.maximum_batching_window_in_seconds
    error_message = "maximum_batching_window_in_seconds must be a whole number between 0 and 300."
  }
}

variable "maximum_concurrency" {
  description = "Most concurrent invocations the SQS event source may drive (2-1000). It bounds the load on the downstream stores without reserving account concurrency."
  type        = number
  default     = 5

  validation {
    condition     = var.maximum_concurrency >= 2 && var.maximum_concurrency <= 1000 && floor(var.maximum_concurrency) == var.maximum_concurrency
    error_message = "maximum_concurrency must be a whole number between 2 and 1000."
  }
}

variable "event_source_mapping_enabled" {
  description = "Whether Lambda itself polls the queue. When false the SQS event source mapping exists (same configuration) but is disabled, so another poller can consume the queue."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  description = "Days the function's logs are kept (a value CloudWatch Logs accepts; 0 keeps them forever)."
  type        = number
  default     = 30

  validation {
    condition     = contains([0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of 0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653."
  }
}

variable "tracing_mode" {
  description = "X-Ray tracing: Active samples and records invocations; PassThrough only propagates an upstream trace header."
  type        = string
  default     = "Active"

  validation {
    condition     = contains(["Active", "PassThrough"], var.tracing_mode)
    error_message = "tracing_mode must be Active or PassThrough."
  }
}

variable "kms_key_arn" {
  description = "ARN of a customer managed KMS key. When set it encrypts the function's environment and its log group, and the role may decrypt with it (messages of a KMS-encrypted queue). Its key policy must admit the CloudWatch Logs service. Null: AWS managed encryption."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (arn:aws:kms:...), or null."
  }
}

variable "alarm_actions" {
  description = "ARNs notified when an alarm fires or recovers (e.g. an SNS topic for the on-call). Empty: the alarms only show in CloudWatch."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags for every resource of the module (on top of the provider's default tags)."
  type        = map(string)
  default     = {}
}
