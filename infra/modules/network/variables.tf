variable "name" {
  description = "Name prefix for every resource of the stack (lowercase letters, digits and hyphens)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name))
    error_message = "name must be 3-32 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "create_vpc" {
  description = "Create a new VPC with public and private subnets. Set to false to reuse vpc_id and the subnet ids."
  type        = bool
  default     = true
}

variable "vpc_cidr" {
  description = "IPv4 CIDR of the new VPC (between /16 and /24). Ignored when create_vpc is false."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition = (
      can(cidrhost(var.vpc_cidr, 0)) &&
      tonumber(split("/", var.vpc_cidr)[1]) >= 16 &&
      tonumber(split("/", var.vpc_cidr)[1]) <= 24
    )
    error_message = "vpc_cidr must be a valid IPv4 CIDR with a prefix between /16 and /24, e.g. 10.40.0.0/16."
  }
}

variable "az_count" {
  description = "Number of availability zones to spread the subnets over (RDS needs at least two)."
  type        = number
  default     = 2

  validation {
    condition     = var.az_count >= 2 && var.az_count <= 4
    error_message = "az_count must be between 2 and 4."
  }
}

variable "availability_zones" {
  description = "Zones for the subnets, e.g. [\"us-east-1a\", \"us-east-1b\"]. Empty takes the first az_count standard zones."
  type        = list(string)
  default     = []
}

variable "vpc_id" {
  description = "Existing VPC to use when create_vpc is false."
  type        = string
  default     = null
}

variable "public_subnet_ids" {
  description = "Existing public subnets (with a route to an internet gateway) for the host when create_vpc is false."
  type        = list(string)
  default     = []
}

variable "private_subnet_ids" {
  description = "Existing private subnets in at least two AZs for the database when create_vpc is false."
  type        = list(string)
  default     = []
}

variable "allowed_cidrs" {
  description = "IPv4 CIDRs allowed to reach the MLflow, Grafana and Adminer ports of the host. Empty means nobody."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.allowed_cidrs : can(regex("^[0-9]{1,3}(\\.[0-9]{1,3}){3}/[0-9]{1,2}$", c)) && can(cidrhost(c, 0))])
    error_message = "Every entry of allowed_cidrs must be a valid IPv4 CIDR, e.g. 203.0.113.10/32 (the rules are IPv4 only)."
  }

  # A /16 is 65,536 addresses, a whole organisation's or provider's block: anything wider is a share of the
  # internet, not a list of people (0.0.0.0/0, or 0.0.0.0/1 + 128.0.0.0/1, which cover it all). The private
  # ranges of RFC 1918 (10/8, 172.16/12, 192.168/16) are no one's on the internet and may be wider.
  validation {
    condition = alltrue([for c in var.allowed_cidrs : try(
      tonumber(split("/", c)[1]) >= 16 ||
      (split(".", cidrhost(c, 0))[0] == "10" && tonumber(split("/", c)[1]) >= 8) ||
      (split(".", cidrhost(c, 0))[0] == "172" && floor(tonumber(split(".", cidrhost(c, 0))[1]) / 16) == 1 && tonumber(split("/", c)[1]) >= 12),
      false,
    )])
    error_message = "allowed_cidrs must be /16 or narrower (a VPN's or office's addresses, not a share of the internet such as 0.0.0.0/0 or 0.0.0.0/1 + 128.0.0.0/1); only the private ranges 10.0.0.0/8 and 172.16.0.0/12 may be wider."
  }

  # Each CIDR takes one ingress rule per service (three), and a security group holds 60 inbound rules by default.
  validation {
    condition     = length(var.allowed_cidrs) <= 20
    error_message = "allowed_cidrs may list at most 20 CIDRs: each takes one rule per service, and a security group holds 60 inbound rules by default."
  }
}

variable "service_ports" {
  description = "TCP ports the host serves to allowed_cidrs, by service."
  type        = map(number)
  default = {
    mlflow  = 5000
    grafana = 3000
    adminer = 8080
  }
}

variable "db_port" {
  description = "PostgreSQL port the host may reach on the database."
  type        = number
  default     = 5432
}

variable "create_flow_log" {
  description = "Record the VPC's rejected and accepted traffic in CloudWatch Logs (only for a VPC this module creates)."
  type        = bool
  default     = true
}

variable "flow_log_retention_in_days" {
  description = "How long the VPC flow log is kept."
  type        = number
  default     = 365
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for the flow log group. Null uses the CloudWatch Logs service key."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "create_nat_gateway" {
  description = "Create host subnets whose outbound traffic goes through a NAT gateway, so the host needs no public address (only for a VPC this module creates)."
  type        = bool
  default     = true
}

variable "host_subnet_ids" {
  description = "Existing subnets with a route to a NAT gateway for a host without a public address, when create_vpc is false."
  type        = list(string)
  default     = []
}
