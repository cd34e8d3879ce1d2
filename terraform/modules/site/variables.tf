variable "name" {
  description = "Name of the distribution's origin access control and response headers policy (`<project>-<environment>-upload-page`)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,55}$", var.name))
    error_message = "name must be 1-55 letters, digits, _ or - (CloudFront's policy names take 64 with the -security suffix)."
  }
}

variable "bucket_name" {
  description = "Globally unique name of the private bucket that holds the page."
  type        = string
}

variable "source_dir" {
  description = "Directory whose every file is uploaded as the page (index.html, app.js, app.css, ...). Absent or empty: only config.json is uploaded. A config.json of its own is left out: the generated one is the page's configuration."
  type        = string
}

variable "region" {
  description = "Region of the stack, for config.json."
  type        = string
}

variable "user_pool_id" {
  description = "Cognito user pool id, for config.json."
  type        = string
}

variable "user_pool_client_id" {
  description = "Cognito app client id (public, no secret), for config.json."
  type        = string
}

variable "cognito_endpoint" {
  description = "Cognito user pools endpoint the page signs in against, for config.json (on AWS `https://cognito-idp.<region>.amazonaws.com/`)."
  type        = string
}

variable "api_endpoint" {
  description = "Base URL of the ingest API, for config.json. Null when there is no API."
  type        = string
  default     = null
}

variable "max_upload_bytes" {
  description = "Largest file the API hands out an upload form for, for config.json (maxUploadBytes). Null: the key is left out."
  type        = number
  default     = null
}

variable "connect_src" {
  description = "Origins the page may send requests to (the CSP's connect-src beside 'self'): the API, Cognito, the landing bucket's S3 addresses."
  type        = list(string)

  validation {
    condition     = alltrue([for source in var.connect_src : source != "*" && can(regex("^https://[^/\\s;,']+$", source))])
    error_message = "connect_src entries are https://host origins (a leading *. wildcard label at most), without a path; * alone is refused."
  }
}

variable "price_class" {
  description = "CloudFront price class: which edge locations serve the page (PriceClass_100: North America and Europe, the cheapest)."
  type        = string
  default     = "PriceClass_100"

  validation {
    condition     = contains(["PriceClass_100", "PriceClass_200", "PriceClass_All"], var.price_class)
    error_message = "price_class must be PriceClass_100, PriceClass_200 or PriceClass_All."
  }
}

variable "aliases" {
  description = "Custom domain names of the page (e.g. upload.example.com); they need `acm_certificate_arn`. Empty: the distribution's *.cloudfront.net name."
  type        = list(string)
  default     = []
}

variable "acm_certificate_arn" {
  description = "ACM certificate (in us-east-1) for `aliases`; served with SNI and TLSv1.2_2021 at least. Null: CloudFront's default certificate."
  type        = string
  default     = null
}

variable "web_acl_id" {
  description = "ARN of a WAFv2 web ACL (scope CLOUDFRONT) in front of the page. Null: none."
  type        = string
  default     = null
}

variable "log_bucket_domain_name" {
  description = "Domain name (`<bucket>.s3.amazonaws.com`) of a bucket with ACLs enabled for CloudFront's standard logs. Null: no viewer logs."
  type        = string
  default     = null
}

variable "hsts_max_age_seconds" {
  description = "Strict-Transport-Security max-age (seconds) the page is served with (includeSubDomains, no preload)."
  type        = number
  default     = 31536000

  validation {
    condition     = var.hsts_max_age_seconds >= 86400
    error_message = "hsts_max_age_seconds must be at least a day (86400)."
  }
}

variable "hsts_preload" {
  description = "Add `preload` to Strict-Transport-Security. Only for a custom domain whose owner has decided to submit it to the browsers' preload list (it binds every subdomain)."
  type        = bool
  default     = false
}

variable "cache_control" {
  description = "Cache-Control of every object: no-cache by default, so browsers revalidate (ETag) and a new apply is seen at once without an invalidation (the file names carry no content hash: there is no build step)."
  type        = string
  default     = "no-cache"
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete the bucket while it still holds objects (the page's files are re-uploaded from source_dir anyway)."
  type        = bool
  default     = false
}

variable "noncurrent_version_expiration_days" {
  description = "Days an overwritten page file version is kept before it is removed for good."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags for the bucket and the distribution (on top of the provider's default tags)."
  type        = map(string)
  default     = {}
}
