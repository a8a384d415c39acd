data "aws_partition" "current" {}

data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

data "aws_ssm_parameter" "ami" {
  count = var.ami_id == null ? 1 : 0

  name = var.ami_ssm_parameter
}

locals {
  ami_id = var.ami_id != null ? var.ami_id : nonsensitive(data.aws_ssm_parameter.ami[0].value)

  # Secrets whose value the host generates on first boot, so it never passes through Terraform state.
  # (The hashicorp/random provider would put the values in the state; the host's role fills them instead.)
  generated_secrets = merge(
    {
      "grafana-admin"      = "Grafana admin password of ${var.name}, generated on the host"
      "grafana-secret-key" = "Grafana secret_key of ${var.name} (encrypts its stored datasource password), generated on the host"
      # One PostgreSQL role per service, none of them the RDS master user (hostctl init-db-roles).
      "db-mlflow"  = "Database role of MLflow of ${var.name} (owns the MLflow and auth databases), generated on the host"
      "db-monitor" = "Database role of the monitor of ${var.name} (owns the metrics database), generated and rotated on the host"
      "db-grafana" = "Database role of Grafana of ${var.name} (SELECT on the metrics database), generated on the host"
    },
    var.enable_basic_auth ? {
      "mlflow-admin"   = "MLflow basic-auth admin of ${var.name}, generated on the host"
      "mlflow-monitor" = "MLflow user of the monitor of ${var.name} (MANAGE on its models, EDIT on its experiment), generated on the host"
    } : {},
  )

  kms_key_arns = compact(concat([var.kms_key_arn], var.kms_key_arns))

  # The root inbox: each model's new batches go to its folder <name>/ under it; the monitor timer processes
  # each object once (pipeline monitor --all-models).
  inbox_uri  = "s3://${var.artifact_bucket_name}/${var.inbox_prefix}"
  inbox_uris = { for name in keys(var.models) : name => "${local.inbox_uri}${name}/" }

  # What the first-champion unit and the MLflow grants read on the host (/etc/driftloop/models.json).
  models_json = jsonencode({
    for name, model in var.models : name => {
      schema                  = model.schema
      retrain                 = model.retrain
      policy                  = model.policy
      bootstrap_training_data = model.bootstrap_training_data
    }
  })
  # The monitor's heartbeat (PIPELINE_HEARTBEAT_NAMESPACE): the metric BatchesRecorded per model, in a namespace of
  # this deployment's own; the host may put metrics in it alone.
  heartbeat_namespace = var.heartbeat_hours == null ? "" : "driftloop/${var.name}"

  # The s3:// URIs the host reads for its models: each must lie under one of its read prefixes.
  model_input_uris = compact(flatten([for model in values(var.models) : [model.schema, model.bootstrap_training_data]]))

  user_data = templatefile("${path.module}/templates/cloud-init.yaml.tftpl", {
    name                          = var.name
    region                        = data.aws_region.current.name
    project_git_url               = var.project_git_url
    project_git_commit            = var.project_git_commit
    enable_basic_auth             = var.enable_basic_auth
    mlflow_port                   = var.service_ports["mlflow"]
    grafana_port                  = var.service_ports["grafana"]
    extra_allowed_hosts           = join(",", var.extra_allowed_hosts)
    artifact_bucket               = var.artifact_bucket_name
    db_host                       = var.db_host
    db_port                       = var.db_port
    db_secret_arn                 = var.db_secret_arn
    db_sslmode                    = var.db_sslmode
    db_ca_bundle_url              = var.db_ca_bundle_url
    db_ca_bundle_sha256           = var.db_ca_bundle_sha256
    db_mlflow_secret_arn          = aws_secretsmanager_secret.generated["db-mlflow"].arn
    db_monitor_secret_arn         = aws_secretsmanager_secret.generated["db-monitor"].arn
    db_grafana_secret_arn         = aws_secretsmanager_secret.generated["db-grafana"].arn
    db_password_rotation_schedule = var.db_password_rotation_schedule
    mlflow_db_name                = var.mlflow_db_name
    metrics_db_name               = var.metrics_db_name
    auth_db_name                  = var.auth_db_name
    grafana_secret_arn            = aws_secretsmanager_secret.generated["grafana-admin"].arn
    grafana_secret_key_arn        = aws_secretsmanager_secret.generated["grafana-secret-key"].arn
    mlflow_admin_secret_arn       = var.enable_basic_auth ? aws_secretsmanager_secret.generated["mlflow-admin"].arn : ""
    mlflow_monitor_secret_arn     = var.enable_basic_auth ? aws_secretsmanager_secret.generated["mlflow-monitor"].arn : ""
    models_json                   = local.models_json
    compose_file                  = var.compose_file
    monitor_schedule              = var.monitor_schedule
    monitor_timeout               = var.monitor_timeout
    monitor_memory_max            = var.monitor_memory_max
    notify_sns_topic_arn          = var.notify_sns_topic_arn == null ? "" : var.notify_sns_topic_arn
    heartbeat_namespace           = local.heartbeat_namespace
    inbox_uri                     = local.inbox_uri
    hostctl_py                    = file("${path.module}/templates/hostctl.py")
    mlflow_server_sh              = file("${path.module}/templates/mlflow-server.sh")
    bootstrap_sh                  = file("${path.module}/templates/bootstrap.sh")
    run_pipeline_sh               = file("${path.module}/templates/run-pipeline.sh")
  })
}

################################################################################
# Secrets generated on the host
################################################################################

resource "aws_secretsmanager_secret" "generated" {
  #checkov:skip=CKV2_AWS_57:Generated by the host; the database roles' passwords are rotated by the host itself (hostctl rotate-db-password, the monitor's on a timer), not by a Secrets Manager Lambda.
  #checkov:skip=CKV_AWS_149:Encrypted with aws/secretsmanager by default; pass kms_key_arn for a customer-managed key.
  for_each = local.generated_secrets

  name_prefix             = "${var.name}/${each.key}-"
  description             = each.value
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.secret_recovery_window_in_days

  tags = var.tags
}

################################################################################
# Instance profile: its prefixes of this bucket, these secrets, and SSM Session Manager
################################################################################

locals {
  # The host's prefixes of the artifact bucket. It writes MLflow's artifacts (mlflow-server.sh's
  # --artifacts-destination s3://BUCKET/mlflow) and the prediction log (the package's default prediction_log_uri,
  # s3://BUCKET/predictions); it reads the root inbox (every model's folder) and read_prefixes. Nothing else: not the Spark job's code.
  mlflow_artifacts_prefix = "mlflow/"
  prediction_log_prefix   = "predictions/"
  inbox_key_prefix        = var.inbox_prefix
  host_write_prefixes     = [local.mlflow_artifacts_prefix, local.prediction_log_prefix]
  host_read_prefixes      = distinct(concat([local.inbox_key_prefix], var.read_prefixes))
  bucket_objects          = "${var.artifact_bucket_arn}/"
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }

    # IfExists: EC2 does not document aws:SourceAccount for the credentials it gets an instance, and a strict
    # condition could leave the host with none. An instance profile is only attached by a principal of this
    # account with iam:PassRole on the role; where EC2 does send the key, it must be this account.
    condition {
      test     = "StringEqualsIfExists"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

data "aws_iam_policy_document" "host" {
  statement {
    sid       = "LocateBucket"
    actions   = ["s3:GetBucketLocation"]
    resources = [var.artifact_bucket_arn]
  }

  statement {
    sid       = "ListOwnPrefixes"
    actions   = ["s3:ListBucket"]
    resources = [var.artifact_bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [for prefix in concat(local.host_write_prefixes, local.host_read_prefixes) : "${prefix}*"]
    }
  }

  statement {
    sid       = "ReadInboxAndInputs"
    actions   = ["s3:GetObject"]
    resources = [for prefix in local.host_read_prefixes : "${local.bucket_objects}${prefix}*"]
  }

  statement {
    sid = "ReadWriteArtifactsAndPredictions"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = [for prefix in local.host_write_prefixes : "${local.bucket_objects}${prefix}*"]
  }

  # MLflow deletes a run's or a model version's artifacts (its proxied artifact API, `mlflow gc`); the
  # prediction log is only ever added to.
  statement {
    sid       = "DeleteMlflowArtifacts"
    actions   = ["s3:DeleteObject"]
    resources = ["${local.bucket_objects}${local.mlflow_artifacts_prefix}*"]
  }

  statement {
    sid       = "ReadDatabaseSecret"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = [var.db_secret_arn]
  }

  # UpdateSecretVersionStage: a rotation stages the new password as AWSPENDING, then makes it AWSCURRENT.
  statement {
    sid = "FillGeneratedSecrets"
    actions = [
      "secretsmanager:GetSecretValue",
      "secretsmanager:PutSecretValue",
      "secretsmanager:DescribeSecret",
      "secretsmanager:UpdateSecretVersionStage",
    ]
    resources = [for s in aws_secretsmanager_secret.generated : s.arn]
  }

  dynamic "statement" {
    for_each = var.notify_sns_topic_arn == null ? [] : [var.notify_sns_topic_arn]

    content {
      sid       = "PublishNotifications"
      actions   = ["sns:Publish"]
      resources = [statement.value]
    }
  }

  # Resource "*": cloudwatch:PutMetricData has no resource type (Service Authorization Reference), so no ARN can
  # name it; the cloudwatch:namespace condition confines it to the heartbeat's own namespace.
  dynamic "statement" {
    for_each = local.heartbeat_namespace == "" ? [] : [local.heartbeat_namespace]

    content {
      sid       = "PutHeartbeat"
      actions   = ["cloudwatch:PutMetricData"]
      resources = ["*"]

      condition {
        test     = "StringEquals"
        variable = "cloudwatch:namespace"
        values   = [statement.value]
      }
    }
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

# What Session Manager needs of the SSM Agent, instead of AmazonSSMManagedInstanceCore (which adds
# ssm:GetParameter(s), ssmmessages:* and ec2messages:* on every resource): the agent registers the
# instance and opens the session's channels. No Run Command, State Manager or Parameter Store.
data "aws_iam_policy_document" "session_manager" {
  #checkov:skip=CKV_AWS_111:The ssmmessages channel actions have no resource type (Service Authorization Reference), so "*" is the only resource they take; the statement grants those four and nothing else.
  statement {
    sid       = "RegisterThisInstance"
    actions   = ["ssm:UpdateInstanceInformation"]
    resources = ["arn:${data.aws_partition.current.partition}:ec2:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:instance/*"]
  }

  # Resource "*": these actions have no resource type at all, so no ARN can name them.
  statement {
    sid = "OpenSessionChannels"
    actions = [
      "ssmmessages:CreateControlChannel",
      "ssmmessages:CreateDataChannel",
      "ssmmessages:OpenControlChannel",
      "ssmmessages:OpenDataChannel",
    ]
    resources = ["*"]
  }
}

resource "aws_iam_role" "host" {
  name_prefix        = "${substr(var.name, 0, 24)}-host-"
  description        = "Tracking host of ${var.name}"
  assume_role_policy = data.aws_iam_policy_document.assume.json

  tags = var.tags
}

resource "aws_iam_role_policy" "host" {
  name   = "artifacts-and-secrets"
  role   = aws_iam_role.host.id
  policy = data.aws_iam_policy_document.host.json

  lifecycle {
    precondition {
      condition = alltrue([for uri in local.model_input_uris : anytrue([
        for prefix in local.host_read_prefixes : startswith(uri, "s3://${var.artifact_bucket_name}/${prefix}")
      ])])
      error_message = "Each model's schema and bootstrap_training_data must lie in the artifact bucket under one of the host's read prefixes (${join(", ", local.host_read_prefixes)}): the host may read nothing else."
    }
  }
}

resource "aws_iam_role_policy" "session_manager" {
  name   = "session-manager"
  role   = aws_iam_role.host.id
  policy = data.aws_iam_policy_document.session_manager.json
}

resource "aws_iam_instance_profile" "host" {
  name_prefix = "${substr(var.name, 0, 24)}-host-"
  role        = aws_iam_role.host.name

  tags = var.tags
}

################################################################################
# Instance
################################################################################

resource "aws_instance" "this" {
  ami                         = local.ami_id
  instance_type               = var.instance_type
  subnet_id                   = var.subnet_id
  vpc_security_group_ids      = var.security_group_ids
  associate_public_ip_address = var.associate_public_ip_address
  iam_instance_profile        = aws_iam_instance_profile.host.name
  key_name                    = var.key_name
  ebs_optimized               = true
  monitoring                  = var.enable_detailed_monitoring

  # No public address unless asked (then for egress only: the services listen on 127.0.0.1 and the
  # security group admits nothing); people reach them through SSM port forwarding.
  # Gzipped to stay under the 16 KiB user-data limit; a change replaces the host (its state lives in RDS and S3).
  user_data_base64            = base64gzip(local.user_data)
  user_data_replace_on_change = true

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required" # IMDSv2 only
    http_put_response_hop_limit = 1          # containers on the host cannot reach the instance's credentials
    instance_metadata_tags      = "disabled"
  }

  root_block_device {
    volume_type           = "gp3"
    volume_size           = var.root_volume_size
    encrypted             = true
    kms_key_id            = var.kms_key_arn
    delete_on_termination = true

    tags = merge(var.tags, { Name = "${var.name}-root" })
  }

  tags = merge(var.tags, { Name = var.name })

  lifecycle {
    # The default AMI parameter moves with every Ubuntu release; do not replace a running host for it.
    ignore_changes = [ami]
  }

  depends_on = [aws_iam_role_policy.host, aws_iam_role_policy.session_manager]
}

################################################################################
# Heartbeat: an alarm per model when no batch was recorded for it in heartbeat_hours
################################################################################

# Outside the host, so it fires whatever stopped the batches: the host, the timer, the monitor or the data upstream.
# Missing data breaches: an hour without a data point counts as an hour without a batch.
resource "aws_cloudwatch_metric_alarm" "heartbeat" {
  for_each = local.heartbeat_namespace == "" ? toset([]) : toset(keys(var.models))

  alarm_name          = "${var.name}-no-batch-${each.key}"
  alarm_description   = "No batch of model ${each.key} recorded by the monitor of ${var.name} in ${var.heartbeat_hours} hours."
  namespace           = local.heartbeat_namespace
  metric_name         = "BatchesRecorded"
  dimensions          = { Model = each.key }
  statistic           = "Sum"
  period              = 3600
  evaluation_periods  = var.heartbeat_hours
  datapoints_to_alarm = var.heartbeat_hours
  threshold           = 1
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = var.notify_sns_topic_arn == null ? [] : [var.notify_sns_topic_arn]
  ok_actions          = var.notify_sns_topic_arn == null ? [] : [var.notify_sns_topic_arn]

  tags = var.tags
}
