output "api_id" {
  description = "ID of the HTTP API."
  value       = aws_apigatewayv2_api.this.id
}

output "api_endpoint" {
  description = "Base URL of the API (the $default stage), e.g. https://<id>.execute-api.<region>.amazonaws.com."
  value       = aws_apigatewayv2_api.this.api_endpoint
}

output "execution_arn" {
  description = "Execution ARN of the API (what the Lambda permission's source_arn is built from)."
  value       = aws_apigatewayv2_api.this.execution_arn
}

output "access_log_group_name" {
  description = "Name of the stage's access log group."
  value       = aws_cloudwatch_log_group.access.name
}
