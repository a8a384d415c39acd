"""The Spark runner (EMR Serverless): off by default in the AWS env, its inputs validated, and its
execution role limited to the prefixes the job reads and the one it writes.

The static tests read the parsed configuration. The plan tests (marked integration) run `terraform plan`
against a moto server of their own, with the provider from the offline mirror when there is one: the
module alone with good and bad inputs, and the AWS env with the runner off and on.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from tfconfig import ENVS, INFRA, MODULES, ROOT, first, locals_of, named_blocks, resources

SPARK = MODULES / "spark_runner"
AWS = ENVS / "aws"
REHEARSE = INFRA / "rehearse"
BUCKET = "driftloop-spark-test"
SPARK_OUTPUTS = {
    "spark_application_id",
    "spark_execution_role_arn",
    "spark_log_group_name",
    "spark_results_uri",
    "spark_code_uri",
}
# What the runner adds to the env with its defaults (workers outside the VPC).
SPARK_RESOURCES = {
    "module.spark_runner[0].aws_emrserverless_application.this",
    "module.spark_runner[0].aws_iam_role.execution",
    "module.spark_runner[0].aws_iam_role_policy.execution",
    "module.spark_runner[0].aws_cloudwatch_log_group.this",
}
# What it adds on top with spark_in_vpc.
SPARK_VPC_RESOURCES = {
    "module.spark_runner[0].aws_security_group.this[0]",
    "module.spark_runner[0].aws_vpc_security_group_egress_rule.https[0]",
    "module.spark_runner[0].aws_vpc_endpoint.s3[0]",
}
ENV_RESOURCES_WITHOUT_SPARK = 56  # what `make infra-rehearse` creates (infra/README.md)


def load_rehearse_script():
    spec = importlib.util.spec_from_file_location("rehearse", REHEARSE / "rehearse.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- static: the env wiring ----------------------------------------------------------------------


def test_spark_is_off_by_default_and_switched_by_count():
    assert named_blocks(AWS, "variable")["enable_spark"]["default"] is False
    call = named_blocks(AWS, "module")["spark_runner"]
    assert call["count"] == "${var.enable_spark ? 1 : 0}"


def test_spark_outputs_are_null_when_disabled():
    outputs = named_blocks(AWS, "output")
    spark = {name for name, body in outputs.items() if "module.spark_runner" in str(body["value"])}
    assert spark == SPARK_OUTPUTS
    for name in spark:
        assert re.fullmatch(r"\$\{one\(module\.spark_runner\[\*\]\.\w+\)\}", outputs[name]["value"]), name


def test_the_rehearsal_accepts_the_spark_outputs_null():
    script = load_rehearse_script()
    outputs = {name: {"value": None} for name in SPARK_OUTPUTS | {"instance_id"}}
    problems = script.check_outputs(outputs, BUCKET)
    assert "output instance_id is empty" in problems
    assert not [p for p in problems if "spark" in p]


def test_spark_reads_mlflow_artifacts_where_the_tracking_server_writes_them():
    server = (MODULES / "tracking_host" / "templates" / "mlflow-server.sh").read_text()
    destination = re.search(r'--artifacts-destination "s3://\$DRIFTLOOP_ARTIFACT_BUCKET/([^"]+)"', server).group(1)
    assert locals_of(AWS)["mlflow_artifacts_prefix"] == f"{destination}/"
    assert named_blocks(AWS, "module")["spark_runner"]["model_artifacts_prefix"] == "${local.mlflow_artifacts_prefix}"


def test_spark_batches_are_the_monitor_inbox_and_results_lie_apart():
    """One deployment, many models: the job reads the root inbox (every model's folder) and writes under results/."""
    call = named_blocks(AWS, "module")["spark_runner"]
    assert call["batch_prefix"] == "${var.inbox_prefix}"
    assert call["results_prefix"] == "${local.spark_results_prefix}"
    assert locals_of(AWS)["spark_results_prefix"] == "results/"


# --- static: the execution role ------------------------------------------------------------------


def execution_statements():
    document = resources(SPARK, "aws_iam_policy_document", kind="data")["execution"]
    statements = list(document["statement"])
    statements += [first(d["statement"]["content"]) for d in document.get("dynamic", [])]
    return statements


def test_execution_role_grants_no_wildcard_action_or_resource():
    for statement in execution_statements():
        assert statement.get("effect", "Allow") == "Allow"
        for action in statement["actions"]:
            assert "*" not in action, f"wildcard action {action}"
        found = statement["resources"]
        if statement["sid"] == "UseCustomerKeys":
            assert found == "${statement.value}"  # the kms_key_arns given, if any
        elif isinstance(found, str):  # a for expression over the read prefixes, evaluated in the plan tests
            assert "${local.bucket_object_arn}${prefix}*" in found, found
        else:
            assert "*" not in found, f"{statement['sid']}: wildcard resource"


def test_execution_role_writes_only_under_the_results_prefix():
    by_sid = {s["sid"]: s for s in execution_statements()}
    writes = {"s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"}
    writers = [sid for sid, s in by_sid.items() if writes & set(s["actions"])]
    assert writers == ["ReadWriteResults"]
    assert by_sid["ReadWriteResults"]["resources"] == ["${local.bucket_object_arn}${var.results_prefix}*"]
    assert by_sid["ReadModelBatchesAndCode"]["actions"] == ["s3:GetObject"]
    listing = by_sid["ListJobPrefixes"]
    assert listing["resources"] == ["${var.artifact_bucket_arn}"]
    assert first(listing["condition"])["variable"] == "s3:prefix"
    services = {action.split(":")[0] for s in by_sid.values() for action in s["actions"]}
    assert services == {"s3", "logs", "kms"}


def test_execution_role_is_for_this_application_only():
    assume = resources(SPARK, "aws_iam_policy_document", kind="data")["assume"]["statement"][0]
    assert first(assume["principals"])["identifiers"] == ["emr-serverless.amazonaws.com"]
    conditions = {c["variable"]: c for c in assume["condition"]}
    assert set(conditions) == {"aws:SourceAccount", "aws:SourceArn"}
    assert conditions["aws:SourceArn"]["values"] == ["${aws_emrserverless_application.this.arn}"]
    assert list(resources(SPARK, "aws_iam_role_policy_attachment")) == [], "no managed policies"


def test_spark_log_group_is_kept_and_may_use_a_customer_key():
    group = resources(SPARK, "aws_cloudwatch_log_group")["this"]
    assert group["retention_in_days"] == "${var.log_retention_in_days}"
    assert group["kms_key_id"] == "${var.kms_key_arn}"
    assert named_blocks(SPARK, "variable")["log_retention_in_days"]["default"] >= 365


def test_application_stops_when_idle_and_is_capped():
    app = resources(SPARK, "aws_emrserverless_application")["this"]
    assert app["type"] == "spark"
    assert first(app["auto_stop_configuration"])["enabled"] is True
    assert "initial_capacity" not in app, "pre-initialised workers are billed while idle"
    assert set(first(app["maximum_capacity"])) == {"cpu", "memory"}


def test_infra_readme_documents_the_spark_hand_off():
    text = (INFRA / "README.md").read_text()
    section = text.split("## Spark runner", 1)[1].split("\n## ", 1)[0]
    for needed in (
        "enable_spark",
        "results/",
        "pipeline spark-job-args",
        "pipeline.engine.spark_job",
        "spark_entry.py",
        "result.json",
        "start-job-run",
    ):
        assert needed in section, needed
    assert "neither MLflow nor the database" in section


# --- plans against a moto server ------------------------------------------------------------------

TERRAFORM = shutil.which("tofu") or shutil.which("terraform")
MOTO_SERVER = shutil.which("moto_server") or str(ROOT / ".venv" / "bin" / "moto_server")
PLUGIN_DIR = os.environ.get("TF_PLUGIN_DIR") or ("/opt/tf-plugins" if Path("/opt/tf-plugins").is_dir() else "")

needs_plans = [
    pytest.mark.integration,
    pytest.mark.skipif(TERRAFORM is None, reason="no terraform/tofu binary"),
    pytest.mark.skipif(not Path(MOTO_SERVER).exists(), reason="no moto_server: make install"),
]


class Plans:
    """terraform init/plan/show in one directory, with no AWS or TF_VAR_ setting of the caller."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TF_VAR_", "TF_DATA_DIR"))}
        self.env.update(TF_IN_AUTOMATION="1", TF_INPUT="0", CHECKPOINT_DISABLE="1", AWS_EC2_METADATA_DISABLED="true")

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [TERRAFORM, f"-chdir={self.directory}", *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=600,
        )

    def init(self) -> None:
        args = ["init", "-input=false", "-no-color"]
        result = self.run(*args, *([f"-plugin-dir={PLUGIN_DIR}"] if PLUGIN_DIR else []))
        assert result.returncode == 0, result.stderr

    def plan(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run("plan", "-input=false", "-no-color", "-refresh=false", "-out=tfplan", *args)

    def show(self) -> dict:
        result = self.run("show", "-json", "tfplan")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


def created(plan: dict) -> set[str]:
    return {c["address"] for c in plan.get("resource_changes", []) if c["change"]["actions"] == ["create"]}


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory):
    script = load_rehearse_script()
    process, url = script.start_moto(MOTO_SERVER, tmp_path_factory.mktemp("moto") / "moto.log", script.Clock())
    try:
        yield url
    finally:
        script.stop_moto(process)


# The module alone, called from a root module written as JSON, one set of inputs per plan.

PROVIDER = {
    "region": "us-east-1",
    "access_key": "test",
    "secret_key": "test",  # pragma: allowlist secret (moto's fake key)
    "skip_credentials_validation": True,
    "skip_metadata_api_check": True,
}
GOOD_INPUTS = {
    "name": "driftloop",
    "artifact_bucket_name": BUCKET,
    "artifact_bucket_arn": f"arn:aws:s3:::{BUCKET}",
    "batch_prefix": "inbox/driftloop-model/",
    "results_prefix": "results/driftloop-model/",
}


@pytest.fixture(scope="module")
def module_plans(moto_endpoint, tmp_path_factory):
    root = tmp_path_factory.mktemp("spark_module")
    services = ("ec2", "emrserverless", "iam", "logs", "s3", "sts")
    provider = {**PROVIDER, "endpoints": [{service: moto_endpoint for service in services}]}
    (root / "provider.tf.json").write_text(json.dumps({"provider": {"aws": provider}}))
    plans = Plans(root)

    def write(**inputs):
        call = {"source": str(SPARK), **GOOD_INPUTS, **inputs}
        (root / "main.tf.json").write_text(json.dumps({"module": {"spark": call}}))

    def plan(**inputs):
        write(**inputs)
        return plans.plan()

    def many(calls):
        modules = {f"bad_{i}": {"source": str(SPARK), **GOOD_INPUTS, **inputs} for i, inputs in enumerate(calls)}
        (root / "main.tf.json").write_text(json.dumps({"module": modules}))
        plans.run("init", "-input=false", "-no-color", *([f"-plugin-dir={PLUGIN_DIR}"] if PLUGIN_DIR else []))
        return plans.plan()

    write()  # init finds the module through it
    plans.init()
    plan.show = plans.show
    plan.many = many
    return plan


def policy_of(plan: dict, rtype: str, name: str) -> dict:
    (change,) = [c for c in plan["resource_changes"] if c["type"] == rtype and c["name"] == name]
    return json.loads(change["change"]["after"]["policy"])


BAD_VARIABLES = [
    ({"release_label": "emr-6.15.0"}, "release_label must be an EMR 7 release"),
    ({"release_label": "7.5.0"}, "release_label must be an EMR 7 release"),
    ({"maximum_cpu": "8"}, "maximum_cpu must be a whole number of vCPUs"),
    ({"maximum_cpu": "0 vCPU"}, "maximum_cpu must be a whole number of vCPUs"),
    ({"maximum_memory": "32GB"}, "maximum_memory must be a whole number of gigabytes"),
    ({"maximum_memory": "32 GiB"}, "maximum_memory must be a whole number of gigabytes"),
    ({"idle_timeout_minutes": 0}, "idle_timeout_minutes must be a whole number from 1 to 10080"),
    ({"name": "Driftloop"}, "name must be 3-32 lowercase letters"),
    ({"architecture": "arm64"}, "architecture must be X86_64 or ARM64"),
    ({"results_prefix": "results"}, "results_prefix must be path segments"),
    ({"batch_prefix": "/inbox/"}, "batch_prefix must be path segments"),
    ({"artifact_bucket_arn": f"arn:aws:s3:::{BUCKET}/*"}, "artifact_bucket_arn must be the ARN of a bucket"),
    ({"log_retention_in_days": 10}, "log_retention_in_days must be one of the periods"),
    ({"subnet_ids": ["sg-0123"]}, "subnet_ids must be subnet ids"),
]
BAD_COMBINATIONS = [
    ({"results_prefix": "mlflow/results/"}, "must not lie under or above model_artifacts_prefix"),
    ({"results_prefix": "inbox/"}, "must not lie under or above batch_prefix"),
    ({"subnet_ids": ["subnet-0123456789abcdef0"]}, "With subnet_ids, set vpc_id too"),
]


class TestModulePlan:
    pytestmark = needs_plans

    def test_good_inputs_plan_the_application_role_and_log_group(self, module_plans):
        result = module_plans()
        assert result.returncode == 0, result.stderr
        plan = module_plans.show()
        assert created(plan) == {
            "module.spark.aws_emrserverless_application.this",
            "module.spark.aws_iam_role.execution",
            "module.spark.aws_iam_role_policy.execution",
            "module.spark.aws_cloudwatch_log_group.this",
        }
        (app,) = [c for c in plan["resource_changes"] if c["type"] == "aws_emrserverless_application"]
        after = app["change"]["after"]
        capacity = after["maximum_capacity"][0]
        assert (capacity["cpu"], capacity["memory"]) == ("8 vCPU", "32 GB")
        assert after["auto_stop_configuration"] == [{"enabled": True, "idle_timeout_minutes": 15}]
        assert after["network_configuration"] == []

    def test_the_planned_policy_grants_least_s3_access(self, module_plans):
        assert module_plans().returncode == 0
        policy = policy_of(module_plans.show(), "aws_iam_role_policy", "execution")
        bucket = f"arn:aws:s3:::{BUCKET}"
        s3_statements = []
        for statement in policy["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            found = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            assert statement["Effect"] == "Allow"
            assert "*" not in found
            if any(a.startswith("s3:") for a in actions):
                assert not any("*" in a for a in actions), actions
                assert all(r == bucket or r.startswith(f"{bucket}/") for r in found), found
                s3_statements.append((set(actions), set(found), statement.get("Condition")))
        written = {r for actions, found, _ in s3_statements if "s3:PutObject" in actions for r in found}
        assert written == {f"{bucket}/results/driftloop-model/*"}
        read = {r for actions, found, _ in s3_statements if "s3:GetObject" in actions for r in found}
        assert read == {
            f"{bucket}/mlflow/*",
            f"{bucket}/inbox/driftloop-model/*",
            f"{bucket}/spark/*",
            f"{bucket}/results/driftloop-model/*",
        }
        (listing,) = [cond for actions, _, cond in s3_statements if "s3:ListBucket" in actions]
        prefixes = listing["StringLike"]["s3:prefix"]
        assert sorted(prefixes if isinstance(prefixes, list) else [prefixes]) == sorted(
            ["mlflow/*", "inbox/driftloop-model/*", "spark/*", "results/driftloop-model/*"]
        )
        logs = [s for s in policy["Statement"] if s["Sid"] == "WriteJobLogs"][0]["Resource"]
        assert "arn:aws:logs:us-east-1:123456789012:log-group:/aws/emr-serverless/driftloop" in logs

    def test_subnets_add_a_security_group_and_an_s3_endpoint(self, module_plans):
        result = module_plans(
            subnet_ids=["subnet-0123456789abcdef0"],
            vpc_id="vpc-0123456789abcdef0",
            s3_endpoint_route_table_ids=["rtb-0123456789abcdef0"],
        )
        assert result.returncode == 0, result.stderr
        added = created(module_plans.show())
        assert {
            "module.spark.aws_security_group.this[0]",
            "module.spark.aws_vpc_security_group_egress_rule.https[0]",
            "module.spark.aws_vpc_endpoint.s3[0]",
        } <= added

    @pytest.mark.parametrize("cases", [BAD_VARIABLES, BAD_COMBINATIONS], ids=["variables", "preconditions"])
    def test_bad_inputs_are_refused(self, module_plans, cases):
        # One plan holds one call of the module per bad input: Terraform reports every refusal of a kind at
        # once (variable validations first; the preconditions only when every variable is valid), so each
        # message must appear as often as it has cases.
        result = module_plans.many([inputs for inputs, _ in cases])
        said = " ".join(result.stderr.split())
        assert result.returncode != 0
        for message in {message for _, message in cases}:
            expected = sum(1 for _, m in cases if m == message)
            assert said.count(message) >= expected, (message, result.stderr[-3000:])


# The AWS env as committed, with the rehearsal's emulator override, planned with the runner off and on.


@pytest.fixture(scope="module")
def env_plans(moto_endpoint, tmp_path_factory):
    script = load_rehearse_script()
    workdir = tmp_path_factory.mktemp("spark_env")
    inputs = {**script.REQUIRED_INPUTS, "artifact_bucket_name": BUCKET}
    env_dir = script.prepare(workdir, moto_endpoint, inputs)
    plans = Plans(env_dir)
    plans.init()
    cache: dict[tuple[str, ...], dict] = {}

    def plan(*args: str) -> dict:
        if args not in cache:
            result = plans.plan(f"-var-file={workdir / 'rehearse.tfvars.json'}", *args)
            assert result.returncode == 0, result.stderr
            cache[args] = plans.show()
        return cache[args]

    return plan


class TestEnvPlan:
    pytestmark = needs_plans

    def test_spark_off_by_default_plans_nothing_of_it(self, env_plans):
        plan = env_plans()
        addresses = {c["address"] for c in plan["resource_changes"]}
        assert not [a for a in addresses if "spark" in a]
        assert len(created(plan)) == ENV_RESOURCES_WITHOUT_SPARK
        for name in SPARK_OUTPUTS:
            change = plan["output_changes"][name]
            assert (change["after"], change["after_unknown"]) == (None, False), name

    def test_enable_spark_plans_the_application_role_and_log_group(self, env_plans):
        off = created(env_plans())
        on = created(env_plans("-var=enable_spark=true"))
        assert on - off == SPARK_RESOURCES
        assert off <= on
        outputs = env_plans("-var=enable_spark=true")["output_changes"]
        assert outputs["spark_log_group_name"]["after"] == "/aws/emr-serverless/driftloop"
        for name in SPARK_OUTPUTS - {"spark_log_group_name"}:  # known after apply: the bucket's id, the application's
            assert outputs[name]["after_unknown"] is True, name

    def test_the_notification_topic_is_encrypted_and_mailed_only_on_request(self, env_plans):
        plan = env_plans()
        (topic,) = [c for c in plan["resource_changes"] if c["address"] == "module.notifications.aws_sns_topic.this"]
        assert topic["change"]["actions"] == ["create"]
        assert topic["change"]["after"]["kms_master_key_id"] == "alias/aws/sns"
        assert topic["change"]["after"]["name"] == "driftloop-notifications"
        assert not [a for a in created(plan) if "aws_sns_topic_subscription" in a]
        mailed = created(env_plans("-var=notification_email=oncall@example.com"))
        assert mailed - created(plan) == {"module.notifications.aws_sns_topic_subscription.email[0]"}

    def test_spark_in_vpc_adds_the_workers_group_and_an_s3_endpoint(self, env_plans):
        off = created(env_plans())
        on = created(env_plans("-var=enable_spark=true", "-var=spark_in_vpc=true"))
        assert on - off == SPARK_RESOURCES | SPARK_VPC_RESOURCES
