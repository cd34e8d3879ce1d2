# The pipeline stack:
#
#   landing bucket --S3 event--> SNS topic --+--> SQS (+DLQ) --> datalake-loader  --> datalake bucket
#                                 (+DLQ)     +--> SQS (+DLQ) --> database-loader  --> users table
#                                                                both             --> quarantine bucket
#   alarms on every function, queue and the topic's deliveries; one dashboard (module monitoring)
#
#   caller --JWT (Cognito pool, module identity)--> HTTP API (module api) --> ingest-api  --> landing bucket
#                                                                          (trigger http)    (uploads/, events/)
#
# Every name starts with "<project>-<environment>", so several environments can share an account.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

data "aws_region" "current" {
  lifecycle {
    # S3, SQS, SNS, DynamoDB and CloudWatch Logs accept only a key of their own region, and would refuse it only
    # when each resource is created, halfway through an apply: refuse it at plan time instead.
    postcondition {
      condition     = var.kms_key_arn == null || try(split(":", var.kms_key_arn)[3] == self.name, false)
      error_message = "kms_key_arn is a key of region ${try(split(":", var.kms_key_arn)[3], "?")}, and the stack deploys to ${self.name}: S3, SQS, SNS, DynamoDB and CloudWatch Logs need a key of their own region. Use a key (or a multi-Region replica key) in ${self.name}."
    }
  }
}

locals {
  prefix     = "${var.project}-${var.environment}"
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition

  # Bucket names are global across accounts and regions: by default they end with this account and region, so
  # that neither another account nor this stack in a second region can hold them already. (IAM role names,
  # global too, carry the region: see the function module.)
  bucket_name_suffix = var.bucket_name_suffix == null ? "${local.account_id}-${local.region}" : var.bucket_name_suffix
  name_suffix        = local.bucket_name_suffix == "" ? "" : "-${local.bucket_name_suffix}"

  # The one list of functions (functions.json, read by the Python toolkit and tests too): key -> handler,
  # trigger, environment (symbolic references, resolved below) and grants (named statement groups, below).
  # Adding a function is one entry there plus its handler module.
  function_list = jsondecode(file("${path.module}/functions.json"))
  # The keys alone: what depends only on them (the repositories) must not depend on the buckets and table that
  # local.functions mentions, so `terraform apply -target=module.ecr` creates only the repositories (the first
  # step of a deploy, before any image is pushed).
  function_keys = toset(keys(local.function_list))
  # Functions with a queue (trigger landing-events or parts), and the one invoked by the HTTP API (trigger http):
  # no queue, no event source mapping, no dead-letter queue.
  queued_functions = { for key, f in local.function_list : key => f if f.trigger != "http" }
  api_function     = one([for key, f in local.function_list : key if f.trigger == "http"])

  buckets = {
    # Raw files as they arrived, versioned; they age out once the data lake holds their data.
    landing = {
      transition_days = var.landing_transition_days
      expiration_days = var.landing_expiration_days
    }
    # The curated copy, partitioned by dataset and ingest date; replays overwrite in place (noncurrent cleanup).
    datalake = {
      transition_days = null
      expiration_days = null
    }
    # Rejected records with their reasons, manifests, and quarantined files, kept until replayed or removed.
    quarantine = {
      transition_days = null
      expiration_days = null
    }
  }

  # Known at plan time (unlike the buckets' ids): the upload page's CSP names the landing bucket, and reads
  # better in a plan spelled out.
  bucket_names = { for key in keys(local.buckets) : key => "${local.prefix}-${key}${local.name_suffix}" }

  # What a function's environment may name in functions.json ("bucket.datalake", ...).
  references = {
    "bucket.landing"     = module.bucket["landing"].name
    "bucket.datalake"    = module.bucket["datalake"].name
    "bucket.quarantine"  = module.bucket["quarantine"].name
    "table.users"        = module.table.name
    "queue.part-loader"  = module.fanout.queues["part-loader"].url
    "setting.part_bytes" = tostring(var.part_bytes)
    # "email_providers=v1,...": the reference data versions enrichment uses (pipeline.enrichment)
    "setting.reference_versions"        = join(",", [for table, version in var.reference_versions : "${table}=${version}"])
    "setting.upload_max_bytes"          = tostring(var.upload_max_bytes)
    "setting.upload_url_expiry_seconds" = tostring(var.upload_url_expiry_seconds)
    "setting.events_max_bytes"          = tostring(var.events_max_bytes)
  }

  # The statement groups a function may be granted in functions.json, beyond consuming its own queue. Each is
  # scoped to the resources it names; the IAM behaviour test proves every function uses what it is granted.
  grants = {
    "read-landing" = [
      {
        sid = "ReadLandingObjects"
        # Any version of a landing object, with its tags (a copy carries them over).
        actions = [
          "s3:GetObject",
          "s3:GetObjectVersion",
          "s3:GetObjectTagging",
          "s3:GetObjectVersionTagging",
        ]
        resources = [module.bucket["landing"].objects_arn]
      },
      {
        sid = "ListLandingVersions"
        # Version pinning (pipeline.sources.pin_version): an event without versionId whose object was
        # overwritten since is resolved by ListObjectVersions on the key, to read the version it announced.
        actions   = ["s3:ListBucketVersions"]
        resources = [module.bucket["landing"].arn]
      },
    ]
    "write-datalake" = [
      {
        sid = "WriteDatalakeObjects"
        # Server-side copy into the lake: CopyObject, or a multipart copy (UploadPartCopy) above 5 GB, which
        # also needs to abort its own uploads on failure. PutObjectTagging: CopyObject carries the source's
        # tags over by default.
        actions = [
          "s3:PutObject",
          "s3:PutObjectTagging",
          "s3:AbortMultipartUpload",
        ]
        resources = [module.bucket["datalake"].objects_arn]
      },
      {
        sid = "ReadDatalakeLineage"
        # HeadObject on the destination: its lineage metadata makes a replay a no-op and stops an older
        # version overwriting a newer one.
        actions   = ["s3:GetObject"]
        resources = [module.bucket["datalake"].objects_arn]
      },
      {
        sid = "ListDatalake"
        # Without ListBucket, S3 answers HeadObject on a key that does not exist yet with 403, not 404.
        actions   = ["s3:ListBucket"]
        resources = [module.bucket["datalake"].arn]
      },
    ]
    "write-curated" = [
      {
        sid = "WriteCuratedObjects"
        # The curated zone's Parquet objects (pipeline.curated): deterministic names, so a replay overwrites
        # and nothing is read or listed first. Above 8 MiB an upload is multipart, aborted on failure.
        actions   = ["s3:PutObject", "s3:AbortMultipartUpload"]
        resources = ["${module.bucket["datalake"].arn}/curated/*"]
      },
    ]
    "write-manifests" = [
      {
        sid       = "WriteManifests"
        actions   = ["s3:PutObject", "s3:PutObjectTagging"]
        resources = ["${module.bucket["quarantine"].arn}/manifests/*"]
      },
    ]
    "write-quarantine" = [
      {
        sid = "WriteQuarantine"
        # Big rejects files and staged copies are multipart uploads: a failed one is aborted, not left behind.
        actions = ["s3:PutObject", "s3:PutObjectTagging", "s3:AbortMultipartUpload"]
        resources = [
          "${module.bucket["quarantine"].arn}/rejects/*",
          "${module.bucket["quarantine"].arn}/manifests/*",
          "${module.bucket["quarantine"].arn}/files/*",
          "${module.bucket["quarantine"].arn}/work/*",
        ]
      },
    ]
    "read-work" = [
      {
        sid = "ReadManifestsAndPartResults"
        # A replay of a version already loaded is skipped on its manifest; parts add up their results.
        actions = ["s3:GetObject"]
        resources = [
          "${module.bucket["quarantine"].arn}/manifests/*",
          "${module.bucket["quarantine"].arn}/work/*",
        ]
      },
      {
        sid = "ListPartResults"
        # Listing work/<key>@<version>/parts/ tells the last part that the file is done.
        actions   = ["s3:ListBucket"]
        resources = [module.bucket["quarantine"].arn]
      },
    ]
    "read-reference" = [
      {
        sid = "ReadReferenceData"
        # Enrichment's lookup tables: reference/<table>/<version>/<table>.csv in the lake, read once per process.
        actions   = ["s3:GetObject"]
        resources = ["${module.bucket["datalake"].arn}/reference/*"]
      },
    ]
    "land-uploads" = [
      {
        sid = "LandUploadsAndEventBatches"
        # Signs the presigned POSTs of uploads/<sub>/... (S3 checks the signer's permission when the browser
        # posts) and writes event batches to events/<sub>/...; nothing else of the landing bucket.
        actions = ["s3:PutObject"]
        resources = [
          "${module.bucket["landing"].arn}/uploads/*",
          "${module.bucket["landing"].arn}/events/*",
        ]
      },
      {
        sid = "ReadEventBatches"
        # HeadObject on a batch that has landed already: a retry (same request digest) or a reused key.
        actions   = ["s3:GetObject"]
        resources = ["${module.bucket["landing"].arn}/events/*"]
      },
    ]
    "read-manifests" = [
      {
        sid       = "ReadManifests"
        actions   = ["s3:GetObject"]
        resources = ["${module.bucket["quarantine"].arn}/manifests/*"]
      },
      {
        sid = "ListManifests"
        # GET /files lists manifests/<stage>/uploads/<sub>/: the caller's own prefix.
        actions   = ["s3:ListBucket"]
        resources = [module.bucket["quarantine"].arn]
      },
    ]
    "send-parts" = [
      {
        sid       = "SendParts"
        actions   = ["sqs:SendMessage"]
        resources = [module.fanout.queues["part-loader"].arn]
      },
    ]
    "write-users-table" = [
      {
        sid = "WriteUsersTable"
        # BatchGetItem reads what the table holds; BatchWriteItem writes new keys, PutItem conditional updates.
        actions   = ["dynamodb:BatchWriteItem", "dynamodb:PutItem", "dynamodb:BatchGetItem"]
        resources = [module.table.arn]
      },
    ]
  }

  kms_statements = var.kms_key_arn == null ? [] : [
    {
      sid = "EncryptWithPipelineKey"
      # SSE-KMS writes need a data key; reading SSE-KMS objects and queue messages needs kms:Decrypt (granted by
      # the function module when a key is set).
      actions   = ["kms:GenerateDataKey"]
      resources = [var.kms_key_arn]
    },
  ]

  functions = {
    for key, f in local.function_list : key => {
      command = [f.handler]
      environment = merge(
        { for name, ref in f.environment : name => local.references[ref] },
        {
          POWERTOOLS_SERVICE_NAME = key
          POWERTOOLS_LOG_LEVEL    = var.log_level
          # Lambda tells a function its remaining time, never its timeout: the SDK's socket timeouts and
          # the time budget's margin are derived from it (src/pipeline/budget.py).
          PIPELINE_FUNCTION_TIMEOUT_SECONDS = tostring(local.settings[key].timeout)
        },
      )
      statements = concat(flatten([for grant in f.grants : local.grants[grant]]), local.kms_statements)
    }
  }

  # Sizing per function: the module defaults, then the list's settings, then var.function_settings.
  default_settings = {
    memory_size                        = 512
    timeout                            = 60
    batch_size                         = 10
    maximum_batching_window_in_seconds = 0
    maximum_concurrency                = 5
    queue_visibility_timeout_seconds   = null
    max_receive_count                  = 5
    oldest_message_alarm_seconds       = null
  }
  merged_settings = {
    for key, f in local.function_list : key => merge(
      local.default_settings,
      try(f.settings, {}),
      { for name, value in try(var.function_settings[key], {}) : name => value if value != null },
    )
  }

  settings = {
    for key, s in local.merged_settings : key => merge(s, {
      queue_visibility_timeout_seconds = coalesce(s.queue_visibility_timeout_seconds, 6 * s.timeout + s.maximum_batching_window_in_seconds)
    })
  }

  image_uris = {
    for key in local.function_keys : key => (
      contains(keys(var.image_digests), key)
      ? "${module.ecr[key].repository_url}@${var.image_digests[key]}"
      : "${module.ecr[key].repository_url}:${var.image_tag}"
    )
  }
}

module "bucket" {
  source   = "./modules/bucket"
  for_each = local.buckets

  name                               = local.bucket_names[each.key]
  force_destroy                      = var.force_destroy
  kms_key_arn                        = var.kms_key_arn
  transition_days                    = each.value.transition_days
  expiration_days                    = each.value.expiration_days
  noncurrent_version_expiration_days = var.noncurrent_version_expiration_days
  # The landing bucket takes the upload page's presigned POSTs straight from the browser.
  cors_rules = each.key == "landing" ? local.landing_cors_rules : []
}

# Enrichment's reference data, shipped in the repository (reference/<table>/<version>/<table>.csv) and kept in
# the lake beside the data it describes. A published version is never edited: a change is a new version.
resource "aws_s3_object" "reference" {
  for_each = fileset("${path.module}/../reference", "*/v*/*.csv")

  bucket       = module.bucket["datalake"].name
  key          = "reference/${each.value}"
  source       = "${path.module}/../reference/${each.value}"
  source_hash  = filemd5("${path.module}/../reference/${each.value}")
  content_type = "text/csv"
}

module "fanout" {
  source = "./modules/fanout"

  topic_name         = "${local.prefix}-landing-events"
  queue_name_prefix  = local.prefix
  source_bucket_name = module.bucket["landing"].name
  source_account_id  = local.account_id
  kms_key_arn        = var.kms_key_arn

  consumers = {
    for key, s in local.settings : key => {
      visibility_timeout_seconds = s.queue_visibility_timeout_seconds
      max_receive_count          = s.max_receive_count
      # "parts": a queue of its own that other functions send to, not subscribed to the landing events.
      subscribe = local.function_list[key].trigger == "landing-events"
    } if contains(keys(local.queued_functions), key)
  }
}

module "ecr" {
  source   = "./modules/ecr"
  for_each = local.function_keys

  name             = "${local.prefix}-${each.key}"
  keep_last_images = var.ecr_keep_last_images
  force_delete     = var.force_destroy
  kms_key_arn      = var.kms_key_arn
  # Built from the name the function module gives the function, not from the function: the repositories are
  # created (and pushed to) before any function exists.
  lambda_function_arns = ["arn:${local.partition}:lambda:${local.region}:${local.account_id}:function:${local.prefix}-${each.key}"]
}

module "table" {
  source = "./modules/table"

  name                = "${local.prefix}-users"
  deletion_protection = var.table_deletion_protection
  kms_key_arn         = var.kms_key_arn
  # `pipeline get-user --email` queries it (the application's look-up by email).
  email_index = true
}

# The catalogue (Glue) and the warehouse (Athena) over the data lake's curated zone and the rejects.
module "catalog" {
  source = "./modules/catalog"

  # Athena wants no hyphens in database names.
  database_name          = replace("${local.prefix}_datalake", "-", "_")
  datalake_bucket_name   = module.bucket["datalake"].name
  quarantine_bucket_name = module.bucket["quarantine"].name
  workgroup_name         = local.prefix
  results_bucket_name    = "${local.prefix}-athena${local.name_suffix}"
  kms_key_arn            = var.kms_key_arn
  force_destroy          = var.force_destroy
}

module "function" {
  source   = "./modules/function"
  for_each = local.functions

  name                  = "${local.prefix}-${each.key}"
  image_uri             = local.image_uris[each.key]
  command               = each.value.command
  architecture          = var.lambda_architecture
  memory_size           = local.settings[each.key].memory_size
  timeout               = local.settings[each.key].timeout
  environment_variables = each.value.environment
  policy_statements     = each.value.statements
  kms_key_arn           = var.kms_key_arn
  log_retention_days    = var.log_retention_days
  alarm_actions         = var.alarm_actions

  consumes_queue                     = contains(keys(local.queued_functions), each.key)
  queue_arn                          = try(module.fanout.queues[each.key].arn, null)
  queue_visibility_timeout_seconds   = try(module.fanout.queues[each.key].visibility_timeout_seconds, null)
  dead_letter_queue_name             = try(module.fanout.queues[each.key].dlq_name, null)
  batch_size                         = local.settings[each.key].batch_size
  maximum_batching_window_in_seconds = local.settings[each.key].maximum_batching_window_in_seconds
  maximum_concurrency                = local.settings[each.key].maximum_concurrency
  event_source_mapping_enabled       = var.managed_sqs_polling
  oldest_message_alarm_seconds       = local.settings[each.key].oldest_message_alarm_seconds
}

module "monitoring" {
  source = "./modules/monitoring"

  name                  = local.prefix
  topic_name            = module.fanout.topic_name
  subscription_dlq_name = try(module.fanout.subscription_dlq.name, null)
  alarm_actions         = var.alarm_actions

  consumers = {
    for key, queue in module.fanout.queues : key => {
      queue_name    = queue.name
      dlq_name      = queue.dlq_name
      function_name = module.function[key].function_name
    }
  }
}

# Who may call the ingest API: the Cognito user pool and its public app client.
module "identity" {
  source = "./modules/identity"

  name                          = local.prefix
  password_minimum_length       = var.password_minimum_length
  mfa                           = var.user_pool_mfa
  access_token_validity_minutes = var.access_token_validity_minutes
  id_token_validity_minutes     = var.id_token_validity_minutes
  refresh_token_validity_days   = var.refresh_token_validity_days
  domain_prefix                 = var.user_pool_domain_prefix
  callback_urls                 = var.user_pool_callback_urls
  logout_urls                   = var.user_pool_logout_urls
  deletion_protection           = var.user_pool_deletion_protection
}

# The ingest API in front of the function whose trigger is "http" (none listed: no API).
module "api" {
  source = "./modules/api"
  count  = local.api_function == null ? 0 : 1

  name                   = "${local.prefix}-ingest"
  function_arn           = module.function[local.api_function].function_arn
  function_invoke_arn    = module.function[local.api_function].invoke_arn
  jwt_issuer             = module.identity.issuer
  jwt_audience           = [module.identity.client_id]
  cors_allow_origins     = local.page_origins
  throttling_burst_limit = var.api_throttling_burst_limit
  throttling_rate_limit  = var.api_throttling_rate_limit
  log_retention_days     = var.log_retention_days
  kms_key_arn            = var.kms_key_arn
}

# --- The upload page ------------------------------------------------------------------------------------------
#
#   browser --> CloudFront (module site) --OAC--> private page bucket: index.html, app.js, app.css, config.json
#      |--> Cognito (sign-in)   |--> ingest API (CORS: the page's origin)   |--> landing bucket (presigned POST, CORS)
#
# No dependency cycle: the distribution depends on neither the API nor the pool (its CSP names the API by its
# regional execute-api pattern, below), the API's and the landing bucket's CORS depend on the distribution's
# domain, and only config.json depends on the API endpoint and the pool's ids.

locals {
  # The page's own origin (when this stack serves it) and any the user gives (a custom page elsewhere, or the
  # local page server of the embedded target): what the API's CORS and the landing bucket's CORS admit.
  # (concat, not distinct over both: the page's origin is known only after apply, and the number of origins
  # must be known at plan time, for the landing bucket's CORS configuration.)
  page_origins = concat(
    var.enable_upload_page ? [module.site[0].origin] : [],
    distinct(var.api_cors_allow_origins),
  )

  landing_cors_rules = length(local.page_origins) == 0 ? [] : [
    {
      allowed_origins = local.page_origins
      # A presigned POST (multipart form); a page that watches its upload's progress is preflighted first.
      allowed_methods = ["POST"]
      allowed_headers = []
      expose_headers  = ["ETag", "Location"]
      max_age_seconds = 3600
    },
  ]

  dns_suffix       = data.aws_partition.current.dns_suffix
  cognito_endpoint = "https://cognito-idp.${local.region}.${local.dns_suffix}/"
  upload_page_connect_src = [
    # The ingest API by its regional pattern, not by its own address: the API's CORS names the distribution's
    # domain, so the distribution (whose headers policy holds this CSP) cannot depend on the API in turn.
    "https://*.execute-api.${local.region}.${local.dns_suffix}",
    trimsuffix(local.cognito_endpoint, "/"),
    # The presigned POST's address, in both of S3's virtual-hosted forms (boto3 signs the global one in us-east-1).
    "https://${local.bucket_names["landing"]}.s3.${local.region}.${local.dns_suffix}",
    "https://${local.bucket_names["landing"]}.s3.${local.dns_suffix}",
  ]
}

module "site" {
  source = "./modules/site"
  count  = var.enable_upload_page ? 1 : 0

  name          = "${local.prefix}-upload-page"
  bucket_name   = "${local.prefix}-upload-page${local.name_suffix}"
  force_destroy = var.force_destroy
  # The page (web/ beside terraform/) is uploaded file by file; absent or empty, only config.json is.
  source_dir                         = coalesce(var.upload_page_source_dir, "${path.root}/../web")
  noncurrent_version_expiration_days = var.noncurrent_version_expiration_days

  region              = local.region
  user_pool_id        = module.identity.user_pool_id
  user_pool_client_id = module.identity.client_id
  cognito_endpoint    = local.cognito_endpoint
  api_endpoint        = try(module.api[0].api_endpoint, null)
  max_upload_bytes    = var.upload_max_bytes
  connect_src         = local.upload_page_connect_src

  price_class            = var.upload_page_price_class
  aliases                = var.upload_page_aliases
  acm_certificate_arn    = var.upload_page_acm_certificate_arn
  web_acl_id             = var.upload_page_web_acl_id
  log_bucket_domain_name = var.upload_page_log_bucket_domain_name
}
