# What LocalStack's free edition (and the moto server) serve of the AWS stack: the artifact store.
# RDS is a paid LocalStack feature and community EC2 only mocks the API, so locally the database is
# the project's own Postgres and MLflow runs on the developer's machine.
module "artifact_store" {
  source = "../../modules/artifact_store"

  bucket_name   = var.artifact_bucket_name
  force_destroy = true # the emulator's bucket holds throwaway artifacts

  # The emulators serve plain HTTP on :4566 and the moto server enforces bucket policies, so the
  # TLS-only policy would refuse every request there. Against real AWS it stays on.
  attach_deny_insecure_transport_policy = !var.use_local_endpoints

  tags = merge({ Project = "driftloop", Stack = "localstack", ManagedBy = "terraform" }, var.tags)
}
