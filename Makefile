ARTIFACT_BUCKET ?= triage-mlflow-artifacts
export ARTIFACT_BUCKET

-include mk/*.mk
