output "instance_id" {
  description = "ID of the tracking host, for SSM Session Manager."
  value       = aws_instance.this.id
}

output "public_dns" {
  description = "Public DNS name of the host (changes if the instance is stopped and started)."
  value       = aws_instance.this.public_dns
}

output "public_ip" {
  description = "Public IPv4 address of the host."
  value       = aws_instance.this.public_ip
}

output "private_ip" {
  description = "Private IPv4 address of the host."
  value       = aws_instance.this.private_ip
}

output "tracking_uri" {
  description = "MLflow tracking URI (PIPELINE_TRACKING_URI / MLFLOW_TRACKING_URI for clients in allowed_cidrs)."
  value       = "http://${aws_instance.this.public_dns}:${var.service_ports["mlflow"]}"
}

output "grafana_url" {
  description = "Grafana on the host."
  value       = "http://${aws_instance.this.public_dns}:${var.service_ports["grafana"]}"
}

output "adminer_url" {
  description = "Adminer on the host."
  value       = "http://${aws_instance.this.public_dns}:${var.service_ports["adminer"]}"
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
  description = "Secret the host fills with the MLflow basic-auth admin on first boot; null when basic auth is off."
  value       = try(aws_secretsmanager_secret.generated["mlflow-admin"].arn, null)
}

output "ssm_session_command" {
  description = "Command that opens a shell on the host through SSM Session Manager."
  value       = "aws ssm start-session --target ${aws_instance.this.id} --region ${data.aws_region.current.name}"
}

output "inbox_uri" {
  description = "Inbox of the monitor: drop new batches (CSV or Parquet) here; the timer processes each once."
  value       = local.inbox_uri
}

output "model_name" {
  description = "Registered model the host trains and monitors (PIPELINE_MODEL_NAME)."
  value       = var.model_name
}
