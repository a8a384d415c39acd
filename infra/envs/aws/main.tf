locals {
  tags = merge(
    {
      Project   = "driftloop"
      Stack     = var.name
      ManagedBy = "terraform"
    },
    var.tags,
  )

  # The tracking server's --artifacts-destination is s3://BUCKET/mlflow (tracking_host's mlflow-server.sh).
  mlflow_artifacts_prefix = "mlflow/"

  # Where a Spark job writes its results (profile, newest rows, result.json), under the root of every model's
  # results; the host reads them.
  spark_results_prefix = "results/"

  # Raw rows that expire after raw_data_retention_days: the batches, the prediction log (the package's default
  # s3://BUCKET/predictions) and the Spark results with their samples.
  raw_data_prefixes = [var.inbox_prefix, "predictions/", "results/"]
}

module "network" {
  source = "../../modules/network"

  name               = var.name
  create_vpc         = var.create_vpc
  vpc_cidr           = var.vpc_cidr
  vpc_id             = var.vpc_id
  public_subnet_ids  = var.public_subnet_ids
  private_subnet_ids = var.private_subnet_ids
  host_subnet_ids    = var.host_subnet_ids

  # No allowed_cidrs: the host's security group admits no one; MLflow and Grafana are reached through SSM
  # port forwarding. Without a public address the host's egress goes through a NAT gateway.
  create_nat_gateway = !var.host_public_ip

  tags = local.tags
}

module "artifact_store" {
  source = "../../modules/artifact_store"

  bucket_name                        = var.artifact_bucket_name
  noncurrent_version_expiration_days = var.noncurrent_version_expiration_days
  expiring_prefixes                  = local.raw_data_prefixes
  expiration_days                    = var.raw_data_retention_days

  tags = local.tags
}

module "metadata_db" {
  source = "../../modules/metadata_db"

  identifier              = "${var.name}-metadata"
  engine_version          = var.db_engine_version
  instance_class          = var.db_instance_class
  allocated_storage       = var.db_allocated_storage
  multi_az                = var.db_multi_az
  backup_retention_period = var.db_backup_retention_period
  deletion_protection     = var.db_deletion_protection
  subnet_ids              = module.network.private_subnet_ids
  vpc_security_group_ids  = [module.network.db_security_group_id]

  tags = local.tags
}

module "notifications" {
  source = "../../modules/notifications"

  name  = "${var.name}-notifications"
  email = var.notification_email

  tags = local.tags
}

module "tracking_host" {
  source = "../../modules/tracking_host"

  name               = var.name
  instance_type      = var.instance_type
  key_name           = var.key_name
  security_group_ids = [module.network.host_security_group_id]

  associate_public_ip_address = var.host_public_ip
  subnet_id                   = var.host_public_ip ? module.network.public_subnet_ids[0] : module.network.host_subnet_ids[0]

  artifact_bucket_name = module.artifact_store.bucket_id
  artifact_bucket_arn  = module.artifact_store.bucket_arn

  db_host        = module.metadata_db.db_instance_address
  db_port        = module.metadata_db.db_instance_port
  db_secret_arn  = module.metadata_db.master_user_secret_arn
  mlflow_db_name = module.metadata_db.db_name

  project_git_url    = var.project_git_url
  project_git_commit = var.project_git_commit
  models             = var.models
  inbox_prefix       = var.inbox_prefix
  read_prefixes      = concat(var.host_read_prefixes, var.enable_spark ? [local.spark_results_prefix] : [])

  monitor_schedule     = var.monitor_schedule
  enable_basic_auth    = var.enable_basic_auth
  notify_sns_topic_arn = module.notifications.topic_arn
  heartbeat_hours      = var.heartbeat_hours

  tags = local.tags
}

# Off by default (enable_spark = false): with count = 0 nothing of it is planned.
module "spark_runner" {
  source = "../../modules/spark_runner"
  count  = var.enable_spark ? 1 : 0

  name                 = var.name
  release_label        = var.spark_release_label
  maximum_cpu          = var.spark_maximum_cpu
  maximum_memory       = var.spark_maximum_memory
  idle_timeout_minutes = var.spark_idle_timeout_minutes

  artifact_bucket_name   = module.artifact_store.bucket_id
  artifact_bucket_arn    = module.artifact_store.bucket_arn
  model_artifacts_prefix = local.mlflow_artifacts_prefix
  batch_prefix           = var.inbox_prefix
  results_prefix         = local.spark_results_prefix
  code_prefix            = "spark/"

  # In the private subnets only on request; they have no internet route, so S3 comes through a gateway endpoint.
  subnet_ids                  = var.spark_in_vpc ? module.network.private_subnet_ids : []
  vpc_id                      = var.spark_in_vpc ? module.network.vpc_id : null
  s3_endpoint_route_table_ids = var.spark_in_vpc ? module.network.private_route_table_ids : []

  tags = local.tags
}
