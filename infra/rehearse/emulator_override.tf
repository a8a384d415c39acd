# Emulator-only differences for rehearsing infra/envs/aws against a local moto server.
#
# `make infra-rehearse` copies infra/ to a temporary directory, puts this file next to the AWS env's
# main.tf (Terraform merges any *_override.tf into the blocks it names) and replaces MOTO_ENDPOINT
# with the URL of the moto server it started. Nothing else of the AWS env changes. Every setting
# below exists only because the emulator differs from AWS; tests/infra/test_infra_rehearse.py
# keeps this file to exactly these settings.

terraform {
  # Local state in the temporary copy instead of the S3 backend: the rehearsal owns no state bucket,
  # and its state is thrown away with the emulator.
  backend "local" {}
}

provider "aws" {
  # Fake credentials: the moto server accepts any keys, AWS accepts none of these.
  access_key = "test"
  secret_key = "test" # pragma: allowlist secret (moto's fake key)

  # No STS check of the fake keys and no look-up of the machine's instance metadata service.
  skip_credentials_validation = true
  skip_metadata_api_check     = true

  # moto serves every bucket on one host:port, so bucket names go in the path, not the host name.
  s3_use_path_style = true

  # Every service the AWS env calls, pointed at the moto server.
  endpoints {
    cloudwatch     = "MOTO_ENDPOINT"
    ec2            = "MOTO_ENDPOINT"
    emrserverless  = "MOTO_ENDPOINT"
    iam            = "MOTO_ENDPOINT"
    kms            = "MOTO_ENDPOINT"
    logs           = "MOTO_ENDPOINT"
    rds            = "MOTO_ENDPOINT"
    s3             = "MOTO_ENDPOINT"
    secretsmanager = "MOTO_ENDPOINT" # pragma: allowlist secret (a service name)
    sns            = "MOTO_ENDPOINT"
    ssm            = "MOTO_ENDPOINT"
    sts            = "MOTO_ENDPOINT"
  }
}

module "network" {
  #checkov:skip=CKV_TF_1:An override of the AWS env's own local module call (source ../../modules/network), merged by Terraform; nothing is fetched.
  #checkov:skip=CKV_TF_2:An override of the AWS env's own local module call (source ../../modules/network), merged by Terraform; nothing is fetched.
  # moto matches a zone-name filter literally, so the module's "<region>?" pattern finds no zone:
  # name the zones explicitly.
  availability_zones = ["us-east-1a", "us-east-1b"]
}

module "tracking_host" {
  #checkov:skip=CKV_TF_1:An override of the AWS env's own local module call (source ../../modules/tracking_host), merged by Terraform; nothing is fetched.
  #checkov:skip=CKV_TF_2:An override of the AWS env's own local module call (source ../../modules/tracking_host), merged by Terraform; nothing is fetched.
  # moto has no public SSM parameters (the Ubuntu AMI look-up): a stock Ubuntu AMI moto ships with.
  ami_id = "ami-785db401"

  # moto does not implement MonitorInstances, which detailed monitoring calls.
  enable_detailed_monitoring = false

  # moto describes every instance's primary interface with an association, so the provider reads
  # associate_public_ip_address back as true and would replace a host created without one: ask for
  # what moto reports. (The default, no public address, is asserted on the configuration instead.)
  associate_public_ip_address = true
}
