variable "name" {
  description = "Name of the dashboard, and prefix of the alarms' names (`<name>-notifications-failed`, ...)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,200}$", var.name))
    error_message = "name must be 1-200 letters, digits, hyphens or underscores (a dashboard name)."
  }
}

variable "topic_name" {
  description = "Name of the SNS topic whose failed deliveries are watched."
  type        = string
}

variable "subscription_dlq_name" {
  description = "Name of the subscriptions' dead-letter queue, watched by an alarm and shown on the dashboard. Null: none."
  type        = string
  default     = null
}

variable "consumers" {
  description = "Per function key: its queue_name, the dlq_name of its dead-letter queue and its function_name, shown on the dashboard (depth, age of the oldest message, dead letters, errors, throttles)."
  type = map(object({
    queue_name    = string
    dlq_name      = string
    function_name = string
  }))

  validation {
    condition     = length(var.consumers) > 0
    error_message = "consumers must have at least one entry."
  }
}

variable "alarm_actions" {
  description = "ARNs notified when an alarm fires or recovers (e.g. an SNS topic for the on-call). Empty: the alarms only show in CloudWatch."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags for the alarms (on top of the provider's default tags; dashboards take no tags)."
  type        = map(string)
  default     = {}
}
