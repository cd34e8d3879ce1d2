# The upload page: static files in a PRIVATE bucket, served only through CloudFront, which signs its requests
# to S3 with an origin access control (the bucket grants s3:GetObject to this distribution alone). Every file
# of source_dir is uploaded as it is, plus a generated config.json, so the page needs no build step.
#
#   browser --HTTPS--> CloudFront (security headers, redirect-to-https) --SigV4 (OAC)--> private bucket
#
# NOT applied on the embedded target (moto 5.2.5): moto has no CreateResponseHeadersPolicy (404), and a
# distribution's read-back loses the origin's OAC id, so a second plan is never clean. The root's
# enable_upload_page is false there (pipeline_toolkit.terraform.EMBEDDED_VARIABLES); README, "Emulators".

locals {
  # Content-Type by file extension; anything else is served as bytes.
  content_types = {
    css         = "text/css; charset=utf-8"
    gif         = "image/gif"
    htm         = "text/html; charset=utf-8"
    html        = "text/html; charset=utf-8"
    ico         = "image/x-icon"
    jpeg        = "image/jpeg"
    jpg         = "image/jpeg"
    js          = "text/javascript; charset=utf-8"
    json        = "application/json"
    map         = "application/json"
    mjs         = "text/javascript; charset=utf-8"
    png         = "image/png"
    svg         = "image/svg+xml"
    txt         = "text/plain; charset=utf-8"
    webmanifest = "application/manifest+json"
    webp        = "image/webp"
    woff        = "font/woff"
    woff2       = "font/woff2"
  }

  # Every file of source_dir (none when it is absent or empty), except a config.json of its own: the generated
  # one below is the page's configuration.
  files = setsubtract(fileset(var.source_dir, "**"), [local.config_key])

  config_key = "config.json"
  # Exactly what the page reads at start-up (maxUploadBytes only when it is known).
  config = merge(
    {
      region           = var.region
      userPoolId       = var.user_pool_id
      userPoolClientId = var.user_pool_client_id
      cognitoEndpoint  = var.cognito_endpoint
      apiEndpoint      = var.api_endpoint
    },
    var.max_upload_bytes == null ? {} : { maxUploadBytes = var.max_upload_bytes },
  )

  # The page's scripts and styles come from its own origin only; it talks to the origins in connect_src (the
  # API, Cognito, the landing bucket's S3 endpoint) and to nothing else; no page may frame it.
  content_security_policy = join("; ", [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self' ${join(" ", var.connect_src)}",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "object-src 'none'",
  ])

  custom_certificate = var.acm_certificate_arn != null
  origin             = "https://${length(var.aliases) > 0 ? var.aliases[0] : aws_cloudfront_distribution.this.domain_name}"
  origin_id          = "site-bucket"
}

module "bucket" {
  source = "../bucket"

  name          = var.bucket_name
  force_destroy = var.force_destroy
  # SSE-S3: the files are public through CloudFront anyway, and SSE-KMS would need the key policy to admit
  # cloudfront.amazonaws.com for this distribution.
  kms_key_arn                        = null
  noncurrent_version_expiration_days = var.noncurrent_version_expiration_days
  policy_documents                   = [data.aws_iam_policy_document.cloudfront_read.json]
  tags                               = var.tags
}

# Only this distribution, through its origin access control, may read the files.
data "aws_iam_policy_document" "cloudfront_read" {
  statement {
    sid       = "CloudFrontReadsThePage"
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = [module.bucket.objects_arn]

    principals {
      type        = "Service"
      identifiers = ["cloudfront.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "AWS:SourceArn"
      values   = [aws_cloudfront_distribution.this.arn]
    }
  }
}

resource "aws_cloudfront_origin_access_control" "this" {
  name                              = var.name
  description                       = "CloudFront signs every request to the upload page's bucket."
  origin_access_control_origin_type = "s3"
  signing_behavior                  = "always"
  signing_protocol                  = "sigv4"
}

resource "aws_cloudfront_response_headers_policy" "security" {
  #checkov:skip=CKV_AWS_259:HSTS is sent (a year, includeSubDomains, override) but preload only when hsts_preload says so: preloading binds the whole registrable domain in browsers for months, a decision for the domain's owner, and means nothing for a *.cloudfront.net name.
  name    = "${var.name}-security"
  comment = "Security headers of the upload page."

  security_headers_config {
    content_security_policy {
      content_security_policy = local.content_security_policy
      override                = true
    }

    strict_transport_security {
      access_control_max_age_sec = var.hsts_max_age_seconds
      include_subdomains         = true
      preload                    = var.hsts_preload
      override                   = true
    }

    content_type_options {
      override = true
    }

    frame_options {
      frame_option = "DENY"
      override     = true
    }

    referrer_policy {
      referrer_policy = "strict-origin-when-cross-origin"
      override        = true
    }
  }
}

resource "aws_cloudfront_distribution" "this" {
  #checkov:skip=CKV_AWS_68:WAF is optional (web_acl_id, null by default): the page is static files, and what it calls (the API) checks a Cognito token and throttles; attach a web ACL where a rate limit at the edge is wanted.
  #checkov:skip=CKV2_AWS_47:WAF is optional (web_acl_id, null by default), so the Log4j rule set cannot be required here; the origin is S3 serving static files, not a Java application.
  #checkov:skip=CKV_AWS_86:Access logging is optional (log_bucket_domain_name, null by default): standard logs need a bucket with ACLs enabled, which the project's buckets refuse (BucketOwnerEnforced); give one where viewer logs are required.
  #checkov:skip=CKV_AWS_310:Origin failover needs a second bucket in another region; the page is a few static files redeployed by one apply.
  #checkov:skip=CKV_AWS_374:No geo restriction: who may upload is decided by the Cognito sign-in, not by the viewer's country.
  #checkov:skip=CKV_AWS_174:TLSv1.2_2021 is the minimum whenever a certificate is given (acm_certificate_arn); CloudFront's default certificate (*.cloudfront.net) cannot take a minimum protocol version.
  #checkov:skip=CKV2_AWS_42:A custom certificate is optional (acm_certificate_arn with aliases); without one the page is served on its *.cloudfront.net name with CloudFront's certificate.
  enabled             = true
  comment             = "Upload page (${var.name})"
  default_root_object = "index.html"
  price_class         = var.price_class
  http_version        = "http2and3"
  is_ipv6_enabled     = true
  aliases             = var.aliases
  web_acl_id          = var.web_acl_id
  tags                = var.tags

  origin {
    origin_id                = local.origin_id
    domain_name              = module.bucket.regional_domain_name
    origin_access_control_id = aws_cloudfront_origin_access_control.this.id
  }

  default_cache_behavior {
    target_origin_id       = local.origin_id
    viewer_protocol_policy = "redirect-to-https"
    allowed_methods        = ["GET", "HEAD"]
    cached_methods         = ["GET", "HEAD"]
    compress               = true
    # The managed policy Managed-CachingOptimized (its id is the same in every account): no cookies, headers
    # or query strings reach S3. Objects say `cache_control`, so a new apply is seen without an invalidation.
    cache_policy_id            = "658327ea-f89d-4fab-a63d-7e88639e58f6"
    response_headers_policy_id = aws_cloudfront_response_headers_policy.security.id
  }

  dynamic "logging_config" {
    for_each = var.log_bucket_domain_name == null ? [] : [var.log_bucket_domain_name]

    content {
      bucket          = logging_config.value
      prefix          = "${var.name}/"
      include_cookies = false
    }
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  viewer_certificate {
    cloudfront_default_certificate = !local.custom_certificate
    acm_certificate_arn            = var.acm_certificate_arn
    ssl_support_method             = local.custom_certificate ? "sni-only" : null
    minimum_protocol_version       = local.custom_certificate ? "TLSv1.2_2021" : "TLSv1"
  }

  lifecycle {
    precondition {
      condition     = local.custom_certificate == (length(var.aliases) > 0)
      error_message = "aliases and acm_certificate_arn go together: a custom name needs its certificate (in us-east-1), and a certificate is only used for custom names."
    }
  }
}

resource "aws_s3_object" "file" {
  for_each = local.files

  bucket        = module.bucket.name
  key           = each.value
  source        = "${var.source_dir}/${each.value}"
  source_hash   = filemd5("${var.source_dir}/${each.value}")
  content_type  = lookup(local.content_types, lower(element(reverse(split(".", each.value)), 0)), "application/octet-stream")
  cache_control = var.cache_control
}

resource "aws_s3_object" "config" {
  bucket        = module.bucket.name
  key           = local.config_key
  content       = jsonencode(local.config)
  content_type  = "application/json"
  cache_control = var.cache_control
}
