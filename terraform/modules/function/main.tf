# One Lambda function from a container image: its own IAM role (least privilege), its log group and an alarm
# on function errors. With a queue (queue_arn), also the SQS event source mapping and alarms on dead-letter
# queue depth and the age of the queue's oldest message; without one (an API-invoked function) none of these.

data "aws_region" "current" {}

locals {
  # IAM is global and a function name is only regional: the role carries the region, so the same stack can be
  # deployed to a second region of the account without a name collision.
  role_name = "${var.name}-${data.aws_region.current.name}"
  # A flag of its own, not queue_arn != null: the queue's ARN is unknown until the queue exists, and count
  # must be known at plan time.
  has_queue  = var.consumes_queue
  queue_name = local.has_queue ? element(split(":", var.queue_arn), 5) : null
  # A message this old waited that long for a consumer, or failed twice: twice the visibility timeout, and never
  # under 15 minutes, unless set.
  oldest_message_alarm_seconds = local.has_queue ? coalesce(var.oldest_message_alarm_seconds, max(900, 2 * var.queue_visibility_timeout_seconds)) : null
}

data "aws_iam_policy_document" "assume_role" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = local.role_name
  description        = "Execution role of the ${var.name} function."
  assume_role_policy = data.aws_iam_policy_document.assume_role.json
  tags               = var.tags

  lifecycle {
    precondition {
      condition     = length(local.role_name) <= 64
      error_message = "The role name ${local.role_name} is ${length(local.role_name)} characters; IAM allows 64: shorten the function name."
    }
  }
}

resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_338:Retention is a variable (log_retention_days, 30 days by default): these are operational logs, and the records' lineage lives in the data, not in the logs. Raise it where a compliance regime asks for a year.
  name              = "/aws/lambda/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

data "aws_iam_policy_document" "this" {
  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  dynamic "statement" {
    for_each = local.has_queue ? [var.queue_arn] : []

    content {
      sid = "ConsumeOwnQueue"
      actions = [
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
        # Messages handed back for the time budget are made visible again at once (pipeline.budget).
        "sqs:ChangeMessageVisibility",
      ]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = var.tracing_mode == "Active" ? [1] : []

    content {
      sid     = "WriteTraces"
      actions = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
      # X-Ray has no resource-level permissions for these actions: "*" is the only resource AWS accepts.
      resources = ["*"]
    }
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]

    content {
      sid = "DecryptWithPipelineKey"
      # Messages of a KMS-encrypted queue, and the function's encrypted environment.
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = var.policy_statements

    content {
      sid       = statement.value.sid
      actions   = statement.value.actions
      resources = statement.value.resources
    }
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "${var.name}-least-privilege"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_116:A dead-letter config only applies to asynchronous invocations; this function is invoked synchronously, by its SQS event source (whose queue has a dead-letter queue) or by API Gateway (the caller gets the error).
  #checkov:skip=CKV_AWS_117:The function reaches only AWS APIs (S3, SQS, DynamoDB, logs) and no private network resource; a VPC would add NAT or endpoint cost and cold-start latency for no isolation gain.
  #checkov:skip=CKV_AWS_115:Concurrency is bounded by the event source mapping's maximum_concurrency; reserved concurrency would also carve capacity out of the account's shared pool.
  #checkov:skip=CKV_AWS_272:Code signing applies to .zip packages only; this function is a container image, pinned by digest when image_digests is given, and its repository has immutable tags and scan on push.
  function_name = var.name
  description   = "Runs ${join(" ", var.command)} from its container image."
  role          = aws_iam_role.this.arn
  package_type  = "Image"
  image_uri     = var.image_uri
  architectures = [var.architecture]
  memory_size   = var.memory_size
  timeout       = var.timeout
  kms_key_arn   = var.kms_key_arn

  image_config {
    command = var.command
  }

  dynamic "environment" {
    for_each = length(var.environment_variables) == 0 ? [] : [var.environment_variables]

    content {
      variables = environment.value
    }
  }

  tracing_config {
    mode = var.tracing_mode
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = !local.has_queue || try(var.queue_visibility_timeout_seconds >= 6 * var.timeout + var.maximum_batching_window_in_seconds, false)
      error_message = "The queue's visibility timeout (${coalesce(var.queue_visibility_timeout_seconds, 0)} s) must be at least six times the function timeout plus the batching window (${6 * var.timeout + var.maximum_batching_window_in_seconds} s), or messages are redelivered while a batch is still being retried."
    }
  }

  # The role must be able to write logs before the first invocation; the log group must exist so Lambda does not
  # create one without retention.
  depends_on = [aws_iam_role_policy.this, aws_cloudwatch_log_group.this]
}

resource "aws_lambda_event_source_mapping" "this" {
  count = local.has_queue ? 1 : 0

  event_source_arn                   = var.queue_arn
  function_name                      = aws_lambda_function.this.function_name
  enabled                            = var.event_source_mapping_enabled
  batch_size                         = var.batch_size
  maximum_batching_window_in_seconds = var.maximum_batching_window_in_seconds

  # The handler reports the messages it could not process; only those are retried, then dead-lettered.
  function_response_types = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.maximum_concurrency
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = var.batch_size <= 10 || var.maximum_batching_window_in_seconds >= 1
      error_message = "A batch_size above 10 needs maximum_batching_window_in_seconds of at least 1 (an SQS event source rule)."
    }
  }

  # Lambda checks at creation that the role may receive from the queue.
  depends_on = [aws_iam_role_policy.this]
}

resource "aws_cloudwatch_metric_alarm" "errors" {
  alarm_name          = "${var.name}-errors"
  alarm_description   = "The ${var.name} function failed at least once in 5 minutes (failed invocations, not reported per-message failures)."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = aws_lambda_function.this.function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "dead_letters" {
  count = local.has_queue ? 1 : 0

  alarm_name          = "${var.name}-dead-letters"
  alarm_description   = "Messages the ${var.name} function gave up on are waiting in ${var.dead_letter_queue_name}: inspect, fix, then redrive them."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = var.dead_letter_queue_name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "oldest_message" {
  count = local.has_queue ? 1 : 0

  alarm_name          = "${var.name}-oldest-message"
  alarm_description   = "A message has waited more than ${local.oldest_message_alarm_seconds} s in ${local.queue_name}: the ${var.name} function is not keeping up, is throttled, keeps failing, or its event source mapping is disabled."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = local.queue_name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = local.oldest_message_alarm_seconds
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = var.tags
}

# These became optional (count) when functions without a queue arrived: existing deployments keep theirs.
moved {
  from = aws_lambda_event_source_mapping.this
  to   = aws_lambda_event_source_mapping.this[0]
}

moved {
  from = aws_cloudwatch_metric_alarm.dead_letters
  to   = aws_cloudwatch_metric_alarm.dead_letters[0]
}

moved {
  from = aws_cloudwatch_metric_alarm.oldest_message
  to   = aws_cloudwatch_metric_alarm.oldest_message[0]
}
