output "application_id" {
  description = "ID of the EMR Serverless application (aws emr-serverless start-job-run --application-id)."
  value       = aws_emrserverless_application.this.id
}

output "application_arn" {
  description = "ARN of the EMR Serverless application."
  value       = aws_emrserverless_application.this.arn
}

output "execution_role_arn" {
  description = "Role a job run takes (start-job-run --execution-role-arn)."
  value       = aws_iam_role.execution.arn
}

output "execution_role_name" {
  description = "Name of the execution role."
  value       = aws_iam_role.execution.name
}

output "log_group_name" {
  description = "CloudWatch log group to name in a job run's cloudWatchLoggingConfiguration."
  value       = aws_cloudwatch_log_group.this.name
}

output "results_uri" {
  description = "s3:// URI of the one prefix the job writes."
  value       = local.results_uri
}

output "profiles_uri" {
  description = "Where the job writes its batch profiles, for the monitor on the host to ingest."
  value       = "${local.results_uri}profiles/"
}

output "predictions_uri" {
  description = "Where the job writes its predictions."
  value       = "${local.results_uri}predictions/"
}

output "code_uri" {
  description = "s3:// URI under which the job's entry point and Python environment go."
  value       = "s3://${var.artifact_bucket_name}/${var.code_prefix}"
}

output "security_group_id" {
  description = "Security group of the workers, or null when they run outside the VPC."
  value       = try(aws_security_group.this[0].id, null)
}
