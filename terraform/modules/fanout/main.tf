# S3 event fan-out: the source bucket publishes to one SNS topic, which delivers to one SQS queue per consumer.
# Each queue has a dead-letter queue, and only the topic may send to it. A delivery SNS gives up on (a queue
# policy or a KMS key policy that refuses it) goes to the subscriptions' dead-letter queue instead of nowhere.
#
# Queue policies are inline (`policy` on aws_sqs_queue) rather than separate aws_sqs_queue_policy resources:
# each SQS resource makes the provider wait for its attributes to propagate, so fewer resources deploy faster.
# ARNs are therefore built from names, which also keeps every queue free of dependencies on the others.

data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name
  account_id = var.source_account_id

  source_bucket_arn = "arn:${local.partition}:s3:::${var.source_bucket_name}"
  topic_arn         = "arn:${local.partition}:sns:${local.region}:${local.account_id}:${var.topic_name}"

  queues = {
    for key, consumer in var.consumers : key => merge(consumer, {
      name     = "${var.queue_name_prefix}-${key}"
      arn      = "arn:${local.partition}:sqs:${local.region}:${local.account_id}:${var.queue_name_prefix}-${key}"
      dlq_name = "${var.queue_name_prefix}-${key}-dlq"
      dlq_arn  = "arn:${local.partition}:sqs:${local.region}:${local.account_id}:${var.queue_name_prefix}-${key}-dlq"
    })
  }
  subscribed = { for key, queue in local.queues : key => queue if queue.subscribe }

  # One dead-letter queue for every subscription, not one each: what makes SNS give up (a queue or key policy
  # that refuses it) is the stack's, not a consumer's, and usually strikes every subscription at once; the
  # recovery is the same for all (fix the policy, then replay the announced versions: both consumers are
  # idempotent); and each SQS queue costs a creation wait and an alarm.
  subscription_dlq_name = "${var.queue_name_prefix}-subscriptions-dlq"
  subscription_dlq_arn  = "arn:${local.partition}:sqs:${local.region}:${local.account_id}:${var.queue_name_prefix}-subscriptions-dlq"
}

data "aws_iam_policy_document" "topic" {
  statement {
    sid       = "AllowSourceBucketToPublish"
    actions   = ["sns:Publish"]
    resources = [local.topic_arn]

    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [local.source_bucket_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_sns_topic" "this" {
  # Encrypted when kms_key_arn is set. S3 can only publish to a topic encrypted with a customer managed key
  # whose policy admits s3.amazonaws.com (not the AWS managed aws/sns key); the messages are event metadata
  # (bucket, key, size), never file contents.
  name              = var.topic_name
  policy            = data.aws_iam_policy_document.topic.json
  kms_master_key_id = var.kms_key_arn
  tags              = var.tags
}

data "aws_iam_policy_document" "queue" {
  for_each = local.queues

  dynamic "statement" {
    for_each = each.value.subscribe ? [1] : []

    content {
      sid       = "AllowTopicToSend"
      actions   = ["sqs:SendMessage"]
      resources = [each.value.arn]

      principals {
        type        = "Service"
        identifiers = ["sns.amazonaws.com"]
      }

      condition {
        test     = "ArnEquals"
        variable = "aws:SourceArn"
        values   = [local.topic_arn]
      }
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [each.value.arn]

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

data "aws_iam_policy_document" "dead_letter_queue" {
  for_each = local.queues

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [each.value.dlq_arn]

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

data "aws_iam_policy_document" "subscription_dead_letter_queue" {
  count = length(local.subscribed) == 0 ? 0 : 1

  statement {
    sid       = "AllowTopicToDeadLetter"
    actions   = ["sqs:SendMessage"]
    resources = [local.subscription_dlq_arn]

    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [local.topic_arn]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [local.subscription_dlq_arn]

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

resource "aws_sqs_queue" "subscription_dead_letter" {
  count = length(local.subscribed) == 0 ? 0 : 1

  name                      = local.subscription_dlq_name
  message_retention_seconds = var.subscription_dlq_message_retention_seconds
  sqs_managed_sse_enabled   = var.kms_key_arn == null ? true : null
  kms_master_key_id         = var.kms_key_arn
  policy                    = data.aws_iam_policy_document.subscription_dead_letter_queue[0].json

  tags = var.tags
}

resource "aws_sqs_queue" "dead_letter" {
  for_each = local.queues

  name                      = each.value.dlq_name
  message_retention_seconds = each.value.dlq_message_retention_seconds
  sqs_managed_sse_enabled   = var.kms_key_arn == null ? true : null
  kms_master_key_id         = var.kms_key_arn
  policy                    = data.aws_iam_policy_document.dead_letter_queue[each.key].json

  # Only its own queue may use it as a dead-letter queue (the ARN is built from the name: no cycle).
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [each.value.arn]
  })

  tags = var.tags
}

resource "aws_sqs_queue" "this" {
  for_each = local.queues

  name                       = each.value.name
  visibility_timeout_seconds = each.value.visibility_timeout_seconds
  message_retention_seconds  = each.value.message_retention_seconds
  sqs_managed_sse_enabled    = var.kms_key_arn == null ? true : null
  kms_master_key_id          = var.kms_key_arn
  policy                     = data.aws_iam_policy_document.queue[each.key].json

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letter[each.key].arn
    maxReceiveCount     = each.value.max_receive_count
  })

  tags = var.tags
}

resource "aws_sns_topic_subscription" "this" {
  for_each = local.subscribed

  topic_arn            = aws_sns_topic.this.arn
  protocol             = "sqs"
  endpoint             = aws_sqs_queue.this[each.key].arn
  raw_message_delivery = var.raw_message_delivery

  # Once SNS has given up on a delivery (after its retries), the message goes here rather than being dropped.
  redrive_policy = jsonencode({ deadLetterTargetArn = aws_sqs_queue.subscription_dead_letter[0].arn })
}

resource "aws_s3_bucket_notification" "this" {
  bucket = var.source_bucket_name

  topic {
    topic_arn     = aws_sns_topic.this.arn
    events        = var.events
    filter_prefix = var.filter_prefix
    filter_suffix = var.filter_suffix
  }

  # Announce objects only once every queue is subscribed, so no event of the first uploads is lost.
  depends_on = [aws_sns_topic_subscription.this]
}
