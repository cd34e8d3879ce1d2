# One S3 bucket with the project's baseline: versioning, default encryption, no public access, TLS-only
# access, ACLs disabled, and lifecycle rules for current and noncurrent versions.

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_18:Access logging needs a dedicated log bucket and is best set up account-wide (or as CloudTrail S3 data events) by whoever owns the account; inside the pipeline every record carries its lineage (source key and version).
  #checkov:skip=CKV_AWS_144:Cross-region replication doubles storage cost; the landing bucket keeps versions and the data lake can be rebuilt from it. Add replication per environment if a regional outage must be survived.
  #checkov:skip=CKV2_AWS_62:Event notifications are configured where a consumer exists (the landing bucket notifies the fan-out topic, in the fanout module); the data lake and quarantine buckets have no consumer.
  bucket        = var.name
  force_destroy = var.force_destroy
  tags          = var.tags
}

resource "aws_s3_bucket_ownership_controls" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    # Disables ACLs: the bucket owner owns every object and only policies grant access.
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket = aws_s3_bucket.this.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "this" {
  bucket = aws_s3_bucket.this.id

  versioning_configuration {
    status = var.versioning_enabled ? "Enabled" : "Suspended"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.kms_key_arn == null ? "AES256" : "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    # With SSE-KMS, a bucket-level data key cuts KMS requests (and their cost) by orders of magnitude.
    bucket_key_enabled = var.kms_key_arn != null
  }
}

data "aws_iam_policy_document" "this" {
  # Statements of the bucket's user (the site module's CloudFront read grant), merged beside the TLS-only one.
  source_policy_documents = var.policy_documents

  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.this.arn,
      "${aws_s3_bucket.this.arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "this" {
  bucket = aws_s3_bucket.this.id
  policy = data.aws_iam_policy_document.this.json

  # A policy put while the public access block is being created can be rejected; order them.
  depends_on = [aws_s3_bucket_public_access_block.this]
}

# Browsers that may send requests to the bucket itself (the upload page's presigned POSTs to the landing bucket).
resource "aws_s3_bucket_cors_configuration" "this" {
  count  = length(var.cors_rules) == 0 ? 0 : 1
  bucket = aws_s3_bucket.this.id

  dynamic "cors_rule" {
    for_each = var.cors_rules

    content {
      allowed_origins = cors_rule.value.allowed_origins
      allowed_methods = cors_rule.value.allowed_methods
      allowed_headers = cors_rule.value.allowed_headers
      expose_headers  = cors_rule.value.expose_headers
      max_age_seconds = cors_rule.value.max_age_seconds
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  # One rule over the whole bucket (a rule per concern would be as valid; one keeps the bucket's policy in one
  # place and static, which static analysis can follow).
  rule {
    id     = "lifecycle"
    status = "Enabled"

    filter {}

    # Parts of abandoned multipart uploads are billed but invisible: drop them.
    abort_incomplete_multipart_upload {
      days_after_initiation = var.abort_incomplete_multipart_upload_days
    }

    dynamic "transition" {
      for_each = var.transition_days == null ? [] : [var.transition_days]

      content {
        days          = transition.value
        storage_class = var.transition_storage_class
      }
    }

    # Current versions expire after expiration_days (on a versioned bucket they become noncurrent). Without an
    # expiry, delete markers left with no version behind them are removed instead (S3 accepts one or the other).
    expiration {
      days                         = var.expiration_days
      expired_object_delete_marker = var.expiration_days == null ? true : null
    }

    dynamic "noncurrent_version_expiration" {
      for_each = var.noncurrent_version_expiration_days == null ? [] : [var.noncurrent_version_expiration_days]

      content {
        noncurrent_days = noncurrent_version_expiration.value
      }
    }
  }

  lifecycle {
    precondition {
      condition     = var.transition_days == null || var.expiration_days == null || try(var.expiration_days > var.transition_days, false)
      error_message = "expiration_days must be greater than transition_days: objects cannot expire before they transition."
    }

    precondition {
      condition     = var.transition_days == null || !contains(["STANDARD_IA", "ONEZONE_IA"], var.transition_storage_class) || try(var.transition_days >= 30, false)
      error_message = "S3 refuses transitions to STANDARD_IA or ONEZONE_IA earlier than 30 days after creation."
    }
  }

  # Versioning must be settled before rules about noncurrent versions are applied.
  depends_on = [aws_s3_bucket_versioning.this]
}
