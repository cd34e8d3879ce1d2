# The users table: on demand, keyed by user_id, point-in-time recovery, encryption at rest and deletion
# protection; an email index only when something looks users up by email (email_index).

resource "aws_dynamodb_table" "this" {
  #checkov:skip=CKV_AWS_119:Without kms_key_arn the table uses the AWS owned key on purpose: encrypted at rest, no KMS request billed per read and write, no key policy to keep. A customer managed key is used whenever kms_key_arn is set.
  name                        = var.name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "user_id"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "user_id"
    type = "S"
  }

  # DynamoDB refuses an attribute definition that no key uses: email is declared only with its index.
  dynamic "attribute" {
    for_each = var.email_index ? ["email"] : []

    content {
      name = attribute.value
      type = "S"
    }
  }

  # Every write to the table is also a write to the index: KEYS_ONLY keeps it at the size of the keys (a
  # look-up by email gets the user_id, then reads the item), where ALL would copy every attribute.
  dynamic "global_secondary_index" {
    for_each = var.email_index ? ["email-index"] : []

    content {
      name            = global_secondary_index.value
      hash_key        = "email"
      projection_type = "KEYS_ONLY"
    }
  }

  point_in_time_recovery {
    enabled = var.point_in_time_recovery
  }

  # enabled = false is the AWS owned key: encrypted at rest, no KMS request billed. (true without a key would be
  # the AWS managed key aws/dynamodb, billed per request.) Explicit, so that a table created with the managed
  # key is moved off it too.
  server_side_encryption {
    enabled     = var.kms_key_arn != null
    kms_key_arn = var.kms_key_arn
  }

  tags = var.tags
}
