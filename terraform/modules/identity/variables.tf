variable "name" {
  description = "Name of the user pool; the app client is `<name>-client`."
  type        = string

  validation {
    condition     = can(regex("^[\\w\\s+=,.@-]{1,128}$", var.name))
    error_message = "name must be 1-128 letters, digits, spaces or + = , . @ - _."
  }
}

variable "password_minimum_length" {
  description = "Shortest password the pool accepts (with lower case, upper case and a digit, and a symbol when password_require_symbols)."
  type        = number
  default     = 12

  validation {
    condition     = var.password_minimum_length >= 8 && var.password_minimum_length <= 99 && floor(var.password_minimum_length) == var.password_minimum_length
    error_message = "password_minimum_length must be a whole number from 8 (below it a password is guessable) to 99 (Cognito's most)."
  }
}

variable "password_require_symbols" {
  description = "Whether a password needs a symbol as well."
  type        = bool
  default     = true
}

variable "temporary_password_validity_days" {
  description = "Days an invited user's temporary password stays valid."
  type        = number
  default     = 3

  validation {
    condition     = var.temporary_password_validity_days >= 1 && var.temporary_password_validity_days <= 7
    error_message = "temporary_password_validity_days must be from 1 to 7."
  }
}

variable "mfa" {
  description = "Multi-factor authentication: OFF, OPTIONAL (users may add an authenticator app) or ON."
  type        = string
  default     = "OPTIONAL"

  validation {
    condition     = contains(["OFF", "OPTIONAL", "ON"], var.mfa)
    error_message = "mfa must be OFF, OPTIONAL or ON."
  }
}

variable "access_token_validity_minutes" {
  description = "Lifetime of access tokens (what the API accepts), in minutes: short, since a token cannot be recalled once issued."
  type        = number
  default     = 60

  validation {
    condition     = var.access_token_validity_minutes >= 5 && var.access_token_validity_minutes <= 1440
    error_message = "access_token_validity_minutes must be from 5 to 1440 (Cognito's range: 5 minutes to 1 day)."
  }
}

variable "id_token_validity_minutes" {
  description = "Lifetime of ID tokens, in minutes."
  type        = number
  default     = 60

  validation {
    condition     = var.id_token_validity_minutes >= 5 && var.id_token_validity_minutes <= 1440
    error_message = "id_token_validity_minutes must be from 5 to 1440 (Cognito's range: 5 minutes to 1 day)."
  }
}

variable "refresh_token_validity_days" {
  description = "Lifetime of refresh tokens, in days: how long a user stays signed in without the password."
  type        = number
  default     = 30

  validation {
    condition     = var.refresh_token_validity_days >= 1 && var.refresh_token_validity_days <= 90
    error_message = "refresh_token_validity_days must be from 1 to 90 (Cognito allows up to 3650; beyond a quarter a lost device stays signed in too long)."
  }
}

variable "domain_prefix" {
  description = "Prefix of the hosted UI's domain (`<prefix>.auth.<region>.amazoncognito.com`). Null: no hosted UI."
  type        = string
  default     = null

  validation {
    condition     = var.domain_prefix == null || can(regex("^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$", var.domain_prefix))
    error_message = "domain_prefix must be 1-63 lowercase letters, digits or hyphens, not starting or ending with a hyphen (and not containing aws, amazon or cognito)."
  }

  validation {
    condition     = var.domain_prefix == null || !can(regex("aws|amazon|cognito", coalesce(var.domain_prefix, "-")))
    error_message = "domain_prefix must not contain aws, amazon or cognito (Cognito refuses them)."
  }
}

variable "callback_urls" {
  description = "Where the hosted UI may send a signed-in user back to (the upload page). Empty: no OAuth flow."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for url in var.callback_urls : can(regex("^https://", url))])
    error_message = "callback_urls must be https:// addresses (Cognito allows http only for a local host)."
  }
}

variable "logout_urls" {
  description = "Where the hosted UI may send a signed-out user."
  type        = list(string)
  default     = []
}

variable "deletion_protection" {
  description = "Refuse to delete the user pool (and its users) until this is set to false and applied."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags for the user pool (on top of the provider's default tags)."
  type        = map(string)
  default     = {}
}
