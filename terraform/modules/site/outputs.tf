output "url" {
  description = "The page's address: `https://<first alias or the distribution's domain>/`."
  value       = "${local.origin}/"
}

output "origin" {
  description = "The page's origin (`https://<first alias or the distribution's domain>`), for the API's and the landing bucket's CORS."
  value       = local.origin
}

output "distribution_id" {
  description = "ID of the CloudFront distribution (for an invalidation, if ever needed)."
  value       = aws_cloudfront_distribution.this.id
}

output "distribution_arn" {
  description = "ARN of the CloudFront distribution (the only reader the bucket admits)."
  value       = aws_cloudfront_distribution.this.arn
}

output "domain_name" {
  description = "The distribution's own domain name (`<id>.cloudfront.net`)."
  value       = aws_cloudfront_distribution.this.domain_name
}

output "bucket_name" {
  description = "Name of the private bucket holding the page."
  value       = module.bucket.name
}

output "config" {
  description = "What config.json holds (region, userPoolId, userPoolClientId, cognitoEndpoint, apiEndpoint, maxUploadBytes)."
  value       = local.config
}

output "content_security_policy" {
  description = "The Content-Security-Policy header the page is served with."
  value       = local.content_security_policy
}

output "files" {
  description = "Keys of the files uploaded from source_dir (config.json excluded)."
  value       = sort(tolist(local.files))
}
