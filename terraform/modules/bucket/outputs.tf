output "name" {
  description = "Name (id) of the bucket."
  value       = aws_s3_bucket.this.id
}

output "arn" {
  description = "ARN of the bucket."
  value       = aws_s3_bucket.this.arn
}

output "objects_arn" {
  description = "ARN matching every object in the bucket (`<bucket arn>/*`), for IAM statements."
  value       = "${aws_s3_bucket.this.arn}/*"
}

output "regional_domain_name" {
  description = "Region-specific domain name of the bucket."
  value       = aws_s3_bucket.this.bucket_regional_domain_name
}
