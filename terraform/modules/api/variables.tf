variable "name" {
  description = "Name of the HTTP API; its access log group is `/aws/apigateway/<name>`."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,128}$", var.name))
    error_message = "name must be 1-128 letters, digits, hyphens or underscores."
  }
}

variable "function_arn" {
  description = "ARN of the function behind every route (it is granted lambda:InvokeFunction for this API only)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:[A-Za-z0-9_-]+$", var.function_arn))
    error_message = "function_arn must be an unqualified Lambda function ARN."
  }
}

variable "function_invoke_arn" {
  description = "The function's invoke ARN (aws_lambda_function.invoke_arn): the integration's URI."
  type        = string
}

variable "jwt_issuer" {
  description = "The tokens' issuer, `https://cognito-idp.<region>.amazonaws.com/<pool id>` for a Cognito pool."
  type        = string

  validation {
    condition     = can(regex("^https://", var.jwt_issuer))
    error_message = "jwt_issuer must be an https:// URL."
  }
}

variable "jwt_audience" {
  description = "Accepted audiences: the Cognito app client id(s). Ids are not format-checked (emulators make other lengths)."
  type        = list(string)

  validation {
    condition     = length(var.jwt_audience) > 0 && alltrue([for a in var.jwt_audience : length(a) > 0])
    error_message = "jwt_audience needs at least one non-empty client id."
  }
}

variable "routes" {
  description = "Route keys (`METHOD /path/{param}`), each behind the JWT authorizer and the function."
  type        = list(string)
  default     = ["POST /uploads", "POST /events/{dataset}", "GET /files", "GET /files/{upload_id}"]

  validation {
    condition     = length(var.routes) > 0 && alltrue([for r in var.routes : can(regex("^(GET|POST|PUT|PATCH|DELETE) /", r))])
    error_message = "routes must be `METHOD /path` keys (no $default and no ANY: every route is named)."
  }
}

variable "cors_allow_origins" {
  description = "Origins a browser may call the API from (the upload page's, e.g. https://upload.example.com). Empty: no CORS, only non-browser clients."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for o in var.cors_allow_origins : o != "*" && can(regex("^https?://[^/*]+$", o))])
    error_message = "cors_allow_origins must be scheme://host[:port] origins without a path; * is refused (the API takes credentials)."
  }
}

variable "throttling_burst_limit" {
  description = "The stage's burst limit (requests at once) for every route."
  type        = number
  default     = 50

  validation {
    condition     = var.throttling_burst_limit >= 1 && var.throttling_burst_limit <= 5000 && floor(var.throttling_burst_limit) == var.throttling_burst_limit
    error_message = "throttling_burst_limit must be a whole number from 1 to 5000."
  }
}

variable "throttling_rate_limit" {
  description = "The stage's steady rate limit, requests per second, for every route."
  type        = number
  default     = 20

  validation {
    condition     = var.throttling_rate_limit > 0 && var.throttling_rate_limit <= 10000
    error_message = "throttling_rate_limit must be above 0 and at most 10000."
  }
}

variable "integration_timeout_milliseconds" {
  description = "How long API Gateway waits for the function (50-30000 ms)."
  type        = number
  default     = 29000

  validation {
    condition     = var.integration_timeout_milliseconds >= 50 && var.integration_timeout_milliseconds <= 30000
    error_message = "integration_timeout_milliseconds must be from 50 to 30000."
  }
}

variable "log_retention_days" {
  description = "Days the access logs are kept (a value CloudWatch Logs accepts; 0 keeps them forever)."
  type        = number
  default     = 30

  validation {
    condition     = contains([0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (0, 1, 3, 5, 7, 14, 30, 60, 90, ...)."
  }
}

variable "kms_key_arn" {
  description = "ARN of a customer managed KMS key encrypting the access logs. Null: AWS managed encryption."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource of the module (on top of the provider's default tags)."
  type        = map(string)
  default     = {}
}
