output "user_pool_id" {
  description = "ID of the user pool."
  value       = aws_cognito_user_pool.this.id
}

output "user_pool_arn" {
  description = "ARN of the user pool."
  value       = aws_cognito_user_pool.this.arn
}

output "issuer" {
  description = "The `iss` of the pool's tokens, `https://cognito-idp.<region>.amazonaws.com/<pool id>`: what a JWT authorizer checks."
  value       = "https://${aws_cognito_user_pool.this.endpoint}"
}

output "client_id" {
  description = "ID of the app client (public: no secret): the audience of the pool's tokens."
  value       = aws_cognito_user_pool_client.this.id
}

output "domain" {
  description = "The hosted UI's domain prefix, or null."
  value       = try(aws_cognito_user_pool_domain.this[0].domain, null)
}
