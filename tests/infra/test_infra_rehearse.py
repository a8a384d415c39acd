"""The emulator override of `make infra-rehearse`, the re-plan rule it applies, and the network fixes
the rehearsal led to. Static and fast: the rehearsal itself (about 7 minutes) runs in CI after
`make test`, not here."""

import gzip
import importlib.util
import json
import re
from pathlib import Path

import pytest
from tfconfig import ENVS, INFRA, MODULES, ROOT, load_dir, load_file, named_blocks, resources

REHEARSE = INFRA / "rehearse"
OVERRIDE = REHEARSE / "emulator_override.tf"
NETWORK = MODULES / "network"
IAM_NAME_PREFIX_LIMIT = 38  # IAM role name_prefix: 64 characters minus the provider's 26-character suffix

# What the override may set, and nothing more.
PROVIDER_SETTINGS = {
    "access_key": "test",
    "secret_key": "test",  # pragma: allowlist secret (moto's fake key)
    "skip_credentials_validation": True,
    "skip_metadata_api_check": True,
    "s3_use_path_style": True,
}
MODULE_SETTINGS = {
    "network": {"availability_zones": ["us-east-1a", "us-east-1b"]},
    "tracking_host": {
        "ami_id": "ami-785db401",
        "enable_detailed_monitoring": False,
        "associate_public_ip_address": True,
    },
}

# The endpoint each AWS resource or data source type of the modules is served by. Types absent here
# and from LOCAL_TYPES fail the coverage test, so a new service cannot reach AWS from the rehearsal.
SERVICE_OF_PREFIX = {
    "aws_db_": "rds",
    "aws_emrserverless_": "emrserverless",
    "aws_caller_identity": "sts",
    "aws_iam_": "iam",
    "aws_s3_": "s3",
    "aws_secretsmanager_": "secretsmanager",  # pragma: allowlist secret (a service name)
    "aws_cloudwatch_log_": "logs",
    "aws_cloudwatch_metric_alarm": "cloudwatch",
    "aws_ssm_": "ssm",
    "aws_sns_": "sns",
    "aws_kms_": "kms",
    "aws_vpc": "ec2",
    "aws_subnet": "ec2",
    "aws_security_group": "ec2",
    "aws_default_security_group": "ec2",
    "aws_internet_gateway": "ec2",
    "aws_nat_gateway": "ec2",
    "aws_eip": "ec2",
    "aws_route_table": "ec2",
    "aws_flow_log": "ec2",
    "aws_instance": "ec2",
    "aws_availability_zones": "ec2",
}
LOCAL_TYPES = {"aws_iam_policy_document", "aws_partition", "aws_region"}


def plain(block: dict) -> dict:
    return {k: v for k, v in block.items() if k != "__comments__"}


def override() -> dict:
    return load_file(OVERRIDE)


def load_rehearse_script():
    spec = importlib.util.spec_from_file_location("rehearse", REHEARSE / "rehearse.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the override ---------------------------------------------------------------------------------


def test_override_is_a_terraform_override_file():
    assert OVERRIDE.name.endswith("_override.tf")
    assert set(plain(override())) == {"terraform", "provider", "module"}


def test_override_replaces_the_remote_backend_with_local_state_only():
    (terraform,) = override()["terraform"]
    assert plain(terraform) == {"backend": [{"local": {}}]}


def test_override_provider_sets_only_the_emulator_settings():
    (provider,) = override()["provider"]
    aws = plain(provider["aws"])
    endpoints = aws.pop("endpoints")
    assert aws == PROVIDER_SETTINGS, "region and everything else stay as the AWS env sets them"
    assert len(endpoints) == 1
    assert set(plain(endpoints[0]).values()) == {"MOTO_ENDPOINT"}


def module_types(module) -> set[str]:
    blocks = load_dir(module)
    return {rtype for kind in ("resource", "data") for block in blocks.get(kind, []) for rtype in block}


def test_every_service_of_the_stack_points_at_the_emulator():
    (provider,) = override()["provider"]
    served = set(plain(provider["aws"]["endpoints"][0]))
    needed = {"sts"}  # the provider asks STS for the account id
    for module in sorted(MODULES.iterdir()):
        for rtype in sorted(module_types(module) - LOCAL_TYPES):
            services = [s for prefix, s in SERVICE_OF_PREFIX.items() if rtype.startswith(prefix)]
            assert services, f"{rtype} in {module.name}: which endpoint serves it? add it to the override"
            needed.add(services[0])
    assert needed <= served, f"not pointed at the emulator: {sorted(needed - served)}"


def test_override_modules_set_only_the_emulator_differences():
    modules = {name: plain(body) for block in override()["module"] for name, body in block.items()}
    assert modules == MODULE_SETTINGS


def test_override_modules_and_arguments_exist_in_the_aws_env():
    calls = named_blocks(ENVS / "aws", "module")
    for name, settings in MODULE_SETTINGS.items():
        assert name in calls, f"the AWS env has no module {name} to override"
        declared = named_blocks(INFRA / "modules" / name, "variable")
        assert set(settings) <= set(declared), f"module {name} does not declare {set(settings) - set(declared)}"


def test_override_ami_is_one_moto_ships():
    moto = pytest.importorskip("moto")
    with gzip.open(Path(moto.__file__).parent / "ec2" / "resources" / "amis.json.gz") as handle:
        known = {ami["ami_id"]: ami for ami in json.load(handle)}
    ami_id = MODULE_SETTINGS["tracking_host"]["ami_id"]
    assert ami_id in known
    assert "ubuntu" in known[ami_id]["name"], "cloud-init expects apt: keep the stand-in an Ubuntu image"


# --- the re-plan rule -----------------------------------------------------------------------------


def change(address: str, actions: list[str], before: dict, after: dict) -> dict:
    return {"address": address, "change": {"actions": actions, "before": before, "after": after, "after_unknown": {}}}


def test_replan_accepts_the_known_moto_differences():
    script = load_rehearse_script()
    plan = {
        "resource_changes": [
            change(
                "module.metadata_db.aws_db_parameter_group.this",
                ["update"],
                {"name": "pg", "parameter": []},
                {"name": "pg", "parameter": [{"name": "rds.force_ssl", "value": "1"}]},
            ),
            change(
                "module.tracking_host.aws_instance.this",
                ["update"],
                {"id": "i-1", "vpc_security_group_ids": []},
                {"id": "i-1", "vpc_security_group_ids": ["sg-1"]},
            ),
            change("module.network.aws_vpc.this[0]", ["no-op"], {"id": "vpc-1"}, {"id": "vpc-1"}),
        ]
    }
    known, unexpected = script.check_replan(plan)
    assert unexpected == []
    assert len(known) == 2


@pytest.mark.parametrize(
    ("address", "actions", "before", "after"),
    [
        # another attribute of an allowed resource
        (
            "module.tracking_host.aws_instance.this",
            ["update"],
            {"instance_type": "t3.small"},
            {"instance_type": "t3.medium"},
        ),
        # the allowed attribute, but the resource is replaced
        ("module.metadata_db.aws_db_parameter_group.this", ["delete", "create"], {"parameter": []}, {"parameter": [1]}),
        # any other resource
        ("module.artifact_store.aws_s3_bucket.this", ["update"], {"tags": {}}, {"tags": {"a": "b"}}),
    ],
)
def test_replan_fails_on_any_other_change(address, actions, before, after):
    script = load_rehearse_script()
    _, unexpected = script.check_replan({"resource_changes": [change(address, actions, before, after)]})
    assert len(unexpected) == 1 and address in unexpected[0]


def test_replan_fails_on_an_output_change():
    script = load_rehearse_script()
    _, unexpected = script.check_replan({"output_changes": {"tracking_uri": {"actions": ["update"]}}})
    assert unexpected == ["output tracking_uri: update"]


def test_allowed_replan_differences_name_real_resources_and_attributes():
    script = load_rehearse_script()
    for address, attributes in script.ALLOWED_REPLAN_CHANGES.items():
        _, module, rtype, name = re.fullmatch(r"(module\.(\w+)\.)(\w+)\.(\w+)", address).groups()
        body = resources(MODULES / module, rtype).get(name)
        assert body is not None, f"{address} does not exist"
        for attribute in attributes:
            assert attribute in body, f"{address} does not set {attribute}"


# --- the network fixes ----------------------------------------------------------------------------


def longest_valid(directory, variable: str) -> str:
    """The longest value the variable's validation regex accepts, built from letters."""
    condition = named_blocks(directory, "variable")[variable]["validation"][0]["condition"]
    pattern = re.search(r'regex\("(.+?)", var\.' + variable, condition).group(1).replace("\\\\", "\\")
    lengths = [n for n in range(1, 256) if re.fullmatch(pattern, "a" * n)]
    assert lengths, f"no all-letter value passes {pattern}"
    return "a" * max(lengths)


def render_name_prefix(expression: str, variable: str, value: str) -> str:
    def substitute(match: re.Match) -> str:
        if match.group("start") is not None:
            start, length = int(match.group("start")), int(match.group("length"))
            return value[start : start + length]
        return value

    interpolation = rf"\$\{{(?:substr\(var\.{variable},\s*(?P<start>\d+),\s*(?P<length>\d+)\)|var\.{variable})\}}"
    rendered = re.sub(interpolation, substitute, expression)
    assert "${" not in rendered, f"cannot evaluate {expression}"
    return rendered


def test_flow_log_role_name_prefix_fits_iam_for_the_longest_valid_name():
    name = longest_valid(NETWORK, "name")
    assert len(name) == 32
    expression = resources(NETWORK, "aws_iam_role")["flow_log"]["name_prefix"]
    prefix = render_name_prefix(expression, "name", name)
    assert len(prefix) <= IAM_NAME_PREFIX_LIMIT, f"{prefix!r} is {len(prefix)} characters"


@pytest.mark.parametrize(
    ("module", "rtype", "name", "variable"),
    [
        ("network", "aws_iam_role", "flow_log", "name"),
        ("tracking_host", "aws_iam_role", "host", "name"),
        ("tracking_host", "aws_iam_instance_profile", "host", "name"),
        ("metadata_db", "aws_iam_role", "monitoring", "identifier"),
        ("spark_runner", "aws_iam_role", "execution", "name"),
    ],
)
def test_every_iam_name_prefix_fits_for_the_longest_valid_input(module, rtype, name, variable):
    directory = MODULES / module
    expression = resources(directory, rtype)[name]["name_prefix"]
    prefix = render_name_prefix(expression, variable, longest_valid(directory, variable))
    assert len(prefix) <= IAM_NAME_PREFIX_LIMIT, f"{module}.{rtype}.{name}: {prefix!r}"


def test_network_refuses_fewer_zones_than_az_count():
    zones = resources(NETWORK, "aws_availability_zones", kind="data")["available"]
    conditions = [c for lifecycle in zones["lifecycle"] for c in lifecycle.get("postcondition", [])]
    assert len(conditions) == 1
    assert "length(self.names) >= var.az_count" in conditions[0]["condition"]
    assert "az_count" in conditions[0]["error_message"]


def test_ci_runs_the_tests_then_the_rehearsal():
    commands = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.startswith("make")]
    assert commands == ["make test", "make infra-rehearse"]


def test_outputs_name_the_root_inbox_and_each_model_s_folder():
    check_outputs = load_rehearse_script().check_outputs
    bucket = "driftloop-artifacts"
    good = {
        "inbox_uri": f"s3://{bucket}/inbox/",
        "model_names": ["driftloop-model"],
        "model_inbox_uris": {"driftloop-model": f"s3://{bucket}/inbox/driftloop-model/"},
    }
    problems = check_outputs({name: {"value": value} for name, value in good.items()}, bucket)
    assert not [p for p in problems if any(name in p for name in good)], problems
    bad = {**good, "inbox_uri": f"s3://{bucket}/inbox/driftloop-model/", "model_names": ["other"]}
    problems = check_outputs({name: {"value": value} for name, value in bad.items()}, bucket)
    assert "output inbox_uri has an unexpected value 's3://driftloop-artifacts/inbox/driftloop-model/'" in problems
    assert "output model_names has an unexpected value ['other']" in problems
