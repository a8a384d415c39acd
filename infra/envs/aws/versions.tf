terraform {
  # 1.10 is the first release whose S3 backend locks with a lock file (use_lockfile) instead of DynamoDB.
  required_version = ">= 1.10"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.70"
    }
  }

  # Partial configuration: the state bucket is named in backend.hcl (see backend.hcl.example), so
  # `make infra-init ENV=aws` runs `init -backend-config=backend.hcl`.
  backend "s3" {}
}

provider "aws" {
  region = var.region
}
