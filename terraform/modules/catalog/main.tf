# The catalogue and the warehouse over the data lake: a Glue database whose tables describe the curated zone
# (Parquet, Hive-style ingest_date partitions found by partition projection, so no crawler and no
# MSCK REPAIR), the rejects in the quarantine bucket (JSON Lines), and an Athena workgroup that enforces
# where results go (a bucket of their own, encrypted) with the named queries a user starts from.

locals {
  # Parquet written by the curated-zone writer (layout contract: README).
  parquet_storage = {
    input_format          = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format         = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
    serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
  }

  lineage_columns = [
    { name = "source_key", type = "string", comment = "landing key of the file the row came from" },
    { name = "source_version", type = "string", comment = "S3 version of that file" },
    { name = "source_order", type = "string", comment = "order of file versions: the greatest wins per key" },
    { name = "source_line", type = "bigint", comment = "line of the row in its file" },
  ]

  uploaded_by_comment = "who landed the file (the ingest API caller's sub); null when not known or in files written before it"

  # Column order is the Parquet writer's (pipeline.curated.arrow_schema); columns a file lacks read as null
  # (files written before enrichment have no email_domain, age_band, email_provider or enricher_version).
  curated_tables = {
    users = {
      description = "Users as loaded, one row per source record: several versions per user_id, the greatest source_order is current."
      columns = concat(
        [
          { name = "user_id", type = "string", comment = "" },
          { name = "first_name", type = "string", comment = "" },
          { name = "last_name", type = "string", comment = "" },
          { name = "email", type = "string", comment = "lowercased" },
          { name = "gender", type = "string", comment = "" },
          { name = "age", type = "int", comment = "" },
        ],
        local.lineage_columns,
        [
          { name = "event_time", type = "timestamp", comment = "the S3 event time of the file (UTC)" },
          { name = "uploaded_by", type = "string", comment = local.uploaded_by_comment },
          { name = "email_domain", type = "string", comment = "enrichment; null in files written before it" },
          { name = "age_band", type = "string", comment = "enrichment; null in files written before it" },
          { name = "email_provider", type = "string", comment = "enrichment (reference data); null in files written before it" },
          { name = "enricher_version", type = "string", comment = "enrichment; null in files written before it" },
        ],
      )
    }
    events = {
      description = "Events as loaded, one row per source record: the greatest source_order per event_id is current."
      columns = concat(
        [
          { name = "event_id", type = "string", comment = "" },
          { name = "user_id", type = "string", comment = "" },
          { name = "event_type", type = "string", comment = "" },
          { name = "occurred_at", type = "timestamp", comment = "UTC" },
          { name = "properties", type = "string", comment = "JSON text: json_extract_scalar(properties, '$.name')" },
        ],
        local.lineage_columns,
        [
          { name = "event_time", type = "timestamp", comment = "the S3 event time of the file (UTC)" },
          { name = "uploaded_by", type = "string", comment = local.uploaded_by_comment },
        ],
      )
    }
  }

  # One file per query, read here and by `pipeline query --named` (the same text runs on both).
  named_queries = {
    users_per_email_domain = "Current users (the later S3 event wins) per email domain."
    loads_per_day          = "Per ingest date and dataset: source files loaded into the curated zone and their rows."
    rejects_per_reason     = "Rejected records per reason, and the files they came from."
  }
}

resource "aws_glue_catalog_database" "this" {
  name        = var.database_name
  description = "The pipeline's data lake: curated zone (s3://${var.datalake_bucket_name}/${var.curated_prefix}) and rejects."
}

resource "aws_glue_catalog_table" "curated" {
  for_each = local.curated_tables

  name          = each.key
  database_name = aws_glue_catalog_database.this.name
  description   = each.value.description
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    EXTERNAL       = "TRUE"
    classification = "parquet"
    # Partition projection: Athena computes the partitions from these settings instead of reading them from
    # the catalogue, so a new day is queryable at once, with no crawler or partition to add.
    "projection.enabled"                   = "true"
    "projection.ingest_date.type"          = "date"
    "projection.ingest_date.format"        = "yyyy-MM-dd"
    "projection.ingest_date.range"         = "${var.projection_start_date},NOW"
    "projection.ingest_date.interval"      = "1"
    "projection.ingest_date.interval.unit" = "DAYS"
    "storage.location.template"            = "s3://${var.datalake_bucket_name}/${var.curated_prefix}dataset=${each.key}/ingest_date=$${ingest_date}/"
  }

  partition_keys {
    name    = "ingest_date"
    type    = "string"
    comment = "the S3 event date of the source file, yyyy-MM-dd (UTC)"
  }

  storage_descriptor {
    location      = "s3://${var.datalake_bucket_name}/${var.curated_prefix}dataset=${each.key}/"
    input_format  = local.parquet_storage.input_format
    output_format = local.parquet_storage.output_format

    ser_de_info {
      name                  = "parquet"
      serialization_library = local.parquet_storage.serialization_library
      parameters = {
        "serialization.format" = "1"
      }
    }

    dynamic "columns" {
      for_each = each.value.columns

      content {
        name    = columns.value.name
        type    = columns.value.type
        comment = columns.value.comment == "" ? null : columns.value.comment
      }
    }
  }
}

# The rejects in the quarantine bucket: rejects/<source key>@<version>.jsonl, and for a file loaded in parts
# rejects/<source key>@<version>/part-<n>.jsonl; Athena reads every object under the location, nested ones
# included. One JSON object per line, which the OpenX SerDe needs. The `record` field (the input as read: an
# object, a list or a text) is left out: it has no one type, and the SerDe ignores fields a table lacks.
resource "aws_glue_catalog_table" "rejects" {
  name          = "rejects"
  database_name = aws_glue_catalog_database.this.name
  description   = "Rejected records (JSON Lines in the quarantine bucket): one row per record, with its reasons."
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    EXTERNAL       = "TRUE"
    classification = "json"
  }

  storage_descriptor {
    location      = "s3://${var.quarantine_bucket_name}/rejects/"
    input_format  = "org.apache.hadoop.mapred.TextInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"

    ser_de_info {
      name                  = "json"
      serialization_library = "org.openx.data.jsonserde.JsonSerDe"
      parameters = {
        # A line that is not valid JSON (none should be) reads as nulls rather than failing the query.
        "ignore.malformed.json" = "true"
      }
    }

    columns {
      name = "source_bucket"
      type = "string"
    }
    columns {
      name = "source_key"
      type = "string"
    }
    columns {
      name = "source_version"
      type = "string"
    }
    columns {
      name    = "source_event_time"
      type    = "string"
      comment = "ISO 8601, UTC"
    }
    columns {
      name = "source_order"
      type = "string"
    }
    columns {
      name    = "uploaded_by"
      type    = "string"
      comment = "who landed the file; absent (null) when not known"
    }
    columns {
      name    = "line"
      type    = "bigint"
      comment = "line of the record in its file"
    }
    columns {
      name    = "reasons"
      type    = "array<string>"
      comment = "one per problem, each \"field: problem\""
    }
  }
}

module "results_bucket" {
  source = "../bucket"

  name                               = var.results_bucket_name
  force_destroy                      = var.force_destroy
  kms_key_arn                        = var.kms_key_arn
  expiration_days                    = var.results_expiration_days
  noncurrent_version_expiration_days = 1
  tags                               = var.tags
}

resource "aws_athena_workgroup" "this" {
  name          = var.workgroup_name
  description   = "Queries over the pipeline's data lake; results in ${var.results_bucket_name}, encrypted."
  state         = "ENABLED"
  force_destroy = var.force_destroy

  configuration {
    # Clients cannot send results elsewhere, unencrypted, or scan without the cut-off.
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    bytes_scanned_cutoff_per_query     = var.bytes_scanned_cutoff_per_query

    result_configuration {
      output_location = "s3://${module.results_bucket.name}/results/"

      encryption_configuration {
        encryption_option = var.kms_key_arn == null ? "SSE_S3" : "SSE_KMS"
        kms_key_arn       = var.kms_key_arn
      }
    }
  }

  # At least one tag of its own: moto answers ListTagsForResource on an untagged workgroup with "does not
  # exist", and the read-back after create fails (with the provider's default tags, too, this holds).
  tags = merge({ Component = "catalog" }, var.tags)
}

resource "aws_athena_named_query" "this" {
  for_each = local.named_queries

  name        = each.key
  description = each.value
  workgroup   = aws_athena_workgroup.this.id
  database    = aws_glue_catalog_database.this.name
  query       = file("${path.module}/queries/${each.key}.sql")
}
