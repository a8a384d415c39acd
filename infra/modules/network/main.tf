data "aws_region" "current" {}

data "aws_partition" "current" {}

data "aws_caller_identity" "current" {}

# Standard zones only, by name: "<region>?" matches us-east-1a..f but not Local or Wavelength Zones
# (us-east-1-bos-1a), which would otherwise sort first and take the subnets.
data "aws_availability_zones" "available" {
  state = "available"

  filter {
    name   = "zone-name"
    values = length(var.availability_zones) > 0 ? var.availability_zones : ["${data.aws_region.current.name}?"]
  }

  lifecycle {
    # Checked as soon as the zones are read, before any subnet is planned: a region (or an
    # availability_zones list) with fewer zones than az_count fails here, not with a slice error.
    postcondition {
      condition     = !var.create_vpc || length(self.names) >= var.az_count
      error_message = "Only ${length(self.names)} availability zone(s) match (${join(", ", sort(self.names))}) in ${data.aws_region.current.name}, fewer than az_count = ${var.az_count}: name more zones in availability_zones or lower az_count."
    }
  }
}

locals {
  azs = slice(sort(data.aws_availability_zones.available.names), 0, min(var.az_count, length(data.aws_availability_zones.available.names)))

  vpc_id             = var.create_vpc ? aws_vpc.this[0].id : var.vpc_id
  public_subnet_ids  = var.create_vpc ? aws_subnet.public[*].id : var.public_subnet_ids
  private_subnet_ids = var.create_vpc ? aws_subnet.private[*].id : var.private_subnet_ids

  # One ingress rule per (service, CIDR) pair, so each carries its own description.
  host_ingress = {
    for pair in setproduct(keys(var.service_ports), var.allowed_cidrs) :
    "${pair[0]}-${pair[1]}" => { service = pair[0], cidr = pair[1], port = var.service_ports[pair[0]] }
  }
}

################################################################################
# VPC: public subnets for the host, private subnets (no internet route) for RDS
################################################################################

resource "aws_vpc" "this" {
  count = var.create_vpc ? 1 : 0

  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true # the host's public DNS name is MLflow's allowed host

  tags = merge(var.tags, { Name = var.name })
}

# Take over the default security group and leave it without rules, so nothing can use it by accident.
resource "aws_default_security_group" "this" {
  count = var.create_vpc ? 1 : 0

  vpc_id = aws_vpc.this[0].id

  tags = merge(var.tags, { Name = "${var.name}-default-deny" })
}

resource "aws_internet_gateway" "this" {
  count = var.create_vpc ? 1 : 0

  vpc_id = aws_vpc.this[0].id

  tags = merge(var.tags, { Name = var.name })
}

resource "aws_subnet" "public" {
  count = var.create_vpc ? var.az_count : 0

  vpc_id                  = aws_vpc.this[0].id
  availability_zone       = local.azs[count.index]
  cidr_block              = cidrsubnet(var.vpc_cidr, 4, count.index)
  map_public_ip_on_launch = false # the host asks for its public address explicitly

  tags = merge(var.tags, { Name = "${var.name}-public-${local.azs[count.index]}", Tier = "public" })
}

resource "aws_subnet" "private" {
  count = var.create_vpc ? var.az_count : 0

  vpc_id            = aws_vpc.this[0].id
  availability_zone = local.azs[count.index]
  cidr_block        = cidrsubnet(var.vpc_cidr, 4, count.index + 8)

  tags = merge(var.tags, { Name = "${var.name}-private-${local.azs[count.index]}", Tier = "private" })
}

resource "aws_route_table" "public" {
  count = var.create_vpc ? 1 : 0

  vpc_id = aws_vpc.this[0].id

  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.this[0].id
  }

  tags = merge(var.tags, { Name = "${var.name}-public" })
}

resource "aws_route_table_association" "public" {
  count = var.create_vpc ? var.az_count : 0

  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public[0].id
}

# Private subnets keep only the implicit local route: the database has no path to the internet.
resource "aws_route_table" "private" {
  count = var.create_vpc ? 1 : 0

  vpc_id = aws_vpc.this[0].id

  tags = merge(var.tags, { Name = "${var.name}-private" })
}

resource "aws_route_table_association" "private" {
  count = var.create_vpc ? var.az_count : 0

  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private[0].id
}

################################################################################
# Flow log
################################################################################

resource "aws_cloudwatch_log_group" "flow_log" {
  #checkov:skip=CKV_AWS_158:Encrypted by CloudWatch Logs' own key by default; pass kms_key_arn for a customer-managed key.
  count = var.create_vpc && var.create_flow_log ? 1 : 0

  name              = "/vpc/${var.name}/flow-log"
  retention_in_days = var.flow_log_retention_in_days
  kms_key_id        = var.kms_key_arn

  tags = var.tags
}

data "aws_iam_policy_document" "flow_log_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }

    # Only flow logs of this account may take the role (no confused deputy).
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${data.aws_partition.current.partition}:ec2:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:vpc-flow-log/*"]
    }
  }
}

data "aws_iam_policy_document" "flow_log" {
  count = var.create_vpc && var.create_flow_log ? 1 : 0

  statement {
    actions = [
      "logs:CreateLogStream",
      "logs:PutLogEvents",
      "logs:DescribeLogStreams",
    ]
    resources = ["${aws_cloudwatch_log_group.flow_log[0].arn}:*"]
  }
}

resource "aws_iam_role" "flow_log" {
  count = var.create_vpc && var.create_flow_log ? 1 : 0

  # IAM allows a name_prefix of at most 38 characters; 24 + "-flow-log-" keeps to 34 for any valid name.
  name_prefix        = "${substr(var.name, 0, 24)}-flow-log-"
  assume_role_policy = data.aws_iam_policy_document.flow_log_assume.json

  tags = var.tags
}

resource "aws_iam_role_policy" "flow_log" {
  count = var.create_vpc && var.create_flow_log ? 1 : 0

  name   = "write-flow-log"
  role   = aws_iam_role.flow_log[0].id
  policy = data.aws_iam_policy_document.flow_log[0].json
}

resource "aws_flow_log" "this" {
  count = var.create_vpc && var.create_flow_log ? 1 : 0

  vpc_id          = aws_vpc.this[0].id
  traffic_type    = "ALL"
  log_destination = aws_cloudwatch_log_group.flow_log[0].arn
  iam_role_arn    = aws_iam_role.flow_log[0].arn

  tags = merge(var.tags, { Name = var.name })
}

################################################################################
# Security groups
################################################################################

resource "aws_security_group" "host" {
  #checkov:skip=CKV2_AWS_5:Attached to the instance in the tracking_host module through the host_security_group_id output.
  name_prefix = "${var.name}-host-"
  description = "Tracking host: MLflow, Grafana and Adminer from allowed_cidrs only"
  vpc_id      = local.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-host" })

  lifecycle {
    create_before_destroy = true

    precondition {
      condition     = var.create_vpc || (var.vpc_id != null && length(var.public_subnet_ids) > 0 && length(var.private_subnet_ids) >= 2)
      error_message = "With create_vpc = false, set vpc_id, public_subnet_ids and at least two private_subnet_ids."
    }
  }
}

resource "aws_vpc_security_group_ingress_rule" "host" {
  for_each = local.host_ingress

  security_group_id = aws_security_group.host.id
  description       = "${each.value.service} from ${each.value.cidr}"
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
  cidr_ipv4         = each.value.cidr

  tags = var.tags
}

# Outbound from the host: HTTPS (AWS APIs incl. SSM, PyPI, git, container images), HTTP (OS package
# mirrors) and PostgreSQL to the database's group only.
resource "aws_vpc_security_group_egress_rule" "host_https" {
  security_group_id = aws_security_group.host.id
  description       = "HTTPS to AWS APIs, package indexes and container registries"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"

  tags = var.tags
}

resource "aws_vpc_security_group_egress_rule" "host_http" {
  security_group_id = aws_security_group.host.id
  description       = "HTTP to the OS package mirrors"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv4         = "0.0.0.0/0"

  tags = var.tags
}

resource "aws_vpc_security_group_egress_rule" "host_db" {
  security_group_id            = aws_security_group.host.id
  description                  = "PostgreSQL to the metadata database"
  ip_protocol                  = "tcp"
  from_port                    = var.db_port
  to_port                      = var.db_port
  referenced_security_group_id = aws_security_group.db.id

  tags = var.tags
}

resource "aws_security_group" "db" {
  #checkov:skip=CKV2_AWS_5:Attached to the RDS instance in the metadata_db module through the db_security_group_id output.
  name_prefix = "${var.name}-db-"
  description = "Metadata database: PostgreSQL from the tracking host only, no egress"
  vpc_id      = local.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-db" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "db_from_host" {
  security_group_id            = aws_security_group.db.id
  description                  = "PostgreSQL from the tracking host"
  ip_protocol                  = "tcp"
  from_port                    = var.db_port
  to_port                      = var.db_port
  referenced_security_group_id = aws_security_group.host.id

  tags = var.tags
}

################################################################################
# Egress of a host without a public address: host subnets routed through a NAT gateway
################################################################################

resource "aws_eip" "nat" {
  count = var.create_vpc && var.create_nat_gateway ? 1 : 0

  domain = "vpc"

  tags = merge(var.tags, { Name = "${var.name}-nat" })

  depends_on = [aws_internet_gateway.this]
}

resource "aws_nat_gateway" "this" {
  count = var.create_vpc && var.create_nat_gateway ? 1 : 0

  allocation_id = aws_eip.nat[0].id
  subnet_id     = aws_subnet.public[0].id

  tags = merge(var.tags, { Name = var.name })

  depends_on = [aws_internet_gateway.this]
}

# Between the public (netnum 0-3) and the private (8-11) subnets; outbound only, through the NAT gateway.
resource "aws_subnet" "host" {
  count = var.create_vpc && var.create_nat_gateway ? var.az_count : 0

  vpc_id            = aws_vpc.this[0].id
  availability_zone = local.azs[count.index]
  cidr_block        = cidrsubnet(var.vpc_cidr, 4, count.index + 4)

  tags = merge(var.tags, { Name = "${var.name}-host-${local.azs[count.index]}", Tier = "host" })
}

resource "aws_route_table" "host" {
  count = var.create_vpc && var.create_nat_gateway ? 1 : 0

  vpc_id = aws_vpc.this[0].id

  route {
    cidr_block     = "0.0.0.0/0"
    nat_gateway_id = aws_nat_gateway.this[0].id
  }

  tags = merge(var.tags, { Name = "${var.name}-host" })
}

resource "aws_route_table_association" "host" {
  count = var.create_vpc && var.create_nat_gateway ? var.az_count : 0

  subnet_id      = aws_subnet.host[count.index].id
  route_table_id = aws_route_table.host[0].id
}
