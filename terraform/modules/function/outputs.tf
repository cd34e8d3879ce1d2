output "function_name" {
  description = "Name of the function."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "ARN of the function."
  value       = aws_lambda_function.this.arn
}

output "role_name" {
  description = "Name of the function's execution role."
  value       = aws_iam_role.this.name
}

output "role_arn" {
  description = "ARN of the function's execution role."
  value       = aws_iam_role.this.arn
}

output "log_group_name" {
  description = "Name of the function's log group."
  value       = aws_cloudwatch_log_group.this.name
}

output "event_source_mapping_uuid" {
  description = "UUID of the SQS event source mapping; null for a function without a queue."
  value       = one(aws_lambda_event_source_mapping.this[*].uuid)
}

output "alarm_arns" {
  description = "ARNs of the alarms: errors, and with a queue dead_letters and oldest_message (else null)."
  value = {
    errors         = aws_cloudwatch_metric_alarm.errors.arn
    dead_letters   = one(aws_cloudwatch_metric_alarm.dead_letters[*].arn)
    oldest_message = one(aws_cloudwatch_metric_alarm.oldest_message[*].arn)
  }
}

output "invoke_arn" {
  description = "Invoke ARN of the function (an API Gateway integration's URI)."
  value       = aws_lambda_function.this.invoke_arn
}
