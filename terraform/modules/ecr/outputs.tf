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
