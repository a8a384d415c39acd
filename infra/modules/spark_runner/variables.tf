variable "name" {
  description = "Name of the stack; prefix of the application, its role, security group and log group."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name))
    error_message = "name must be 3-32 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "release_label" {
  description = "EMR release of the application (Spark 3.5 on emr-7.x), e.g. emr-7.5.0."
  type        = string
  default     = "emr-7.5.0"

  validation {
    condition     = can(regex("^emr-7\\.[0-9]{1,2}\\.[0-9]{1,2}$", var.release_label))
    error_message = "release_label must be an EMR 7 release such as emr-7.5.0."
  }
}

variable "architecture" {
  description = "CPU architecture of the workers: X86_64, or ARM64 (Graviton, cheaper; the job's Python packages must be built for it)."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.architecture)
    error_message = "architecture must be X86_64 or ARM64."
  }
}

variable "maximum_cpu" {
  description = "Most vCPUs all workers of the application may hold at once, e.g. \"8 vCPU\": the cap on a job's size and cost."
  type        = string
  default     = "8 vCPU"

  validation {
    condition     = can(regex("^[1-9][0-9]{0,4} vCPU$", var.maximum_cpu))
    error_message = "maximum_cpu must be a whole number of vCPUs written like \"8 vCPU\"."
  }
}

variable "maximum_memory" {
  description = "Most memory all workers of the application may hold at once, e.g. \"32 GB\"."
  type        = string
  default     = "32 GB"

  validation {
    condition     = can(regex("^[1-9][0-9]{0,5} GB$", var.maximum_memory))
    error_message = "maximum_memory must be a whole number of gigabytes written like \"32 GB\"."
  }
}

variable "idle_timeout_minutes" {
  description = "Minutes without a job after which the application stops (it starts again on the next job)."
  type        = number
  default     = 15

  validation {
    condition     = var.idle_timeout_minutes >= 1 && var.idle_timeout_minutes <= 10080 && floor(var.idle_timeout_minutes) == var.idle_timeout_minutes
    error_message = "idle_timeout_minutes must be a whole number from 1 to 10080 (a week)."
  }
}

variable "artifact_bucket_name" {
  description = "The stack's artifact bucket: it holds the models, the batches, the job's code and its results."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.artifact_bucket_name))
    error_message = "artifact_bucket_name must be 3-63 lowercase letters, digits, dots or hyphens."
  }
}

variable "artifact_bucket_arn" {
  description = "ARN of the artifact bucket; the execution role reaches nothing else in S3."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.artifact_bucket_arn))
    error_message = "artifact_bucket_arn must be the ARN of a bucket, e.g. arn:aws:s3:::my-bucket (no key, no wildcard)."
  }
}

variable "model_artifacts_prefix" {
  description = "Key prefix of MLflow's artifacts (the tracking server's --artifacts-destination): the job reads the champion's files under it."
  type        = string
  default     = "mlflow/"

  validation {
    condition     = can(regex("^([A-Za-z0-9._-]+/)+$", var.model_artifacts_prefix))
    error_message = "model_artifacts_prefix must be path segments of letters, digits, dots, underscores or hyphens, each ending with a slash, e.g. mlflow/."
  }
}

variable "batch_prefix" {
  description = "Key prefix the job reads batches from (the monitor's inbox of the model), e.g. inbox/driftloop-model/."
  type        = string

  validation {
    condition     = can(regex("^([A-Za-z0-9._-]+/)+$", var.batch_prefix))
    error_message = "batch_prefix must be path segments of letters, digits, dots, underscores or hyphens, each ending with a slash, e.g. inbox/driftloop-model/."
  }
}

variable "results_prefix" {
  description = "The one key prefix the job writes: its batch profiles and predictions. It must not overlap a prefix the job reads."
  type        = string

  validation {
    condition     = can(regex("^([A-Za-z0-9._-]+/)+$", var.results_prefix))
    error_message = "results_prefix must be path segments of letters, digits, dots, underscores or hyphens, each ending with a slash, e.g. results/driftloop-model/."
  }
}

variable "code_prefix" {
  description = "Key prefix of the job's entry point and its packed Python environment, read-only to the job."
  type        = string
  default     = "spark/"

  validation {
    condition     = can(regex("^([A-Za-z0-9._-]+/)+$", var.code_prefix))
    error_message = "code_prefix must be path segments of letters, digits, dots, underscores or hyphens, each ending with a slash, e.g. spark/."
  }
}

variable "subnet_ids" {
  description = "Subnets to run the workers in. Empty (the default): EMR Serverless' own network, which reaches S3 and CloudWatch Logs; the job needs nothing inside the VPC."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for s in var.subnet_ids : can(regex("^subnet-[0-9a-f]+$", s))])
    error_message = "subnet_ids must be subnet ids such as subnet-0123456789abcdef0."
  }
}

variable "vpc_id" {
  description = "VPC of subnet_ids, for the workers' security group; required with subnet_ids."
  type        = string
  default     = null
}

variable "s3_endpoint_route_table_ids" {
  description = "Route tables of subnet_ids to give an S3 gateway endpoint (needed when they have no internet route). Empty: none is created."
  type        = list(string)
  default     = []
}

variable "log_retention_in_days" {
  description = "How long the job logs are kept in CloudWatch Logs."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_in_days)
    error_message = "log_retention_in_days must be one of the periods CloudWatch Logs offers, e.g. 30, 90, 365."
  }
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for the log group. Null uses CloudWatch Logs' own encryption."
  type        = string
  default     = null
}

variable "kms_key_arns" {
  description = "Customer-managed KMS keys the job must use to read and write the bucket, if any (the default aws/s3 key needs none)."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
