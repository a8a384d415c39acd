data "aws_partition" "current" {}

data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

locals {
  bucket_object_arn = "${var.artifact_bucket_arn}/"

  # Built from its name rather than read from the resource, so the role's policy is known at plan time.
  log_group_name = "/aws/emr-serverless/${var.name}"
  log_group_arn  = "arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:log-group:${local.log_group_name}"

  # The prefixes the job reads, and the one it writes. The written one must not lie under (or above) a
  # read one: a job that could write there could overwrite a model or a batch.
  read_prefixes = {
    model_artifacts_prefix = var.model_artifacts_prefix
    batch_prefix           = var.batch_prefix
    code_prefix            = var.code_prefix
  }
  overlapping_prefixes = [
    for key, prefix in local.read_prefixes : key
    if startswith(prefix, var.results_prefix) || startswith(var.results_prefix, prefix)
  ]

  in_vpc       = length(var.subnet_ids) > 0
  kms_key_arns = compact(var.kms_key_arns)

  results_uri = "s3://${var.artifact_bucket_name}/${var.results_prefix}"
}

################################################################################
# Application: Spark, started on a job and stopped when idle, capped in size
################################################################################

resource "aws_emrserverless_application" "this" {
  name          = "${var.name}-spark"
  release_label = var.release_label
  type          = "spark"
  architecture  = var.architecture

  # No pre-initialised capacity: nothing runs, and nothing is billed, between jobs.
  auto_start_configuration {
    enabled = true
  }

  auto_stop_configuration {
    enabled              = true
    idle_timeout_minutes = var.idle_timeout_minutes
  }

  # The most all running workers of the application may hold at once: a cap on the cost of a runaway job.
  maximum_capacity {
    cpu    = var.maximum_cpu
    memory = var.maximum_memory
  }

  dynamic "network_configuration" {
    for_each = local.in_vpc ? [1] : []

    content {
      subnet_ids         = var.subnet_ids
      security_group_ids = [aws_security_group.this[0].id]
    }
  }

  tags = merge(var.tags, { Name = "${var.name}-spark" })

  lifecycle {
    precondition {
      condition     = length(local.overlapping_prefixes) == 0
      error_message = "results_prefix (${var.results_prefix}) must not lie under or above ${join(", ", local.overlapping_prefixes)}: the job may write there."
    }

    precondition {
      condition     = !local.in_vpc || var.vpc_id != null
      error_message = "With subnet_ids, set vpc_id too (the security group of the workers lives in it)."
    }
  }
}

################################################################################
# Network, only when the workers run in the VPC's subnets
################################################################################

resource "aws_security_group" "this" {
  #checkov:skip=CKV2_AWS_5:Attached to the EMR Serverless application's network_configuration above, which checkov's graph does not follow.
  count = local.in_vpc ? 1 : 0

  name_prefix = "${var.name}-spark-"
  description = "EMR Serverless workers of ${var.name}: no ingress, HTTPS out to S3 and CloudWatch Logs"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-spark" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_egress_rule" "https" {
  count = local.in_vpc ? 1 : 0

  security_group_id = aws_security_group.this[0].id
  description       = "HTTPS to S3 and CloudWatch Logs"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"

  tags = var.tags
}

# Subnets without an internet route reach S3 only through a gateway endpoint (free of charge).
resource "aws_vpc_endpoint" "s3" {
  count = local.in_vpc && length(var.s3_endpoint_route_table_ids) > 0 ? 1 : 0

  vpc_id            = var.vpc_id
  service_name      = "com.amazonaws.${data.aws_region.current.name}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = var.s3_endpoint_route_table_ids

  tags = merge(var.tags, { Name = "${var.name}-spark-s3" })
}

################################################################################
# Logs
################################################################################

resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_158:Encrypted by CloudWatch Logs' own key by default; pass kms_key_arn for a customer-managed key.
  name              = local.log_group_name
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.kms_key_arn

  tags = var.tags
}

################################################################################
# Execution role: read the model, the batches and the job's code; write the results; write the logs
################################################################################

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["emr-serverless.amazonaws.com"]
    }

    # Only job runs of this application, in this account, may take the role (no confused deputy).
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [aws_emrserverless_application.this.arn]
    }
  }
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "LocateBucket"
    actions   = ["s3:GetBucketLocation"]
    resources = [var.artifact_bucket_arn]
  }

  statement {
    sid       = "ListJobPrefixes"
    actions   = ["s3:ListBucket"]
    resources = [var.artifact_bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [for prefix in concat(values(local.read_prefixes), [var.results_prefix]) : "${prefix}*"]
    }
  }

  statement {
    sid       = "ReadModelBatchesAndCode"
    actions   = ["s3:GetObject"]
    resources = [for prefix in values(local.read_prefixes) : "${local.bucket_object_arn}${prefix}*"]
  }

  statement {
    sid = "ReadWriteResults"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject", # Spark's output committer renames, which on S3 is a copy and a delete
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = ["${local.bucket_object_arn}${var.results_prefix}*"]
  }

  statement {
    sid       = "WriteJobLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = [local.log_group_arn, "${local.log_group_arn}:*"]
  }

  statement {
    sid       = "FindTheLogGroup"
    actions   = ["logs:DescribeLogGroups"]
    resources = ["arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:log-group:*"]
  }

  dynamic "statement" {
    for_each = length(local.kms_key_arns) > 0 ? [local.kms_key_arns] : []

    content {
      sid       = "UseCustomerKeys"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = statement.value
    }
  }
}

resource "aws_iam_role" "execution" {
  # IAM allows a name_prefix of at most 38 characters; 24 + "-spark-" keeps to 31 for any valid name.
  name_prefix        = "${substr(var.name, 0, 24)}-spark-"
  description        = "Job runs of the EMR Serverless application of ${var.name}"
  assume_role_policy = data.aws_iam_policy_document.assume.json

  tags = var.tags
}

resource "aws_iam_role_policy" "execution" {
  name   = "model-batches-results-logs"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}
