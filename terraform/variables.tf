# --- Naming -------------------------------------------------------------------------------------------------

variable "project" {
  description = "Project name: the first part of every resource name (`<project>-<environment>-...`). With the environment it must not make bucket names start with a prefix S3 refuses (`xn--`, `sthree-`, `amzn-s3-demo-`)."
  type        = string
  default     = "pipeline"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,18}[a-z0-9]$", var.project))
    error_message = "project must be 2-20 lowercase letters, digits or hyphens, starting with a letter (it is part of bucket names)."
  }

  # Every bucket name starts with "<project>-<environment>-": S3 refuses names with these prefixes, and would
  # refuse them only at the first CreateBucket, halfway through an apply.
  validation {
    condition     = !anytrue([for reserved in ["xn--", "sthree-", "amzn-s3-demo-"] : startswith("${var.project}-${var.environment}-", reserved)])
    error_message = "project and environment make bucket names start with ${var.project}-${var.environment}-, and S3 refuses bucket names starting with xn--, sthree- or amzn-s3-demo-: choose another project name."
  }
}

variable "environment" {
  description = "Environment name (dev, staging, prod...): the second part of every resource name, so several environments can share an account."
  type        = string
  default     = "dev"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,8}[a-z0-9]$", var.environment))
    error_message = "environment must be 2-10 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "bucket_name_suffix" {
  description = "Appended to bucket names (`<project>-<environment>-landing-<suffix>`) because S3 bucket names are global across all AWS accounts and regions. Null (default): `<account id>-<region>`, unique to this account and region. Empty: no suffix (an emulator). Otherwise 1-32 lowercase letters, digits or hyphens of yours, e.g. an organisation short name."
  type        = string
  default     = null

  validation {
    condition     = var.bucket_name_suffix == null || var.bucket_name_suffix == "" || can(regex("^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$", var.bucket_name_suffix))
    error_message = "bucket_name_suffix must be null, empty, or 1-32 lowercase letters, digits or hyphens, starting and ending with a letter or digit."
  }

  # The suffix ends every bucket name: S3 refuses names ending like an access point alias or another bucket type.
  validation {
    condition     = var.bucket_name_suffix == null || !anytrue([for reserved in ["-s3alias", "--ol-s3", "--x-s3", "--table-s3"] : endswith(coalesce(var.bucket_name_suffix, "-"), reserved)])
    error_message = "bucket_name_suffix must not end with -s3alias, --ol-s3, --x-s3 or --table-s3: S3 refuses bucket names that do."
  }
}

variable "region" {
  description = "AWS region to deploy to. Null: the standard AWS environment decides (AWS_REGION, AWS_DEFAULT_REGION, then the profile)."
  type        = string
  default     = null

  validation {
    condition     = var.region == null || can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must look like us-east-1, or be null."
  }
}

variable "tags" {
  description = "Extra tags on every resource (Project, Environment and ManagedBy are always set)."
  type        = map(string)
  default     = {}
}

# --- Images and functions -----------------------------------------------------------------------------------

variable "image_tag" {
  description = "Tag of the images the functions run, when image_digests has no digest for them. The repositories have immutable tags, so on AWS push a new tag (e.g. the git commit) per release rather than reusing one."
  type        = string
  default     = "latest"

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$", var.image_tag))
    error_message = "image_tag must be a valid image tag: 1-128 letters, digits, underscores, dots or hyphens, not starting with a dot or hyphen."
  }
}

variable "image_digests" {
  description = "Image digest per function key (the keys of functions.json), e.g. \"sha256:...\". A function with a digest runs `<repository_url>@<digest>` (pinned, reproducible); one without runs `<repository_url>:<image_tag>`."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.image_digests) : contains(keys(jsondecode(file("${path.module}/functions.json"))), k)])
    error_message = "image_digests keys must be function keys, as listed in terraform/functions.json."
  }

  validation {
    condition     = alltrue([for d in values(var.image_digests) : can(regex("^sha256:[0-9a-f]{64}$", d))])
    error_message = "image_digests values must be sha256:<64 lowercase hex digits>."
  }
}

variable "lambda_architecture" {
  description = "Instruction set of the function images and so of the functions: x86_64 or arm64 (Graviton, cheaper per GB-second). Build the images for the same one."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.lambda_architecture)
    error_message = "lambda_architecture must be x86_64 or arm64."
  }
}

variable "function_settings" {
  description = <<-EOT
    Sizing and SQS polling per function key (the keys of functions.json); a function left out, or a field left
    null, keeps the settings functions.json gives it, else these defaults:
    - memory_size (MB, 128-10240, default 512) and timeout (s, 1-900, default 60)
    - batch_size: messages per invocation (1-10000, default 10; above 10 needs a batching window)
    - maximum_batching_window_in_seconds: 0-300, default 0
    - maximum_concurrency: most concurrent invocations the queue drives (2-1000, default 5)
    - queue_visibility_timeout_seconds: null (default) = 6 x timeout + batching window, the AWS recommendation;
      a value must be at least that, and at most 43200 (checked by the function module)
    - max_receive_count: receives before a message is dead-lettered (1-1000, default 5)
    - oldest_message_alarm_seconds: the alarm on the age of the queue's oldest message fires above this
      (60-1209600; null, the default: twice the visibility timeout, at least 900)
  EOT
  type = map(object({
    memory_size                        = optional(number)
    timeout                            = optional(number)
    batch_size                         = optional(number)
    maximum_batching_window_in_seconds = optional(number)
    maximum_concurrency                = optional(number)
    queue_visibility_timeout_seconds   = optional(number)
    max_receive_count                  = optional(number)
    oldest_message_alarm_seconds       = optional(number)
  }))
  default = {}

  validation {
    condition     = alltrue([for k in keys(var.function_settings) : contains(keys(jsondecode(file("${path.module}/functions.json"))), k)])
    error_message = "function_settings keys must be function keys, as listed in terraform/functions.json."
  }

  validation {
    condition = alltrue([for s in values(var.function_settings) :
      (s.memory_size == null || try(s.memory_size >= 128 && s.memory_size <= 10240 && floor(s.memory_size) == s.memory_size, false)) &&
      (s.timeout == null || try(s.timeout >= 1 && s.timeout <= 900 && floor(s.timeout) == s.timeout, false))
    ])
    error_message = "memory_size must be a whole number between 128 and 10240 MB; timeout a whole number between 1 and 900 s."
  }

  validation {
    condition = alltrue([for s in values(var.function_settings) :
      (s.batch_size == null || try(s.batch_size >= 1 && s.batch_size <= 10000 && floor(s.batch_size) == s.batch_size, false)) &&
      (s.maximum_batching_window_in_seconds == null || try(s.maximum_batching_window_in_seconds >= 0 && s.maximum_batching_window_in_seconds <= 300 &&
      floor(s.maximum_batching_window_in_seconds) == s.maximum_batching_window_in_seconds, false))
    ])
    error_message = "batch_size must be a whole number between 1 and 10000; maximum_batching_window_in_seconds between 0 and 300."
  }

  validation {
    condition     = alltrue([for s in values(var.function_settings) : s.batch_size == null || try(s.batch_size <= 10 || s.maximum_batching_window_in_seconds >= 1, false)])
    error_message = "A batch_size above 10 needs maximum_batching_window_in_seconds of at least 1."
  }

  validation {
    condition     = alltrue([for s in values(var.function_settings) : s.maximum_concurrency == null || try(s.maximum_concurrency >= 2 && s.maximum_concurrency <= 1000 && floor(s.maximum_concurrency) == s.maximum_concurrency, false)])
    error_message = "maximum_concurrency must be a whole number between 2 and 1000."
  }

  validation {
    condition     = alltrue([for s in values(var.function_settings) : s.max_receive_count == null || try(s.max_receive_count >= 1 && s.max_receive_count <= 1000 && floor(s.max_receive_count) == s.max_receive_count, false)])
    error_message = "max_receive_count must be a whole number between 1 and 1000."
  }

  validation {
    condition     = alltrue([for s in values(var.function_settings) : s.oldest_message_alarm_seconds == null || try(s.oldest_message_alarm_seconds >= 60 && s.oldest_message_alarm_seconds <= 1209600, false)])
    error_message = "oldest_message_alarm_seconds must be between 60 and 1209600 (14 days)."
  }
}

variable "log_level" {
  description = "POWERTOOLS_LOG_LEVEL of the functions."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING, ERROR or CRITICAL."
  }
}

variable "log_retention_days" {
  description = "Days the functions' logs are kept (a value CloudWatch Logs accepts); 0: never expire."
  type        = number
  default     = 30

  validation {
    condition     = contains([0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be 0 (never expire) or one of 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653."
  }
}

variable "managed_sqs_polling" {
  description = "Local-only switch. True (the default, for AWS and LocalStack): Lambda polls the queues through enabled SQS event source mappings. When false, the SQS event source mappings are created disabled and another poller (the project's local runtime) consumes the queues, reading the same mapping configuration; the embedded emulator needs this because it would otherwise invoke the functions synchronously inside SendMessage, which needs Docker."
  type        = bool
  default     = true
}

variable "alarm_actions" {
  description = "ARNs (typically an SNS topic of the on-call) notified when a function fails, a dead-letter queue fills, a queue's oldest message gets old or SNS fails to deliver an event. Empty: alarms only show in CloudWatch."
  type        = list(string)
  default     = []
}

variable "ecr_keep_last_images" {
  description = "Images each ECR repository keeps; older ones expire."
  type        = number
  default     = 10

  validation {
    condition     = var.ecr_keep_last_images >= 1 && var.ecr_keep_last_images <= 1000 && floor(var.ecr_keep_last_images) == var.ecr_keep_last_images
    error_message = "ecr_keep_last_images must be a whole number between 1 and 1000."
  }
}

# --- Storage ------------------------------------------------------------------------------------------------

variable "landing_transition_days" {
  description = "Landing objects move to STANDARD_IA this many days after upload (at least 30). Null: they stay in STANDARD."
  type        = number
  default     = 30

  validation {
    condition     = var.landing_transition_days == null || try(var.landing_transition_days >= 30 && floor(var.landing_transition_days) == var.landing_transition_days, false)
    error_message = "landing_transition_days must be a whole number >= 30 (the STANDARD_IA minimum), or null."
  }
}

variable "landing_expiration_days" {
  description = "Landing objects expire this many days after upload (their data lives on in the data lake). Null: kept forever."
  type        = number
  default     = 365

  validation {
    condition     = var.landing_expiration_days == null || try(var.landing_expiration_days >= 1 && floor(var.landing_expiration_days) == var.landing_expiration_days, false)
    error_message = "landing_expiration_days must be a whole number >= 1, or null."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Days an overwritten or deleted object version is kept in any bucket before it is removed for good."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1 && floor(var.noncurrent_version_expiration_days) == var.noncurrent_version_expiration_days
    error_message = "noncurrent_version_expiration_days must be a whole number >= 1."
  }
}

variable "kms_key_arn" {
  description = "ARN of a customer managed KMS key, in the region of the stack, for everything the stack stores or queues: buckets (SSE-KMS), topic, queues, table, logs, function environments and images; the functions get kms:Decrypt and kms:GenerateDataKey on it. Its key policy must admit s3.amazonaws.com, sns.amazonaws.com and logs.<region>.amazonaws.com. Null (default): SSE-S3 buckets, SSE-SQS queues, the AWS owned key for the table, AWS managed keys elsewhere, no KMS cost; the topic is then unencrypted."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>), or null."
  }
}

variable "table_deletion_protection" {
  description = "Protect the users table against deletion (also against `terraform destroy`). Set false for throw-away environments."
  type        = bool
  default     = true
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete buckets that still hold objects and repositories that still hold images. For throw-away environments only."
  type        = bool
  default     = false
}

variable "reference_versions" {
  description = "Reference table -> the version of it that enrichment uses (reference/<table>/<version>/<table>.csv in the data lake bucket, shipped in the repository's reference/). A table not named here uses the version its dataset declares."
  type        = map(string)
  default     = { email_providers = "v1" }

  validation {
    condition     = alltrue([for table, version in var.reference_versions : can(regex("^[a-z0-9_]+$", table)) && can(regex("^v[1-9][0-9]*$", version))])
    error_message = "reference_versions maps table names (a-z, 0-9, _) to versions v1, v2, ..."
  }
}

variable "part_bytes" {
  description = "Files bigger than this (bytes) are split into parts on record boundaries and loaded in parallel by the part loader (gzip files and JSON arrays are staged as plain copies first). Size a part to load in a fraction of the part loader's timeout: 16 MiB is about 250,000 short records, under a minute at 5,000 writes/s, against a 300 s timeout (benchmarks/README.md)."
  type        = number
  default     = 16777216

  validation {
    condition     = var.part_bytes >= 65536 && var.part_bytes <= 5368709120 && floor(var.part_bytes) == var.part_bytes
    error_message = "part_bytes must be a whole number of bytes between 64 KiB and 5 GiB."
  }
}

variable "provider_max_retries" {
  description = "Attempts the AWS provider makes at an API call before it fails (its `max_retries`). Null: the provider's default, 25, for AWS's throttling. The embedded target sets a few, so that an action the emulator lacks fails in seconds instead of retrying for many minutes. The provider does not read AWS_MAX_ATTEMPTS."
  type        = number
  default     = null

  validation {
    condition     = var.provider_max_retries == null || try(var.provider_max_retries >= 1 && floor(var.provider_max_retries) == var.provider_max_retries, false)
    error_message = "provider_max_retries must be a whole number >= 1, or null."
  }
}

variable "upload_max_bytes" {
  description = "Largest file POST /uploads hands out a presigned form for, in bytes (S3 takes at most 5 GiB in one POST)."
  type        = number
  default     = 104857600

  validation {
    condition     = var.upload_max_bytes >= 1 && var.upload_max_bytes <= 5368709120 && floor(var.upload_max_bytes) == var.upload_max_bytes
    error_message = "upload_max_bytes must be a whole number from 1 to 5368709120 (5 GiB)."
  }
}

variable "upload_url_expiry_seconds" {
  description = "How long a presigned upload form stays usable, in seconds: short, a leaked form is useless soon."
  type        = number
  default     = 300

  validation {
    condition     = var.upload_url_expiry_seconds >= 30 && var.upload_url_expiry_seconds <= 3600
    error_message = "upload_url_expiry_seconds must be from 30 to 3600 (the function's credentials that sign it last about an hour)."
  }
}

variable "events_max_bytes" {
  description = "Largest body POST /events/{dataset} takes, in bytes (413 above it)."
  type        = number
  default     = 1048576

  validation {
    condition     = var.events_max_bytes >= 1024 && var.events_max_bytes <= 4194304
    error_message = "events_max_bytes must be from 1024 to 4194304 (a synchronous invocation takes 6 MB, base64 included)."
  }
}

variable "password_minimum_length" {
  description = "Shortest password of the Cognito user pool (also needs lower and upper case, a digit and a symbol)."
  type        = number
  default     = 12

  validation {
    condition     = var.password_minimum_length >= 8 && var.password_minimum_length <= 99
    error_message = "password_minimum_length must be from 8 to 99."
  }
}

variable "user_pool_mfa" {
  description = "Multi-factor authentication of the user pool: OFF, OPTIONAL (an authenticator app) or ON."
  type        = string
  default     = "OPTIONAL"

  validation {
    condition     = contains(["OFF", "OPTIONAL", "ON"], var.user_pool_mfa)
    error_message = "user_pool_mfa must be OFF, OPTIONAL or ON."
  }
}

variable "access_token_validity_minutes" {
  description = "Lifetime of the pool's access tokens (what the API accepts), 5-1440 minutes."
  type        = number
  default     = 60

  validation {
    condition     = var.access_token_validity_minutes >= 5 && var.access_token_validity_minutes <= 1440
    error_message = "access_token_validity_minutes must be from 5 to 1440."
  }
}

variable "id_token_validity_minutes" {
  description = "Lifetime of the pool's ID tokens, 5-1440 minutes."
  type        = number
  default     = 60

  validation {
    condition     = var.id_token_validity_minutes >= 5 && var.id_token_validity_minutes <= 1440
    error_message = "id_token_validity_minutes must be from 5 to 1440."
  }
}

variable "refresh_token_validity_days" {
  description = "Lifetime of the pool's refresh tokens, 1-90 days: how long a user stays signed in."
  type        = number
  default     = 30

  validation {
    condition     = var.refresh_token_validity_days >= 1 && var.refresh_token_validity_days <= 90
    error_message = "refresh_token_validity_days must be from 1 to 90."
  }
}

variable "user_pool_domain_prefix" {
  description = "Prefix of the Cognito hosted UI's domain (`<prefix>.auth.<region>.amazoncognito.com`). Null: no hosted UI."
  type        = string
  default     = null
}

variable "user_pool_callback_urls" {
  description = "Where the hosted UI may return a signed-in user (the upload page). Empty: no OAuth flow."
  type        = list(string)
  default     = []
}

variable "user_pool_logout_urls" {
  description = "Where the hosted UI may return a signed-out user."
  type        = list(string)
  default     = []
}

variable "user_pool_deletion_protection" {
  description = "Protect the user pool (and its users) against deletion, also against `terraform destroy`. Set false for throw-away environments."
  type        = bool
  default     = true
}

variable "api_cors_allow_origins" {
  description = "Origins of upload pages this stack does not serve (e.g. https://upload.example.com, or the embedded target's local page server), admitted by the ingest API's CORS and the landing bucket's CORS (presigned POSTs) beside the page of enable_upload_page. Empty, with no page: no CORS."
  type        = list(string)
  default     = []
}

variable "api_throttling_burst_limit" {
  description = "The ingest API stage's burst limit (requests at once)."
  type        = number
  default     = 50
}

variable "api_throttling_rate_limit" {
  description = "The ingest API stage's steady rate limit (requests per second)."
  type        = number
  default     = 20
}

# --- The upload page ----------------------------------------------------------------------------------------

variable "enable_upload_page" {
  description = "Serve the upload page (web/) from a private bucket behind CloudFront (module site), and admit its origin in the API's and the landing bucket's CORS. True by default: the page is how signed-in people upload, and costs little (per request). The embedded target sets false: moto cannot apply CloudFront's response headers policy (a local page server serves web/ there)."
  type        = bool
  default     = true
}

variable "upload_page_source_dir" {
  description = "Directory of the upload page's files. Null: web/ at the repository root (`<terraform>/../web`); absent or empty, only config.json is uploaded."
  type        = string
  default     = null
}

variable "upload_page_price_class" {
  description = "CloudFront price class of the upload page: PriceClass_100 (North America, Europe; the cheapest), PriceClass_200 or PriceClass_All."
  type        = string
  default     = "PriceClass_100"
}

variable "upload_page_aliases" {
  description = "Custom domain names of the upload page (they need upload_page_acm_certificate_arn). Empty: its *.cloudfront.net name."
  type        = list(string)
  default     = []
}

variable "upload_page_acm_certificate_arn" {
  description = "ACM certificate in us-east-1 for upload_page_aliases (TLSv1.2_2021 at least). Null: CloudFront's default certificate."
  type        = string
  default     = null
}

variable "upload_page_web_acl_id" {
  description = "ARN of a WAFv2 web ACL (scope CLOUDFRONT) in front of the upload page. Null: none."
  type        = string
  default     = null
}

variable "upload_page_log_bucket_domain_name" {
  description = "Bucket (with ACLs enabled) for the upload page's CloudFront standard logs, as `<bucket>.s3.amazonaws.com`. Null: no viewer logs."
  type        = string
  default     = null
}
