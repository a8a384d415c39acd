variable "name" {
  description = "Name of the SNS topic."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,256}$", var.name))
    error_message = "name must be 1-256 letters, digits, hyphens or underscores (an SNS standard topic name)."
  }
}

variable "display_name" {
  description = "Display name of the topic (the sender name of its email messages)."
  type        = string
  default     = "driftloop"

  validation {
    condition     = length(var.display_name) <= 100
    error_message = "display_name must be at most 100 characters."
  }
}

variable "kms_master_key_id" {
  description = "KMS key the topic is encrypted with: the AWS-managed alias/aws/sns by default, or a customer-managed key's ARN or alias."
  type        = string
  default     = "alias/aws/sns"

  validation {
    condition     = can(regex("^(alias/[A-Za-z0-9/_-]+|arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(key|alias)/[A-Za-z0-9/_-]+|[0-9a-f-]{36})$", var.kms_master_key_id))
    error_message = "kms_master_key_id must be a KMS key id, a key or alias ARN, or an alias/... name (the topic is always encrypted)."
  }
}

variable "email" {
  description = "Email address subscribed to the topic; null (the default) subscribes nobody. The address must confirm the subscription."
  type        = string
  default     = null

  validation {
    condition     = var.email == null || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.email))
    error_message = "email must be an email address, or null for no subscription."
  }
}

variable "tags" {
  description = "Tags for the topic."
  type        = map(string)
  default     = {}
}
