output "artifact_bucket" {
  description = "Name of the artifact bucket (PIPELINE_ARTIFACT_BUCKET)."
  value       = module.artifact_store.bucket_id
}

output "artifacts_destination" {
  description = "s3:// URI for mlflow server --artifacts-destination (artifacts under mlflow/, as on the AWS host)."
  value       = "${module.artifact_store.bucket_uri}/mlflow"
}

output "s3_endpoint_url" {
  description = "Endpoint the pipeline must use for S3 (PIPELINE_S3_ENDPOINT_URL); empty against real AWS."
  value       = var.use_local_endpoints ? var.endpoint_url : ""
}
