variable "region" {
  description = "AWS region of the stack."
  type        = string
  default     = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region code such as us-east-1."
  }
}

variable "name" {
  description = "Name of the stack; prefix of its resources."
  type        = string
  default     = "driftloop"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name))
    error_message = "name must be 3-32 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "tags" {
  description = "Tags added to every resource, on top of Project, Stack and ManagedBy."
  type        = map(string)
  default     = {}
}

variable "create_vpc" {
  description = "Create a VPC for the stack; false reuses vpc_id and the subnet ids below."
  type        = bool
  default     = true
}

variable "vpc_cidr" {
  description = "CIDR of the new VPC."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0))
    error_message = "vpc_cidr must be a valid IPv4 CIDR such as 10.40.0.0/16."
  }
}

variable "vpc_id" {
  description = "Existing VPC, when create_vpc is false."
  type        = string
  default     = null
}

variable "public_subnet_ids" {
  description = "Existing public subnets, when create_vpc is false."
  type        = list(string)
  default     = []
}

variable "host_subnet_ids" {
  description = "Existing subnets with a route to a NAT gateway, for the host, when create_vpc is false and host_public_ip is off."
  type        = list(string)
  default     = []
}

variable "private_subnet_ids" {
  description = "Existing private subnets in two or more AZs, when create_vpc is false."
  type        = list(string)
  default     = []
}

variable "artifact_bucket_name" {
  description = "Artifact bucket name; the Makefile passes ARTIFACT_BUCKET. Bucket names are global on AWS."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.artifact_bucket_name))
    error_message = "artifact_bucket_name must be 3-63 lowercase letters, digits, dots or hyphens."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Days old artifact versions are kept after being overwritten or deleted."
  type        = number
  default     = 30
}

variable "raw_data_retention_days" {
  description = "Days the raw rows are kept: batches under the inbox, the prediction log and the Spark results expire after it (their last version goes noncurrent_version_expiration_days later). Late labels and retraining reach back this far at most."
  type        = number
  default     = 365

  validation {
    condition     = var.raw_data_retention_days >= 1 && floor(var.raw_data_retention_days) == var.raw_data_retention_days
    error_message = "raw_data_retention_days must be a whole number of days, at least 1."
  }
}

variable "host_read_prefixes" {
  description = "Key prefixes of the artifact bucket the host may read besides its inbox, MLflow's artifacts and the prediction log: where you upload labelled training data and late labels."
  type        = list(string)
  default     = ["training/", "labels/"]

  validation {
    condition     = alltrue([for p in var.host_read_prefixes : can(regex("^([A-Za-z0-9._-]+/)+$", p))])
    error_message = "host_read_prefixes must be path segments of letters, digits, dots, underscores or hyphens, each ending with a slash, e.g. training/."
  }
}

variable "instance_type" {
  description = "EC2 type of the tracking host."
  type        = string
  default     = "t3.medium"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", var.instance_type)) && !startswith(var.instance_type, "db.")
    error_message = "instance_type must be an EC2 type such as t3.medium, without a db. prefix."
  }
}

variable "db_instance_class" {
  description = "RDS class of the metadata database."
  type        = string
  default     = "db.t4g.micro"

  validation {
    condition     = startswith(var.db_instance_class, "db.")
    error_message = "db_instance_class must be an RDS class such as db.t4g.micro (with the db. prefix)."
  }
}

variable "db_engine_version" {
  description = "PostgreSQL major version."
  type        = string
  default     = "17"
}

variable "db_allocated_storage" {
  description = "Initial database storage in GiB."
  type        = number
  default     = 20

  validation {
    condition     = var.db_allocated_storage >= 20
    error_message = "db_allocated_storage must be at least 20 GiB for gp3."
  }
}

variable "db_deletion_protection" {
  description = "Protect the database from deletion; switch off (and apply) before infra-destroy."
  type        = bool
  default     = true
}

variable "db_backup_retention_period" {
  description = "Days of automated database backups."
  type        = number
  default     = 7
}

variable "db_multi_az" {
  description = "Run a standby database in a second AZ."
  type        = bool
  default     = false
}

variable "project_git_url" {
  description = "HTTPS URL of this project's repository, deployed on the host."
  type        = string

  validation {
    condition     = startswith(var.project_git_url, "https://")
    error_message = "project_git_url must be an https:// URL."
  }
}

variable "project_git_commit" {
  description = "Commit of project_git_url to deploy (40 hex digits, git rev-parse HEAD); the host installs its requirements/runtime.lock with --require-hashes."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-f]{40}$", var.project_git_commit))
    error_message = "project_git_commit must be a full commit id: 40 lowercase hex digits, not a branch or a tag."
  }
}

variable "models" {
  description = "The models the host trains and monitors, by registered-model name (each one's inbox is s3://BUCKET/<inbox_prefix><name>/). schema: optional s3:// URI of its feature schema (JSON), passed to its first training; retrain: optional mode off, challenger or auto (else PIPELINE_RETRAIN); policy: optional values set with `pipeline configure --set NAME=VALUE`; bootstrap_training_data: optional s3:// URI of labelled training data the first-champion unit trains it on when the registry has no champion (else train it by hand, see the README)."
  type = map(object({
    schema                  = optional(string)
    retrain                 = optional(string)
    policy                  = optional(map(string), {})
    bootstrap_training_data = optional(string)
  }))
  default = { "driftloop-model" = {} }

  validation {
    condition     = length(var.models) >= 1 && length(var.models) <= 50
    error_message = "models must name 1 to 50 models."
  }

  validation {
    condition     = alltrue([for name in keys(var.models) : can(regex("^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$", name))])
    error_message = "Each name in models must be 1-63 letters, digits, dots, underscores or hyphens, starting with a letter or digit (it is also an S3 prefix)."
  }

  validation {
    condition = alltrue([for m in values(var.models) : alltrue([
      for uri in [m.schema, m.bootstrap_training_data] : uri == null || can(regex("^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[A-Za-z0-9!_.*()/=+-]+$", uri))
    ])])
    error_message = "schema and bootstrap_training_data in models must be s3://BUCKET/KEY URIs (no spaces, quotes or dollar signs)."
  }

  validation {
    condition     = alltrue([for m in values(var.models) : m.retrain == null || contains(["off", "challenger", "auto"], coalesce(m.retrain, "off"))])
    error_message = "retrain in models must be off, challenger or auto."
  }

  validation {
    condition = alltrue([for m in values(var.models) : alltrue([
      for k, v in m.policy : contains(["drift_threshold", "false_alarm_rate", "column_drift_threshold", "drifted_share_threshold", "auc_tolerance", "min_rows_for_auc", "prior_tolerance", "prior_z", "cooldown_batches", "label_retries", "refresh_fraction", "min_change_rows", "window_rows", "multivariate_drift", "multivariate_threshold", "multivariate_sample_rows", "promotion_min_gain", "promotion_z"], k) && can(regex("^[A-Za-z0-9._-]{1,64}$", v))
    ])])
    error_message = "policy in models maps the names `pipeline configure --set` takes (e.g. drift_threshold, cooldown_batches) to plain values (letters, digits, dots, underscores or hyphens, e.g. 0.2)."
  }
}

variable "inbox_prefix" {
  description = "Key prefix of the monitor's root inbox in the artifact bucket (each model's inbox is s3://BUCKET/<inbox_prefix><name>/)."
  type        = string
  default     = "inbox/"

  validation {
    condition     = can(regex("^([A-Za-z0-9._-]+/)+$", var.inbox_prefix))
    error_message = "inbox_prefix must be path segments each ending with a slash, e.g. inbox/."
  }
}

variable "monitor_schedule" {
  description = "systemd OnCalendar expression of the monitor timer (pipeline monitor --inbox)."
  type        = string
  default     = "hourly"
}

variable "enable_basic_auth" {
  description = "Put MLflow's basic-auth app in front of the tracking server (admin and monitor users generated on the host)."
  type        = bool
  default     = true
}

variable "host_public_ip" {
  description = "Give the host a public IPv4 address for its egress instead of a NAT gateway (about $33 a month less). Nothing listens on it: its security group admits no one and the services bind 127.0.0.1."
  type        = bool
  default     = false
}

variable "key_name" {
  description = "EC2 key pair for SSH; null (default) leaves SSH off in favour of SSM Session Manager."
  type        = string
  default     = null
}

variable "enable_spark" {
  description = "Create the Spark runner (EMR Serverless application, execution role, log group). Off: nothing of it exists."
  type        = bool
  default     = false
}

variable "spark_release_label" {
  description = "EMR release of the Spark runner (emr-7.x)."
  type        = string
  default     = "emr-7.5.0"
}

variable "spark_maximum_cpu" {
  description = "Most vCPUs the Spark runner may hold at once, e.g. \"8 vCPU\"."
  type        = string
  default     = "8 vCPU"
}

variable "spark_maximum_memory" {
  description = "Most memory the Spark runner may hold at once, e.g. \"32 GB\"."
  type        = string
  default     = "32 GB"
}

variable "spark_idle_timeout_minutes" {
  description = "Minutes without a job after which the Spark runner stops."
  type        = number
  default     = 15
}

variable "spark_in_vpc" {
  description = "Run the Spark workers in the private subnets (with an S3 gateway endpoint) instead of EMR Serverless' own network."
  type        = bool
  default     = false
}

variable "notification_email" {
  description = "Email address subscribed to the notification topic (it must confirm the subscription); null subscribes nobody."
  type        = string
  default     = null

  validation {
    condition     = var.notification_email == null || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.notification_email))
    error_message = "notification_email must be an email address, or null."
  }
}

variable "heartbeat_hours" {
  description = "A CloudWatch alarm per model notifies the notification topic when the monitor recorded no batch for it in this many hours, and again when batches resume. Null: no heartbeat."
  type        = number
  default     = 26

  validation {
    condition     = var.heartbeat_hours == null || (try(floor(var.heartbeat_hours) == var.heartbeat_hours, false) && try(var.heartbeat_hours >= 1 && var.heartbeat_hours <= 168, false))
    error_message = "heartbeat_hours must be a whole number of hours from 1 to 168, or null."
  }
}
