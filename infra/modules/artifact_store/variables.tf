variable "bucket_name" {
  description = "Name of the S3 bucket that holds MLflow artifacts and the pipeline's data."
  type        = string

  validation {
    condition = (
      can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name)) &&
      !can(regex("\\.\\.|^\\d+\\.\\d+\\.\\d+\\.\\d+$|^xn--|-s3alias$|--ol-s3$", var.bucket_name))
    )
    error_message = "bucket_name must follow S3 naming rules: 3-63 lowercase letters, digits, dots or hyphens, no IP-address form."
  }
}

variable "force_destroy" {
  description = "Let terraform destroy delete a bucket that still holds objects. Off, so artifacts survive a destroy by mistake."
  type        = bool
  default     = false
}

variable "attach_deny_insecure_transport_policy" {
  description = "Attach the bucket policy that denies requests without TLS (or below TLS 1.2). Only emulators served over plain HTTP need it off."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for default encryption. Null uses the AWS-managed aws/s3 key (SSE-KMS)."
  type        = string
  default     = null
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which overwritten or deleted object versions are removed for good."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1
    error_message = "noncurrent_version_expiration_days must be at least 1."
  }
}

variable "expiring_prefixes" {
  description = "Key prefixes whose objects expire after expiration_days, e.g. inbox/ and predictions/: raw data that must not be kept forever. Empty: nothing expires."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for p in var.expiring_prefixes : can(regex("^([A-Za-z0-9._-]+/)+$", p))])
    error_message = "expiring_prefixes must be path segments of letters, digits, dots, underscores or hyphens, each ending with a slash, e.g. inbox/ (an empty prefix would expire the models too)."
  }
}

variable "expiration_days" {
  description = "Days after which objects under expiring_prefixes expire (a delete marker; the data goes noncurrent_version_expiration_days later)."
  type        = number
  default     = 365

  validation {
    condition     = var.expiration_days >= 1 && floor(var.expiration_days) == var.expiration_days
    error_message = "expiration_days must be a whole number of days, at least 1."
  }
}

variable "abort_incomplete_multipart_upload_days" {
  description = "Days after which unfinished multipart uploads are aborted."
  type        = number
  default     = 7
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
