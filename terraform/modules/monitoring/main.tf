# What tells the on-call that events are being lost or stuck, beyond each function's own alarms: the topic's
# failed deliveries, the subscriptions' dead-letter queue, and one dashboard of the whole pipeline.

data "aws_region" "current" {}

locals {
  region    = data.aws_region.current.name
  functions = sort(keys(var.consumers))

  # Dashboard widgets: metric rows of [namespace, metric, dimension name, dimension value], one line each.
  depth_metrics = [for key in local.functions : ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", var.consumers[key].queue_name]]
  age_metrics   = [for key in local.functions : ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", var.consumers[key].queue_name]]
  dlq_metrics = concat(
    [for key in local.functions : ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", var.consumers[key].dlq_name]],
    var.subscription_dlq_name == null ? [] : [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", var.subscription_dlq_name]],
  )
  error_metrics    = [for key in local.functions : ["AWS/Lambda", "Errors", "FunctionName", var.consumers[key].function_name]]
  throttle_metrics = [for key in local.functions : ["AWS/Lambda", "Throttles", "FunctionName", var.consumers[key].function_name]]
  topic_metrics = [
    ["AWS/SNS", "NumberOfNotificationsFailed", "TopicName", var.topic_name],
    ["AWS/SNS", "NumberOfNotificationsRedrivenToDlq", "TopicName", var.topic_name],
  ]

  widgets = [
    { title = "Queue depth (messages visible)", stat = "Maximum", metrics = local.depth_metrics },
    { title = "Age of the oldest message (s)", stat = "Maximum", metrics = local.age_metrics },
    { title = "Dead-letter queue depth", stat = "Maximum", metrics = local.dlq_metrics },
    { title = "Function errors", stat = "Sum", metrics = local.error_metrics },
    { title = "Function throttles", stat = "Sum", metrics = local.throttle_metrics },
    { title = "Topic deliveries failed / dead-lettered", stat = "Sum", metrics = local.topic_metrics },
  ]
}

resource "aws_cloudwatch_metric_alarm" "notifications_failed" {
  alarm_name          = "${var.name}-notifications-failed"
  alarm_description   = "SNS failed to deliver events of ${var.topic_name} to a subscribed queue (a queue policy, or a KMS key policy without sns.amazonaws.com): they are in the subscriptions' dead-letter queue. Fix the policy, then replay the versions."
  namespace           = "AWS/SNS"
  metric_name         = "NumberOfNotificationsFailed"
  dimensions          = { TopicName = var.topic_name }
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

resource "aws_cloudwatch_metric_alarm" "subscription_dead_letters" {
  count = var.subscription_dlq_name == null ? 0 : 1

  alarm_name          = "${var.name}-subscription-dead-letters"
  alarm_description   = "Events SNS could not deliver to a queue are waiting in ${var.subscription_dlq_name}: fix what refused them, then replay the versions they announce."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = var.subscription_dlq_name }
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

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name

  dashboard_body = jsonencode({
    widgets = [
      for index, widget in local.widgets : {
        type   = "metric"
        x      = (index % 2) * 12
        y      = floor(index / 2) * 6
        width  = 12
        height = 6
        properties = {
          title   = widget.title
          region  = local.region
          stat    = widget.stat
          period  = 300
          view    = "timeSeries"
          stacked = false
          metrics = widget.metrics
        }
      }
    ]
  })
}
