output "instance_id" {
  description = "ID of the tracking host, for SSM Session Manager."
  value       = aws_instance.this.id
}

output "public_ip" {
  description = "Public IPv4 address of the host, for its egress only; null unless associate_public_ip_address (nothing listens on it)."
  value       = var.associate_public_ip_address ? aws_instance.this.public_ip : null
}

output "private_ip" {
  description = "Private IPv4 address of the host."
  value       = aws_instance.this.private_ip
}

output "tracking_uri" {
  description = "MLflow tracking URI on your machine while mlflow_port_forward_command runs (MLFLOW_TRACKING_URI / PIPELINE_TRACKING_URI)."
  value       = "http://localhost:${var.service_ports["mlflow"]}"
}

output "grafana_url" {
  description = "Grafana on your machine while grafana_port_forward_command runs."
  value       = "http://localhost:${var.service_ports["grafana"]}"
}

output "mlflow_port_forward_command" {
  description = "Forwards localhost:<mlflow port> on your machine to MLflow on the host's 127.0.0.1, through SSM (needs the Session Manager plugin)."
  value       = "aws ssm start-session --target ${aws_instance.this.id} --region ${data.aws_region.current.name} --document-name AWS-StartPortForwardingSession --parameters portNumber=${var.service_ports["mlflow"]},localPortNumber=${var.service_ports["mlflow"]}"
}

output "grafana_port_forward_command" {
  description = "Forwards localhost:<grafana port> on your machine to Grafana on the host's 127.0.0.1, through SSM (needs the Session Manager plugin)."
  value       = "aws ssm start-session --target ${aws_instance.this.id} --region ${data.aws_region.current.name} --document-name AWS-StartPortForwardingSession --parameters portNumber=${var.service_ports["grafana"]},localPortNumber=${var.service_ports["grafana"]}"
}

output "iam_role_name" {
  description = "Name of the host's IAM role."
  value       = aws_iam_role.host.name
}

output "iam_role_arn" {
  description = "ARN of the host's IAM role."
  value       = aws_iam_role.host.arn
}

output "grafana_admin_secret_arn" {
  description = "Secret the host fills with the Grafana admin password on first boot."
  value       = aws_secretsmanager_secret.generated["grafana-admin"].arn
}

output "mlflow_admin_secret_arn" {
  description = "Secret the host fills with the MLflow basic-auth admin (JSON: username, password) on first boot; null when basic auth is off."
  value       = try(aws_secretsmanager_secret.generated["mlflow-admin"].arn, null)
}

output "mlflow_monitor_secret_arn" {
  description = "Secret the host fills with the monitor's MLflow user (JSON: username, password) on first boot; null when basic auth is off."
  value       = try(aws_secretsmanager_secret.generated["mlflow-monitor"].arn, null)
}

output "ssm_session_command" {
  description = "Command that opens a shell on the host through SSM Session Manager."
  value       = "aws ssm start-session --target ${aws_instance.this.id} --region ${data.aws_region.current.name}"
}

output "inbox_uri" {
  description = "Root inbox of the monitor: each model's new batches (CSV or Parquet) go to <inbox_uri><name>/; the timer processes each once."
  value       = local.inbox_uri
}

output "model_inbox_uris" {
  description = "Each model's inbox, by name: drop its new batches here."
  value       = local.inbox_uris
}

output "model_names" {
  description = "Registered models the host trains and monitors."
  value       = sort(keys(var.models))
}

output "heartbeat_namespace" {
  description = "CloudWatch namespace of the monitor's heartbeat (PIPELINE_HEARTBEAT_NAMESPACE on the host); null without one."
  value       = local.heartbeat_namespace == "" ? null : local.heartbeat_namespace
}

output "heartbeat_alarm_names" {
  description = "CloudWatch alarm of each model, by name, that fires when no batch of it was recorded in heartbeat_hours."
  value       = { for name, alarm in aws_cloudwatch_metric_alarm.heartbeat : name => alarm.alarm_name }
}
