# The pipeline stack:
#
#   landing bucket --S3 event--> SNS topic --+--> SQS (+DLQ) --> datalake-loader  --> datalake bucket
#                                            +--> SQS (+DLQ) --> database-loader  --> users table
#                                                                both             --> quarantine bucket
#
# Every name starts with "<project>-<environment>", so several environments can share an account.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

locals {
  prefix      = "${var.project}-${var.environment}"
  name_suffix = var.bucket_name_suffix == "" ? "" : "-${var.bucket_name_suffix}"
  account_id  = data.aws_caller_identity.current.account_id

  # The function keys on their own: what depends only on them (the repositories) must not depend on the
  # buckets and table that local.functions mentions, so `terraform apply -target=module.ecr` creates only
  # the repositories (the first step of a deploy, before any image is pushed).
  function_keys = toset(["datalake-loader", "database-loader"])

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

  # The functions (keyed as local.function_keys): handler, environment and the permissions each needs beyond
  # consuming its own queue.
  functions = {
    "datalake-loader" = {
      command = ["pipeline.handlers.datalake.handler"]
      environment = {
        PIPELINE_DATALAKE_BUCKET   = module.bucket["datalake"].name
        PIPELINE_QUARANTINE_BUCKET = module.bucket["quarantine"].name
        POWERTOOLS_SERVICE_NAME    = "datalake-loader"
        POWERTOOLS_LOG_LEVEL       = var.log_level
      }
      statements = concat(local.common_statements, [
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
      ])
    }
    "database-loader" = {
      command = ["pipeline.handlers.database.handler"]
      environment = {
        PIPELINE_USERS_TABLE       = module.table.name
        PIPELINE_QUARANTINE_BUCKET = module.bucket["quarantine"].name
        POWERTOOLS_SERVICE_NAME    = "database-loader"
        POWERTOOLS_LOG_LEVEL       = var.log_level
      }
      statements = concat(local.common_statements, [
        {
          sid = "WriteUsersTable"
          # BatchGetItem reads what the table holds; BatchWriteItem writes new keys, PutItem conditional updates.
          actions   = ["dynamodb:BatchWriteItem", "dynamodb:PutItem", "dynamodb:BatchGetItem"]
          resources = [module.table.arn]
        },
      ])
    }
  }

  common_statements = concat(
    [
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
      {
        sid     = "WriteQuarantine"
        actions = ["s3:PutObject", "s3:PutObjectTagging"]
        resources = [
          "${module.bucket["quarantine"].arn}/rejects/*",
          "${module.bucket["quarantine"].arn}/manifests/*",
          "${module.bucket["quarantine"].arn}/files/*",
        ]
      },
    ],
    var.kms_key_arn == null ? [] : [
      {
        sid = "EncryptWithPipelineKey"
        # SSE-KMS writes need a data key; reading SSE-KMS objects and queue messages needs kms:Decrypt (granted by
        # the function module when a key is set).
        actions   = ["kms:GenerateDataKey"]
        resources = [var.kms_key_arn]
      },
    ],
  )

  settings = {
    for key, s in var.function_settings : key => merge(s, {
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

  name                               = "${local.prefix}-${each.key}${local.name_suffix}"
  force_destroy                      = var.force_destroy
  kms_key_arn                        = var.kms_key_arn
  transition_days                    = each.value.transition_days
  expiration_days                    = each.value.expiration_days
  noncurrent_version_expiration_days = var.noncurrent_version_expiration_days
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
    }
  }
}

module "ecr" {
  source   = "./modules/ecr"
  for_each = local.function_keys

  name             = "${local.prefix}-${each.key}"
  keep_last_images = var.ecr_keep_last_images
  force_delete     = var.force_destroy
  kms_key_arn      = var.kms_key_arn
}

module "table" {
  source = "./modules/table"

  name                = "${local.prefix}-users"
  deletion_protection = var.table_deletion_protection
  kms_key_arn         = var.kms_key_arn
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

  queue_arn                          = module.fanout.queues[each.key].arn
  queue_visibility_timeout_seconds   = module.fanout.queues[each.key].visibility_timeout_seconds
  dead_letter_queue_name             = module.fanout.queues[each.key].dlq_name
  batch_size                         = local.settings[each.key].batch_size
  maximum_batching_window_in_seconds = local.settings[each.key].maximum_batching_window_in_seconds
  maximum_concurrency                = local.settings[each.key].maximum_concurrency
  event_source_mapping_enabled       = var.managed_sqs_polling
}
