"""The input validations people get wrong, run by Terraform itself: each bad value is refused, each good one
planned. `terraform test` plans a copy of the module once per case against a mocked AWS provider (no network,
no credentials), so the rule tested is the one in variables.tf, not a copy of it.

The CIDR rule: IPv4 only, at most 20 entries, and nothing wider than /16 outside the private ranges 10.0.0.0/8
and 172.16.0.0/12. A /16 is 65,536 addresses, a whole organisation's or provider's block; wider is a share of the
internet, and the rule refuses every piece of a split such as 0.0.0.0/1 + 128.0.0.0/1 on its own.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from tfconfig import MODULES

TERRAFORM = shutil.which("tofu") or shutil.which("terraform")
PLUGIN_DIR = os.environ.get("TF_PLUGIN_DIR") or ("/opt/tf-plugins" if Path("/opt/tf-plugins").is_dir() else "")

pytestmark = pytest.mark.skipif(TERRAFORM is None, reason="no terraform/tofu binary")

MOCK_PROVIDER = """
mock_provider "aws" {
  mock_data "aws_availability_zones" {
    defaults = { names = ["us-east-1a", "us-east-1b"] }
  }
  mock_data "aws_region" {
    defaults = { name = "us-east-1" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{}" }
  }
  mock_resource "aws_secretsmanager_secret" {
    defaults = { arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:driftloop/grafana-admin-abc" }
  }
}
"""

NETWORK_INPUTS = {"name": "driftloop"}
HOST_INPUTS = {
    "name": "driftloop",
    "ami_id": "ami-12345678",
    "subnet_id": "subnet-0123456789abcdef0",
    "security_group_ids": ["sg-0123456789abcdef0"],
    "artifact_bucket_name": "driftloop-artifacts",
    "artifact_bucket_arn": "arn:aws:s3:::driftloop-artifacts",
    "db_host": "db.example.internal",
    "db_username": "driftloop",
    "db_secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds-db-abc",  # pragma: allowlist secret
    "project_git_url": "https://github.com/example/driftloop.git",
    "project_git_commit": "0123456789abcdef" * 2 + "01234567",  # a 40-hex commit id
}

GOOD_CIDRS = [
    ["203.0.113.10/32"],
    ["198.51.100.0/24", "192.0.2.7/32"],
    ["198.51.0.0/16"],
    ["10.0.0.0/8"],
    ["172.16.0.0/12"],
    ["192.168.0.0/16"],
    [f"203.0.113.{i}/32" for i in range(20)],
]
BAD_CIDRS = [
    ["0.0.0.0/0"],
    ["::/0"],
    ["2001:db8::/32"],
    ["0.0.0.0/1", "128.0.0.0/1"],
    ["128.0.0.0/1"],
    ["203.0.113.10/32", "64.0.0.0/2"],
    ["52.0.0.0/8"],
    ["198.0.0.0/15"],
    ["10.0.0.0/7"],
    ["172.0.0.0/8"],
    ["192.168.0.0/15"],
    ["203.0.113.10"],
    ["203.0.113.10/33"],
    [f"203.0.113.{i}/32" for i in range(21)],
]
COMMIT = "0123456789abcdef" * 2 + "01234567"  # a 40-hex commit id
GOOD_COMMITS = [COMMIT, "f" * 40]
BAD_COMMITS = [
    "main",
    "v1.2.0",
    COMMIT[:12],  # a short id could name another commit tomorrow
    COMMIT.upper(),
    COMMIT + "0",
    COMMIT[:-1] + "g",
    COMMIT[:-7] + "$(id)",
    f"{COMMIT} ",
    "-c core.sshCommand=x",
    "",
]
GOOD_HOSTS = [["mlflow.example.org"], ["mlflow.example.org:5000", "203.0.113.10"], ["localhost"]]
BAD_HOSTS = [
    ["*"],
    ["*.example.org"],
    ["mlflow.*"],
    ["https://mlflow.example.org"],
    ["mlflow.example.org/path"],
    ["mlflow example.org"],
    ["mlflow.example.org,*"],
    [""],
    ["-mlflow.example.org"],
]


GOOD_MODELS = [
    {"driftloop-model": {}},
    {
        "credit-default": {
            "schema": "s3://driftloop-artifacts/training/credit/schema.json",
            "bootstrap_training_data": "s3://driftloop-artifacts/training/credit/reference.csv",
            "retrain": "challenger",
        },
        "churn.v2": {"retrain": "auto", "policy": {"drift_threshold": "0.2", "cooldown_batches": "3"}},
        "fraud_1": {"retrain": "off"},
    },
    {f"model-{i}": {} for i in range(50)},
]
BAD_MODELS = [
    {},  # no model at all
    {f"model-{i}": {} for i in range(51)},  # more than one host's timer should take on
    {"-model": {}},
    {"model/one": {}},
    {"a" * 64: {}},
    {"model": {"retrain": "sometimes"}},
    {"model": {"policy": {"no_such_setting": "1"}}},
    {"model": {"policy": {"retrain": "auto"}}},  # the mode is retrain, not a policy value
    {"model": {"policy": {"drift_threshold": "0.2; rm -rf /"}}},
    {"model": {"schema": "training/schema.json"}},
    {"model": {"bootstrap_training_data": "https://example.org/reference.csv"}},
    {"model": {"bootstrap_training_data": "s3://driftloop-artifacts/training/$(id).csv"}},
]


def hcl(value: object) -> str:
    """A Python value as an HCL literal (JSON's syntax is HCL's for strings, numbers and lists)."""
    return json.dumps(value)


def run_block(name: str, variables: dict, expect_failure: str | None) -> str:
    lines = [f'run "{name}" {{', "  command = plan", "  variables {"]
    lines += [f"    {key} = {hcl(value)}" for key, value in variables.items()]
    lines.append("  }")
    if expect_failure:
        lines.append(f"  expect_failures = [{expect_failure}]")
    lines.append("}")
    return "\n".join(lines)


def run_terraform_test(
    module: str, test_file: str, tmp_path: Path, variables_only: bool = False
) -> tuple[dict[str, str], str]:
    """`terraform test` of one test file over a copy of the module: ({run: "pass" | "fail"}, the log). With
    ``variables_only``, the copy is the module's variables.tf alone: its validations are all a plan evaluates, no
    provider is started, and each case takes a fraction of a second instead of a plan of the whole module."""
    work = tmp_path / module
    if variables_only:
        work.mkdir()
        shutil.copy(MODULES / module / "variables.tf", work / "variables.tf")
    else:
        shutil.copytree(MODULES / module, work, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
    (work / "tests").mkdir()
    (work / "tests" / "check.tftest.hcl").write_text(test_file)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TF_VAR_", "TF_DATA_DIR"))}
    env.update(TF_IN_AUTOMATION="1", TF_INPUT="0", CHECKPOINT_DISABLE="1", AWS_EC2_METADATA_DISABLED="true")
    init = [TERRAFORM, f"-chdir={work}", "init", "-input=false", "-no-color", "-backend=false"]
    result = subprocess.run(
        init + ([f"-plugin-dir={PLUGIN_DIR}"] if PLUGIN_DIR else []),
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    result = subprocess.run(
        [TERRAFORM, f"-chdir={work}", "test", "-no-color"], capture_output=True, text=True, env=env, timeout=900
    )
    return dict(re.findall(r'run "([^"]+)"\.\.\. (pass|fail)', result.stdout)), result.stdout + result.stderr


def terraform_test(
    module: str,
    inputs: dict,
    cases: dict[str, tuple[dict, str | None]],
    tmp_path: Path,
    variables_only: bool = True,
) -> dict:
    """Run every case as one `run` block of a test file over a copy of the module (its variables alone unless a
    case needs its resources); {case: "pass" | "fail"}."""
    body = [] if variables_only else [MOCK_PROVIDER]
    body += ["variables {"] + [f"  {key} = {hcl(value)}" for key, value in inputs.items()] + ["}"]
    body += [run_block(name, variables, failure) for name, (variables, failure) in cases.items()]
    outcomes, log = run_terraform_test(module, "\n\n".join(body) + "\n", tmp_path, variables_only)
    assert set(outcomes) == set(cases), log[-6000:]
    return {"outcomes": outcomes, "log": log}


def cases_of(variable: str, good: list, bad: list) -> dict[str, tuple[dict, str | None]]:
    cases: dict[str, tuple[dict, str | None]] = {}
    for index, value in enumerate(good):
        cases[f"good_{variable}_{index}"] = ({variable: value}, None)
    for index, value in enumerate(bad):
        cases[f"bad_{variable}_{index}"] = ({variable: value}, f"var.{variable}")
    return cases


def values_of(cases: dict[str, tuple[dict, str | None]]) -> dict[str, object]:
    return {name: next(iter(variables.values())) for name, (variables, _) in cases.items()}


def assert_all_pass(result: dict, cases: dict) -> None:
    failed = {name: values_of(cases)[name] for name, outcome in result["outcomes"].items() if outcome != "pass"}
    assert not failed, f"wrongly accepted (bad_*) or refused (good_*): {failed}\n{result['log'][-4000:]}"


def test_allowed_cidrs_refuse_any_share_of_the_internet(tmp_path):
    cases = cases_of("allowed_cidrs", GOOD_CIDRS, BAD_CIDRS)
    assert_all_pass(terraform_test("network", NETWORK_INPUTS, cases, tmp_path), cases)


def test_git_commit_and_allowed_hosts_refuse_branches_shell_and_wildcards(tmp_path):
    cases = cases_of("project_git_commit", GOOD_COMMITS, BAD_COMMITS)
    cases |= cases_of("extra_allowed_hosts", GOOD_HOSTS, BAD_HOSTS)
    cases |= cases_of("read_prefixes", [["training/", "results/driftloop-model/"]], [[""], ["/"], ["training"]])
    cases |= cases_of("models", GOOD_MODELS, BAD_MODELS)
    result = terraform_test("tracking_host", HOST_INPUTS, cases, tmp_path)
    assert_all_pass(result, cases)


def test_the_policy_names_terraform_accepts_are_the_ones_pipeline_configure_takes():
    from pipeline.domain.model_policy import OVERRIDABLE

    for module in (MODULES / "tracking_host", MODULES.parent / "envs" / "aws"):
        text = (module / "variables.tf").read_text()
        (names,) = re.findall(r"for k, v in m\.policy : contains\((\[[^\]]*\]), k\)", text)
        assert json.loads(names) == list(OVERRIDABLE), module


def test_each_model_s_data_and_schema_must_be_where_the_host_may_read_them(tmp_path):
    """A precondition on the host's role policy, so planned with the module's resources (mocked provider)."""
    training = "s3://driftloop-artifacts/training/"
    cases: dict[str, tuple[dict, str | None]] = {
        "good_bootstrap_under_read_prefix": (
            {
                "models": {
                    "one": {"bootstrap_training_data": f"{training}reference.csv", "schema": f"{training}one.json"},
                    "two": {},
                }
            },
            None,
        ),
        "bad_bootstrap_outside_read_prefixes": (
            {"models": {"one": {"bootstrap_training_data": "s3://driftloop-artifacts/spark/reference.csv"}}},
            "aws_iam_role_policy.host",
        ),
        "bad_schema_in_another_bucket": (
            {"models": {"one": {}, "two": {"schema": "s3://another-bucket/training/two.json"}}},
            "aws_iam_role_policy.host",
        ),
    }
    result = terraform_test("tracking_host", HOST_INPUTS, cases, tmp_path, variables_only=False)
    assert_all_pass(result, cases)


# --- the policies as Terraform renders them ---------------------------------------------------------

# The real provider, offline: aws_iam_policy_document, aws_partition and aws_region are computed locally, the
# account id is given. A document that depends on a resource still to be created (the host's S3 and secrets
# policy, the Spark trust) is only read at apply; those are checked on the parsed configuration
# (test_infra_security.py) and, for Spark, in the planned role policy (test_infra_spark.py). The network module
# is left out: its zone look-up is an EC2 call; its flow-log trust is checked on the parsed configuration.
OFFLINE_PROVIDER = """
provider "aws" {
  region                      = "us-east-1"
  access_key                  = "test"
  secret_key                  = "test" # pragma: allowlist secret (a fake key, no request is made)
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
}

override_data {
  target = data.aws_caller_identity.current
  values = { account_id = "123456789012" }
}
"""

NO_WILDCARD_ACTION = (
    "alltrue([for s in jsondecode({doc}.json).Statement : "
    'alltrue([for a in flatten([s.Action]) : !strcontains(a, "*")])])'
)

RENDERED = {
    "tracking_host": (
        HOST_INPUTS,
        {
            "the EC2 trust names this account (IfExists)": (
                "jsondecode(data.aws_iam_policy_document.assume.json).Statement[0].Condition == "
                '{ StringEqualsIfExists = { "aws:SourceAccount" = "123456789012" } }'
            ),
            "the Session Manager policy has no wildcard action": NO_WILDCARD_ACTION.format(
                doc="data.aws_iam_policy_document.session_manager"
            ),
            "the Session Manager agent registers this account's instances only": (
                "[for s in jsondecode(data.aws_iam_policy_document.session_manager.json).Statement : s.Resource "
                'if s.Sid == "RegisterThisInstance"] == ["arn:aws:ec2:us-east-1:123456789012:instance/*"]'
            ),
            "only the ssmmessages channel actions take resource *": (
                "toset(flatten([for s in jsondecode(data.aws_iam_policy_document.session_manager.json).Statement : "
                's.Action if s.Resource == "*"])) == toset(["ssmmessages:CreateControlChannel", '
                '"ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"])'
            ),
        },
    ),
    "metadata_db": (
        {
            "identifier": "driftloop-metadata",
            "subnet_ids": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
            "vpc_security_group_ids": ["sg-0123456789abcdef0"],
        },
        {
            "the monitoring trust names this account and this database": (
                "jsondecode(data.aws_iam_policy_document.monitoring_assume.json).Statement[0].Condition == {"
                ' StringEquals = { "aws:SourceAccount" = "123456789012" },'
                ' ArnLike = { "aws:SourceArn" = "arn:aws:rds:us-east-1:123456789012:db:driftloop-metadata" } }'
            ),
        },
    ),
}


@pytest.mark.parametrize("module", sorted(RENDERED))
def test_rendered_trust_and_session_policies(module, tmp_path):
    inputs, checks = RENDERED[module]
    body = [OFFLINE_PROVIDER, "variables {"] + [f"  {key} = {hcl(value)}" for key, value in inputs.items()] + ["}"]
    body += ['run "rendered" {', "  command = plan"]
    for message, condition in checks.items():
        body += ["  assert {", f"    condition     = {condition}", f"    error_message = {hcl(message)}", "  }"]
    body.append("}")
    outcomes, log = run_terraform_test(module, "\n".join(body) + "\n", tmp_path)
    assert outcomes == {"rendered": "pass"}, log[-6000:]


def test_heartbeat_hours_are_whole_hours_within_cloudwatch_s_seven_days(tmp_path):
    cases = cases_of("heartbeat_hours", [1, 26, 168, None], [0, -3, 1.5, 169])
    assert_all_pass(terraform_test("tracking_host", HOST_INPUTS, cases, tmp_path), cases)
