variable "identifier" {
  description = "RDS instance identifier; also the prefix of its subnet and parameter groups."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,62}$", var.identifier)) && !can(regex("--|-$", var.identifier))
    error_message = "identifier must start with a letter and hold only lowercase letters, digits and single hyphens."
  }
}

variable "engine_version" {
  description = "PostgreSQL major version; minor versions are applied automatically in the maintenance window."
  type        = string
  default     = "17"

  validation {
    condition     = can(regex("^1[4-9]$", var.engine_version))
    error_message = "engine_version must be a supported PostgreSQL major version (14 or newer), e.g. \"17\"."
  }
}

variable "instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.micro"

  validation {
    condition     = can(regex("^db\\.[a-z0-9]+\\.[a-z0-9]+$", var.instance_class))
    error_message = "instance_class must be an RDS class such as db.t4g.micro (note the db. prefix)."
  }
}

variable "allocated_storage" {
  description = "Initial storage in GiB (gp3)."
  type        = number
  default     = 20
}

variable "max_allocated_storage" {
  description = "Upper bound in GiB for storage autoscaling; 0 turns autoscaling off."
  type        = number
  default     = 100
}

variable "db_name" {
  description = "Database created with the instance; MLflow's backend store."
  type        = string
  default     = "mlflow"
}

variable "username" {
  description = "Master user name. Its password is generated and kept in Secrets Manager by RDS."
  type        = string
  default     = "driftloop"
}

variable "port" {
  description = "PostgreSQL port."
  type        = number
  default     = 5432
}

variable "subnet_ids" {
  description = "Private subnets in at least two AZs."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "RDS needs subnets in at least two availability zones."
  }
}

variable "vpc_security_group_ids" {
  description = "Security groups of the instance (the network module's database group)."
  type        = list(string)
}

variable "multi_az" {
  description = "Run a standby in a second AZ (doubles the instance cost)."
  type        = bool
  default     = false
}

variable "backup_retention_period" {
  description = "Days of automated backups."
  type        = number
  default     = 7

  validation {
    condition     = var.backup_retention_period >= 1 && var.backup_retention_period <= 35
    error_message = "backup_retention_period must be between 1 and 35 days; 0 would turn backups off."
  }
}

variable "deletion_protection" {
  description = "Refuse to delete the instance until this is switched off."
  type        = bool
  default     = true
}

variable "skip_final_snapshot" {
  description = "Delete without a final snapshot. Off, so a destroy keeps one."
  type        = bool
  default     = false
}

variable "ca_cert_identifier" {
  description = "Certificate authority of the server certificate."
  type        = string
  default     = "rds-ca-rsa2048-g1"
}

variable "enabled_cloudwatch_logs_exports" {
  description = "PostgreSQL logs exported to CloudWatch Logs."
  type        = list(string)
  default     = ["postgresql", "upgrade"]
}

variable "monitoring_interval" {
  description = "Enhanced Monitoring interval in seconds (0 turns it off)."
  type        = number
  default     = 60

  validation {
    condition     = contains([0, 1, 5, 10, 15, 30, 60], var.monitoring_interval)
    error_message = "monitoring_interval must be one of 0, 1, 5, 10, 15, 30, 60."
  }
}

variable "performance_insights_enabled" {
  description = "Turn on Performance Insights (not offered on every micro/small class)."
  type        = bool
  default     = false
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for storage and Performance Insights. Null uses the AWS-managed aws/rds key."
  type        = string
  default     = null
}

variable "master_user_secret_kms_key_id" {
  description = "Customer-managed KMS key for the master user secret. Null uses aws/secretsmanager."
  type        = string
  default     = null
}

variable "apply_immediately" {
  description = "Apply changes now instead of in the next maintenance window."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
