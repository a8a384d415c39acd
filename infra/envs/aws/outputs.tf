output "tracking_uri" {
  description = "MLflow on your machine while mlflow_port_forward_command runs; export it as MLFLOW_TRACKING_URI."
  value       = module.tracking_host.tracking_uri
}

output "mlflow_port_forward_command" {
  description = "Forwards localhost:5000 to MLflow on the host through SSM Session Manager (no open port, no public address)."
  value       = module.tracking_host.mlflow_port_forward_command
}

output "grafana_port_forward_command" {
  description = "Forwards localhost:3000 to Grafana on the host through SSM Session Manager."
  value       = module.tracking_host.grafana_port_forward_command
}

output "artifact_bucket" {
  description = "Name of the artifact bucket (PIPELINE_ARTIFACT_BUCKET)."
  value       = module.artifact_store.bucket_id
}

output "model_names" {
  description = "The registered models the host trains and monitors."
  value       = module.tracking_host.model_names
}

output "model_inbox_uris" {
  description = "Each model's inbox, by name: aws s3 cp batch.csv <model_inbox_uris[name]>; the monitor timer processes each batch once."
  value       = module.tracking_host.model_inbox_uris
}

output "inbox_uri" {
  description = "Root inbox: each model's new batches (CSV or Parquet) go to <inbox_uri><name>/; the monitor timer processes each once."
  value       = module.tracking_host.inbox_uri
}

output "db_endpoint" {
  description = "host:port of the RDS database; reachable from the tracking host only."
  value       = module.metadata_db.db_instance_endpoint
}

output "db_secret_arn" {
  description = "Secrets Manager secret with the database user and password (managed and rotated by RDS)."
  value       = module.metadata_db.master_user_secret_arn
}

output "grafana_url" {
  description = "Grafana on your machine while grafana_port_forward_command runs."
  value       = module.tracking_host.grafana_url
}

output "grafana_admin_secret_arn" {
  description = "Secret holding the Grafana admin password, filled by the host on first boot."
  value       = module.tracking_host.grafana_admin_secret_arn
}

output "mlflow_admin_secret_arn" {
  description = "Secret holding the MLflow basic-auth admin (JSON: username, password); null with enable_basic_auth off."
  value       = module.tracking_host.mlflow_admin_secret_arn
}

output "mlflow_monitor_secret_arn" {
  description = "Secret holding the monitor's MLflow user (JSON: username, password); null with enable_basic_auth off."
  value       = module.tracking_host.mlflow_monitor_secret_arn
}

output "instance_id" {
  description = "ID of the tracking host."
  value       = module.tracking_host.instance_id
}

output "ssm_session_command" {
  description = "Opens a shell on the host through SSM Session Manager (no SSH needed)."
  value       = module.tracking_host.ssm_session_command
}

output "spark_application_id" {
  description = "EMR Serverless application of the Spark runner; null unless enable_spark."
  value       = one(module.spark_runner[*].application_id)
}

output "spark_execution_role_arn" {
  description = "Execution role of Spark job runs; null unless enable_spark."
  value       = one(module.spark_runner[*].execution_role_arn)
}

output "spark_log_group_name" {
  description = "CloudWatch log group of Spark job runs; null unless enable_spark."
  value       = one(module.spark_runner[*].log_group_name)
}

output "spark_results_uri" {
  description = "s3:// prefix Spark jobs write their batch profiles and predictions under; null unless enable_spark."
  value       = one(module.spark_runner[*].results_uri)
}

output "spark_code_uri" {
  description = "s3:// prefix for the Spark job's entry point and Python environment; null unless enable_spark."
  value       = one(module.spark_runner[*].code_uri)
}

output "notification_topic_arn" {
  description = "SNS topic of the stack's notifications (the host's PIPELINE_NOTIFY_SNS_TOPIC); subscribe to it for a failed run or a model change."
  value       = module.notifications.topic_arn
}

output "heartbeat_alarm_names" {
  description = "CloudWatch alarm of each model, by name: it notifies the notification topic when no batch of the model was recorded in heartbeat_hours."
  value       = module.tracking_host.heartbeat_alarm_names
}
