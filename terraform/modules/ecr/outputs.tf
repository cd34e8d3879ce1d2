output "name" {
  description = "Name of the repository."
  value       = aws_ecr_repository.this.name
}

output "arn" {
  description = "ARN of the repository."
  value       = aws_ecr_repository.this.arn
}

output "repository_url" {
  description = "URL of the repository (`<account>.dkr.ecr.<region>.amazonaws.com/<name>`), to tag and push images to."
  value       = aws_ecr_repository.this.repository_url
}

output "registry_id" {
  description = "Account id of the registry holding the repository."
  value       = aws_ecr_repository.this.registry_id
}

output "policy_text" {
  description = "The repository policy letting Lambda pull for lambda_function_arns, or null without them."
  value       = one(aws_ecr_repository_policy.lambda_pull[*].policy)
}
