terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.70"
    }
  }

  # Local state on purpose: this env is thrown away with the emulator, and tflocal ignores -backend-config.
}

# Credentials come from the environment (the Makefile sets AWS_ACCESS_KEY_ID=test etc. for this env).
provider "aws" {
  region = var.region

  # Only when talking to an emulator: path-style URLs and no calls to STS or the metadata service.
  s3_use_path_style           = var.use_local_endpoints
  skip_credentials_validation = var.use_local_endpoints
  skip_metadata_api_check     = var.use_local_endpoints
  skip_requesting_account_id  = var.use_local_endpoints

  dynamic "endpoints" {
    for_each = var.use_local_endpoints ? [var.endpoint_url] : []

    content {
      s3             = endpoints.value
      sts            = endpoints.value
      iam            = endpoints.value
      secretsmanager = endpoints.value
    }
  }
}
