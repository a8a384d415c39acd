variable "name" {
  description = "Name of the host; prefix of its IAM role and secrets."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name))
    error_message = "name must be 3-32 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "instance_type" {
  description = "EC2 instance type. MLflow, Grafana and a retraining run share it."
  type        = string
  default     = "t3.medium"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", var.instance_type)) && !startswith(var.instance_type, "db.")
    error_message = "instance_type must be an EC2 type such as t3.medium (an RDS class like db.t4g.micro does not fit here)."
  }
}

variable "ami_id" {
  description = "AMI to boot. Null takes the latest Ubuntu 24.04 LTS from ami_ssm_parameter (cloud-init expects apt)."
  type        = string
  default     = null
}

variable "ami_ssm_parameter" {
  description = "Public SSM parameter holding the default AMI id."
  type        = string
  default     = "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id"
}

variable "subnet_id" {
  description = "Subnet to run the host in: one with a route to a NAT gateway, or a public one with associate_public_ip_address."
  type        = string
}

variable "security_group_ids" {
  description = "Security groups of the host (the network module's host group)."
  type        = list(string)
}

variable "associate_public_ip_address" {
  description = "Give the host a public IPv4 address for its egress (in a public subnet, instead of a NAT gateway). Nothing listens on it: the services bind 127.0.0.1."
  type        = bool
  default     = false
}

variable "key_name" {
  description = "EC2 key pair for SSH. Null (the default) means no key: use SSM Session Manager instead."
  type        = string
  default     = null
}

variable "root_volume_size" {
  description = "Size of the encrypted gp3 root volume in GiB (OS, Python environment, container images)."
  type        = number
  default     = 30

  validation {
    condition     = var.root_volume_size >= 16
    error_message = "root_volume_size must be at least 16 GiB."
  }
}

variable "enable_detailed_monitoring" {
  description = "One-minute CloudWatch metrics for the instance."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for the root volume and the host-generated secrets. Null uses AWS-managed keys."
  type        = string
  default     = null
}

variable "kms_key_arns" {
  description = "Customer-managed KMS keys the host must use to read the bucket or the database secret, if any."
  type        = list(string)
  default     = []
}

variable "artifact_bucket_name" {
  description = "Artifact bucket MLflow proxies to and the pipeline writes to."
  type        = string
}

variable "artifact_bucket_arn" {
  description = "ARN of the artifact bucket; the host's role is limited to it."
  type        = string
}

variable "db_host" {
  description = "Host name of the PostgreSQL database."
  type        = string
}

variable "db_port" {
  description = "Port of the PostgreSQL database."
  type        = number
  default     = 5432
}

variable "db_secret_arn" {
  description = "The RDS-managed master secret (user and password). Only the host's setup uses it (hostctl init-db, init-db-roles, rotate-db-password), reading it afresh each time; the services connect as roles of their own."
  type        = string
}

variable "db_sslmode" {
  description = "libpq sslmode of every connection to the database (MLflow, the monitor, Grafana, hostctl). verify-full checks the server's certificate against db_ca_bundle_url's bundle and its host name."
  type        = string
  default     = "verify-full"

  validation {
    condition     = contains(["verify-full", "verify-ca", "require"], var.db_sslmode)
    error_message = "db_sslmode must be verify-full (the default), verify-ca or require: RDS only accepts TLS."
  }
}

variable "db_ca_bundle_url" {
  description = "Where the host fetches, on first boot, the CA bundle that signs the database's certificate (HTTPS; the RDS global bundle by default)."
  type        = string
  default     = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"

  validation {
    condition     = can(regex("^(https|file)://", var.db_ca_bundle_url))
    error_message = "db_ca_bundle_url must be an https:// URL (file:// for a bundle already on the image)."
  }
}

variable "db_ca_bundle_sha256" {
  description = "SHA-256 of the CA bundle, checked on first boot when set (pin it to the bundle you reviewed: sha256sum global-bundle.pem). Empty: the bundle is trusted as HTTPS delivers it."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^([0-9a-f]{64})?$", var.db_ca_bundle_sha256))
    error_message = "db_ca_bundle_sha256 must be empty or 64 lower-case hex digits."
  }
}

variable "db_password_rotation_schedule" {
  description = "systemd OnCalendar= of the rotation of the monitor's database password (hostctl rotate-db-password monitor)."
  type        = string
  default     = "monthly"
}

variable "mlflow_db_name" {
  description = "Database of MLflow's backend store."
  type        = string
  default     = "mlflow"
}

variable "metrics_db_name" {
  description = "Database of the pipeline's drift metrics (read by Grafana); created on first boot."
  type        = string
  default     = "metrics"
}

variable "auth_db_name" {
  description = "Database of MLflow's basic-auth users; created on first boot when enable_basic_auth is on."
  type        = string
  default     = "mlflow_auth"
}

variable "enable_basic_auth" {
  description = "Run MLflow with --app-name basic-auth; its admin and the monitor's user are generated on the host into Secrets Manager."
  type        = bool
  default     = true
}

variable "project_git_url" {
  description = "HTTPS URL of the project's git repository, cloned to /opt/driftloop/src (holds docker/compose.yaml)."
  type        = string

  validation {
    condition     = can(regex("^https://[^\\s\"'$]+$", var.project_git_url))
    error_message = "project_git_url must be an https:// URL (the host's egress allows HTTPS, not SSH)."
  }
}

variable "project_git_commit" {
  description = "Commit of project_git_url to deploy, as its full 40-hex id: the host checks it out, checks HEAD is that commit, and installs its requirements/runtime.lock with --require-hashes, then the project with --no-deps."
  type        = string

  # A commit id, never a branch or a tag (either could move under the host); it reaches a shell and git's command line.
  validation {
    condition     = can(regex("^[0-9a-f]{40}$", var.project_git_commit))
    error_message = "project_git_commit must be a full commit id: 40 lowercase hex digits (git rev-parse HEAD), not a branch or a tag."
  }
}

variable "compose_file" {
  description = "Compose file of the project, relative to the clone, that defines the grafana service."
  type        = string
  default     = "docker/compose.yaml"
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
  description = "Key prefix of the inbox in the artifact bucket; the root inbox: each model's batches go to s3://BUCKET/<inbox_prefix><name>/."
  type        = string
  default     = "inbox/"

  validation {
    condition     = can(regex("^([A-Za-z0-9._-]+/)+$", var.inbox_prefix))
    error_message = "inbox_prefix must be one or more path segments of letters, digits, dots, underscores or hyphens, each ending with a slash, e.g. inbox/."
  }
}

variable "monitor_schedule" {
  description = "systemd OnCalendar expression for `pipeline monitor --inbox`, e.g. hourly, daily or *-*-* 06:00:00."
  type        = string
  default     = "hourly"

  validation {
    condition     = can(regex("^[A-Za-z0-9*:.,/~ -]+$", var.monitor_schedule))
    error_message = "monitor_schedule must be a systemd OnCalendar expression (letters, digits, spaces and * : . , / ~ -)."
  }
}

variable "monitor_timeout" {
  description = "systemd TimeoutStartSec= of a monitor run: a run still going after it is stopped and counts as failed (e.g. 2h, 90min)."
  type        = string
  default     = "2h"

  validation {
    condition     = can(regex("^([0-9]+(us|ms|s|sec|min|m|h|d|w)? ?)+$", var.monitor_timeout)) && !can(regex("^0+$", var.monitor_timeout))
    error_message = "monitor_timeout must be a positive systemd time span such as 2h, 90min or 1h 30min."
  }
}

variable "monitor_memory_max" {
  description = "systemd MemoryMax= of a monitor run (e.g. 3G on a 4 GiB host, or a percentage such as 75%); a run above it is killed and counts as failed."
  type        = string
  default     = "3G"

  validation {
    condition     = can(regex("^([1-9][0-9]*[KMGT]?|[1-9][0-9]?%|100%|infinity)$", var.monitor_memory_max))
    error_message = "monitor_memory_max must be bytes with an optional K, M, G or T suffix (e.g. 3G), a percentage (e.g. 75%) or infinity."
  }
}

variable "notify_sns_topic_arn" {
  description = "SNS topic the host's pipeline publishes its notifications to (PIPELINE_NOTIFY_SNS_TOPIC); the role may publish to it alone. Null: no topic."
  type        = string
  default     = null

  validation {
    condition     = var.notify_sns_topic_arn == null || can(regex("^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$", var.notify_sns_topic_arn))
    error_message = "notify_sns_topic_arn must be the ARN of an SNS standard topic, or null."
  }
}

variable "heartbeat_hours" {
  description = "A CloudWatch alarm per model fires when the monitor recorded no batch for it in this many hours (its metric BatchesRecorded, missing data counting as breaching), and notifies notify_sns_topic_arn when it opens and when it clears. Null: no heartbeat metric and no alarm."
  type        = number
  default     = 26

  validation {
    condition     = var.heartbeat_hours == null || (try(floor(var.heartbeat_hours) == var.heartbeat_hours, false) && try(var.heartbeat_hours >= 1 && var.heartbeat_hours <= 168, false))
    error_message = "heartbeat_hours must be a whole number of hours from 1 to 168 (CloudWatch evaluates at most 7 days of hourly periods), or null."
  }
}

variable "service_ports" {
  description = "Ports MLflow and Grafana listen on, on the host's 127.0.0.1 (reached through SSM port forwarding)."
  type        = map(number)
  default = {
    mlflow  = 5000
    grafana = 3000
  }

  validation {
    condition     = alltrue([for k in ["mlflow", "grafana"] : contains(keys(var.service_ports), k)]) && alltrue([for p in values(var.service_ports) : p >= 1024 && p <= 65535])
    error_message = "service_ports must name the mlflow and grafana ports, each between 1024 and 65535."
  }
}

variable "extra_allowed_hosts" {
  description = "More Host header values MLflow accepts besides localhost:* and 127.0.0.1:* (what port forwarding sends): a host name or IPv4 address, with an optional :port."
  type        = list(string)
  default     = []

  # MLflow's --allowed-hosts guards against DNS rebinding: a * (or any pattern) switches that off, and a comma
  # or a space would smuggle in more entries. Names only: no scheme, no path, no wildcard.
  validation {
    condition = alltrue([
      for host in var.extra_allowed_hosts :
      can(regex("^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*(:[0-9]{1,5})?$", host)) && length(host) <= 259
    ])
    error_message = "extra_allowed_hosts must be host names or IPv4 addresses with an optional :port (e.g. mlflow.example.org or mlflow.example.org:5000): no *, wildcard, scheme, path, comma or space."
  }
}

variable "read_prefixes" {
  description = "Key prefixes of the artifact bucket the host may read besides its inbox, MLflow's artifacts and the prediction log (labelled training data, late labels, Spark results). It writes under mlflow/ and predictions/ only."
  type        = list(string)
  default     = ["training/"]

  validation {
    condition     = alltrue([for p in var.read_prefixes : can(regex("^([A-Za-z0-9._-]+/)+$", p))])
    error_message = "read_prefixes must be path segments of letters, digits, dots, underscores or hyphens, each ending with a slash, e.g. training/ (an empty prefix would be the whole bucket)."
  }
}

variable "secret_recovery_window_in_days" {
  description = "Days a deleted host-generated secret can still be restored (0 deletes at once)."
  type        = number
  default     = 7
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
