#!/usr/bin/env bash
# Create MLflow's artifact bucket when LocalStack is ready. Safe to run again: an existing bucket is kept.
set -euo pipefail

bucket="${ARTIFACT_BUCKET:-driftloop-artifacts}"
region="${AWS_DEFAULT_REGION:-us-east-1}"
if awslocal s3api head-bucket --bucket "$bucket" >/dev/null 2>&1; then
  echo "bucket $bucket already exists"
else
  if [ "$region" = "us-east-1" ]; then
    awslocal s3api create-bucket --bucket "$bucket" >/dev/null
  else
    awslocal s3api create-bucket --bucket "$bucket" \
      --create-bucket-configuration "LocationConstraint=$region" >/dev/null
  fi
  echo "created bucket $bucket"
fi
awslocal s3api put-bucket-versioning --bucket "$bucket" --versioning-configuration Status=Enabled
