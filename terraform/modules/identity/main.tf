# Who may use the ingest API: a Cognito user pool (sign-in by email, an administrator creates the users) and
# one public app client (no secret: the upload page and the CLI cannot keep one) with SRP and password
# sign-in. An optional hosted-UI domain for the authorization code flow.

locals {
  hosted_ui = var.domain_prefix != null && length(var.callback_urls) > 0
}

resource "aws_cognito_user_pool" "this" {
  name                     = var.name
  username_attributes      = ["email"]
  auto_verified_attributes = ["email"]
  deletion_protection      = var.deletion_protection ? "ACTIVE" : "INACTIVE"
  mfa_configuration        = var.mfa

  # Users are invited, not self-registered: the pipeline's data is not open to whoever signs up.
  admin_create_user_config {
    allow_admin_create_user_only = true
  }

  password_policy {
    minimum_length                   = var.password_minimum_length
    require_lowercase                = true
    require_uppercase                = true
    require_numbers                  = true
    require_symbols                  = var.password_require_symbols
    temporary_password_validity_days = var.temporary_password_validity_days
  }

  dynamic "software_token_mfa_configuration" {
    for_each = var.mfa == "OFF" ? [] : [1]

    content {
      enabled = true
    }
  }

  account_recovery_setting {
    recovery_mechanism {
      name     = "verified_email"
      priority = 1
    }
  }

  tags = var.tags
}

resource "aws_cognito_user_pool_client" "this" {
  name         = "${var.name}-client"
  user_pool_id = aws_cognito_user_pool.this.id

  generate_secret = false
  # SRP for the page (the password never leaves the browser), USER_PASSWORD_AUTH for the CLI and tests.
  explicit_auth_flows = [
    "ALLOW_USER_SRP_AUTH",
    "ALLOW_USER_PASSWORD_AUTH",
    "ALLOW_REFRESH_TOKEN_AUTH",
  ]
  prevent_user_existence_errors = "ENABLED"
  enable_token_revocation       = true

  access_token_validity  = var.access_token_validity_minutes
  id_token_validity      = var.id_token_validity_minutes
  refresh_token_validity = var.refresh_token_validity_days
  token_validity_units {
    access_token  = "minutes"
    id_token      = "minutes"
    refresh_token = "days"
  }

  # The hosted UI's authorization code flow, only with a domain and somewhere to return to.
  allowed_oauth_flows_user_pool_client = local.hosted_ui
  allowed_oauth_flows                  = local.hosted_ui ? ["code"] : []
  allowed_oauth_scopes                 = local.hosted_ui ? ["openid", "email", "profile"] : []
  callback_urls                        = local.hosted_ui ? var.callback_urls : []
  logout_urls                          = local.hosted_ui ? var.logout_urls : []
  supported_identity_providers         = ["COGNITO"]
}

resource "aws_cognito_user_pool_domain" "this" {
  count = var.domain_prefix == null ? 0 : 1

  domain       = var.domain_prefix
  user_pool_id = aws_cognito_user_pool.this.id
}
