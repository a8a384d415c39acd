# Terraform for the AWS stack and its LocalStack twin (see infra/README.md).
#
#   make infra-plan                 # ENV=localstack by default: the artifact bucket on :4566
#   make infra-plan ENV=aws         # the whole stack on AWS (needs infra/envs/aws/backend.hcl)
#   make infra-rehearse             # apply, re-plan and destroy the AWS env against a throwaway moto server
#
# The bucket name comes from the one shared setting ARTIFACT_BUCKET (root Makefile) and reaches
# Terraform as TF_VAR_artifact_bucket_name, so `make local-up` and the LocalStack env agree.

ENV ?= localstack
INFRA_ENVS := aws localstack
INFRA_DIR := infra/envs/$(ENV)

# OpenTofu or Terraform, whichever is installed (tofu first when both are).
TF ?= $(shell command -v tofu 2>/dev/null || command -v terraform 2>/dev/null)
# An offline provider mirror, e.g. TF_PLUGIN_DIR=/path/to/plugins, passed to `init -plugin-dir`;
# /opt/tf-plugins when that folder exists and nothing else is given.
TF_PLUGIN_DIR ?= $(if $(wildcard /opt/tf-plugins/.),/opt/tf-plugins)
INFRA_PYTHON ?= python3

# Set AUTO_APPROVE=1 to skip the confirmation prompt of apply/destroy.
AUTO_APPROVE ?=
INFRA_ENDPOINT ?= http://localhost:4566

CHECKOV_VERSION ?= 3.3.30
CHECKOV_VENV := .tools/checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)
CHECKOV := $(CHECKOV_VENV)/bin/checkov

ifeq ($(ENV),localstack)
# Fake credentials: LocalStack and the moto server accept any, real AWS accepts none of these.
AWS_ACCESS_KEY_ID ?= test
AWS_SECRET_ACCESS_KEY ?= test
AWS_REGION ?= us-east-1
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION
INFRA_TF_VARS = TF_VAR_artifact_bucket_name=$(ARTIFACT_BUCKET) TF_VAR_endpoint_url=$(INFRA_ENDPOINT)
else
INFRA_TF_VARS = TF_VAR_artifact_bucket_name=$(ARTIFACT_BUCKET)
endif

INFRA_INIT_ARGS = -input=false $(if $(TF_PLUGIN_DIR),-plugin-dir=$(TF_PLUGIN_DIR))
INFRA_APPROVE = $(if $(filter 1 yes true,$(AUTO_APPROVE)),-auto-approve)

define infra_need_tf
	@if [ -z "$(TF)" ]; then \
	  echo "Neither 'tofu' nor 'terraform' is on PATH." >&2; \
	  echo "Install one of them (Terraform >= 1.6 or OpenTofu >= 1.6):" >&2; \
	  echo "  OpenTofu:  https://opentofu.org/docs/intro/install/" >&2; \
	  echo "  Terraform: https://developer.hashicorp.com/terraform/install" >&2; \
	  echo "The static checks still run without it: make infra-check and pytest tests/infra." >&2; \
	  exit 1; \
	fi
	@case " $(INFRA_ENVS) " in *" $(ENV) "*) ;; \
	  *) echo "ENV must be one of: $(INFRA_ENVS) (got '$(ENV)')" >&2; exit 1;; esac
	@if [ -z "$(ARTIFACT_BUCKET)" ]; then \
	  echo "ARTIFACT_BUCKET is not set; it is defined in the root Makefile." >&2; exit 1; fi
endef

.PHONY: infra-init infra-plan infra-apply infra-destroy infra-validate infra-check infra-rehearse tools-checkov

infra-init: ## Initialise Terraform for ENV=aws|localstack (default localstack)
	$(infra_need_tf)
	@if [ "$(ENV)" = aws ] && [ ! -f $(INFRA_DIR)/backend.hcl ]; then \
	  echo "Remote state is not configured: copy $(INFRA_DIR)/backend.hcl.example to" >&2; \
	  echo "$(INFRA_DIR)/backend.hcl and name your state bucket in it." >&2; \
	  exit 1; \
	fi
	$(INFRA_TF_VARS) $(TF) -chdir=$(INFRA_DIR) init $(INFRA_INIT_ARGS) \
	  $(if $(filter aws,$(ENV)),-backend-config=backend.hcl)

# `make local-up` may have created the bucket already: adopt it into the LocalStack env's state
# instead of failing with BucketAlreadyExists. Import fails quietly when there is no such bucket.
define infra_adopt_local_bucket
	@if [ "$(ENV)" = localstack ] && \
	  ! $(TF) -chdir=$(INFRA_DIR) state list 2>/dev/null | grep -qx 'module.artifact_store.aws_s3_bucket.this'; then \
	  if $(INFRA_TF_VARS) $(TF) -chdir=$(INFRA_DIR) import -input=false \
	    module.artifact_store.aws_s3_bucket.this $(ARTIFACT_BUCKET) >/dev/null 2>&1; then \
	    echo "Adopted the existing bucket $(ARTIFACT_BUCKET) into the localstack state."; \
	  fi; \
	fi
endef

infra-plan: infra-init ## Show what Terraform would change for ENV (writes ENV's tfplan)
	$(infra_adopt_local_bucket)
	$(INFRA_TF_VARS) $(TF) -chdir=$(INFRA_DIR) plan -input=false -out=tfplan

infra-apply: infra-init ## Create or update the stack for ENV (asks first unless AUTO_APPROVE=1)
	$(infra_adopt_local_bucket)
	$(INFRA_TF_VARS) $(TF) -chdir=$(INFRA_DIR) apply -input=false $(INFRA_APPROVE)

infra-destroy: infra-init ## Destroy the stack for ENV (asks first unless AUTO_APPROVE=1)
	$(INFRA_TF_VARS) $(TF) -chdir=$(INFRA_DIR) destroy -input=false $(INFRA_APPROVE)

infra-validate: ## Run terraform fmt -check and validate on every env (skipped without terraform/tofu)
	@if [ -z "$(TF)" ]; then \
	  echo "infra-validate: neither 'tofu' nor 'terraform' is installed; skipping (see infra/README.md)."; \
	  exit 0; \
	fi; \
	set -e; \
	$(TF) fmt -check -recursive -diff infra; \
	for env in $(INFRA_ENVS); do \
	  echo "== $$env"; \
	  $(TF) -chdir=infra/envs/$$env init -backend=false $(INFRA_INIT_ARGS) >/dev/null; \
	  $(TF) -chdir=infra/envs/$$env validate; \
	done

# The whole AWS env, unchanged but for infra/rehearse/emulator_override.tf, against a moto server of
# its own on a free port: apply, check the outputs, re-plan (only the two known moto differences may
# show), switch deletion protection off, destroy. About 7 minutes; see infra/README.md.
infra-rehearse: install ## Apply, re-plan and destroy the AWS env against a throwaway moto server (~7 min)
	$(infra_need_tf)
	$(PY) infra/rehearse/rehearse.py --terraform "$(TF)" --bucket "$(ARTIFACT_BUCKET)" \
	  $(if $(TF_PLUGIN_DIR),--plugin-dir "$(TF_PLUGIN_DIR)")

# The whole of infra/, the rehearsal's override included (its skips say why, in place).
infra-check: tools-checkov ## Run checkov over infra/ (its own venv in .tools/checkov)
	$(CHECKOV) --directory infra --framework terraform --compact --quiet --skip-download \
	  --skip-path '\.terraform' --download-external-modules false

tools-checkov: $(CHECKOV_STAMP) ## Install the pinned checkov into .tools/checkov, apart from .venv

$(CHECKOV_STAMP):
	rm -rf $(CHECKOV_VENV)
	$(INFRA_PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet "checkov==$(CHECKOV_VERSION)"
	touch $@
