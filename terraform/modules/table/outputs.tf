output "name" {
  description = "Name of the table."
  value       = aws_dynamodb_table.this.name
}

output "arn" {
  description = "ARN of the table."
  value       = aws_dynamodb_table.this.arn
}

output "email_index_arn" {
  description = "ARN of the email-index global secondary index, for IAM statements that query it; null without email_index."
  value       = var.email_index ? "${aws_dynamodb_table.this.arn}/index/email-index" : null
}
