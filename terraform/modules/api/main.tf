# The ingest API: an API Gateway HTTP API in front of one Lambda function (AWS_PROXY, payload format 2.0).
# Every route needs a token of the Cognito pool, checked by a JWT authorizer before the function runs; CORS
# admits only the upload page's origins; the $default stage throttles and writes access logs.

locals {
  function_name = element(split(":", var.function_arn), 6)
}

resource "aws_apigatewayv2_api" "this" {
  name          = var.name
  description   = "Ingest API: presigned uploads, event batches and the caller's files."
  protocol_type = "HTTP"

  dynamic "cors_configuration" {
    for_each = length(var.cors_allow_origins) == 0 ? [] : [1]

    content {
      allow_origins = var.cors_allow_origins
      allow_methods = ["GET", "POST", "OPTIONS"]
      allow_headers = ["authorization", "content-type", "idempotency-key"]
      # The page reads whether a batch was a replay.
      expose_headers = ["idempotent-replayed"]
      max_age        = 3600
    }
  }

  tags = var.tags
}

resource "aws_apigatewayv2_authorizer" "jwt" {
  api_id           = aws_apigatewayv2_api.this.id
  name             = "${var.name}-cognito"
  authorizer_type  = "JWT"
  identity_sources = ["$request.header.Authorization"]

  jwt_configuration {
    issuer = var.jwt_issuer
    # Cognito's access tokens carry the client id as client_id, which API Gateway checks when aud is absent.
    audience = var.jwt_audience
  }
}

resource "aws_apigatewayv2_integration" "function" {
  api_id                 = aws_apigatewayv2_api.this.id
  integration_type       = "AWS_PROXY"
  integration_uri        = var.function_invoke_arn
  integration_method     = "POST"
  payload_format_version = "2.0"
  timeout_milliseconds   = var.integration_timeout_milliseconds
}

resource "aws_apigatewayv2_route" "this" {
  for_each = toset(var.routes)

  api_id             = aws_apigatewayv2_api.this.id
  route_key          = each.value
  target             = "integrations/${aws_apigatewayv2_integration.function.id}"
  authorization_type = "JWT"
  authorizer_id      = aws_apigatewayv2_authorizer.jwt.id
}

resource "aws_cloudwatch_log_group" "access" {
  #checkov:skip=CKV_AWS_338:Retention is a variable (log_retention_days, 30 days by default): access logs are operational; raise it where a compliance regime asks for a year.
  name              = "/aws/apigateway/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.this.id
  name        = "$default"
  auto_deploy = true

  default_route_settings {
    throttling_burst_limit = var.throttling_burst_limit
    throttling_rate_limit  = var.throttling_rate_limit
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.access.arn
    # The caller's sub, never the token: who did what, and what API Gateway answered.
    format = jsonencode({
      requestId          = "$context.requestId"
      time               = "$context.requestTime"
      routeKey           = "$context.routeKey"
      status             = "$context.status"
      sourceIp           = "$context.identity.sourceIp"
      sub                = "$context.authorizer.claims.sub"
      authorizerError    = "$context.authorizer.error"
      integrationError   = "$context.integrationErrorMessage"
      responseLength     = "$context.responseLength"
      integrationLatency = "$context.integrationLatency"
    })
  }

  tags = var.tags
}

resource "aws_lambda_permission" "api" {
  statement_id  = "AllowInvokeFromHttpApi"
  action        = "lambda:InvokeFunction"
  function_name = local.function_name
  principal     = "apigateway.amazonaws.com"
  # Only this API's routes, any stage.
  source_arn = "${aws_apigatewayv2_api.this.execution_arn}/*/*"
}
