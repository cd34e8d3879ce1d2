output "dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "dashboard_arn" {
  description = "ARN of the CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.this.dashboard_arn
}

output "alarm_arns" {
  description = "ARNs of the alarms: notifications_failed, and subscription_dead_letters (null without a subscriptions' dead-letter queue)."
  value = {
    notifications_failed      = aws_cloudwatch_metric_alarm.notifications_failed.arn
    subscription_dead_letters = one(aws_cloudwatch_metric_alarm.subscription_dead_letters[*].arn)
  }
}
