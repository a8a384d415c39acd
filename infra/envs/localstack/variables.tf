variable "region" {
  description = "Region the emulator pretends to be."
  type        = string
  default     = "us-east-1"
}

variable "use_local_endpoints" {
  description = "Send every AWS call to endpoint_url (LocalStack or the moto server) instead of AWS."
  type        = bool
  default     = true
}

variable "endpoint_url" {
  description = "Edge endpoint of LocalStack or the moto server."
  type        = string
  default     = "http://localhost:4566"

  validation {
    condition     = can(regex("^https?://[^/]+/?$", var.endpoint_url))
    error_message = "endpoint_url must be a base URL such as http://localhost:4566."
  }
}

variable "artifact_bucket_name" {
  description = "Artifact bucket; the same name `make local-up` creates (both come from ARTIFACT_BUCKET in the Makefile)."
  type        = string
  default     = "driftloop-artifacts"
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
