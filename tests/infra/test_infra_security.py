"""The security properties of the stack, one test each, asserted on the parsed configuration."""

import re

import hcl2
from tfconfig import (
    ENVS,
    INFRA,
    MODULES,
    all_resources,
    first,
    load_dir,
    locals_of,
    named_blocks,
    resources,
    tf_files,
)

NETWORK = MODULES / "network"
STORE = MODULES / "artifact_store"
DB = MODULES / "metadata_db"
HOST = MODULES / "tracking_host"


def host_instance():
    return resources(HOST, "aws_instance")["this"]


def db_instance():
    return resources(DB, "aws_db_instance")["this"]


def variable(directory, name):
    return named_blocks(directory, "variable")[name]


def policy_statements(directory, document):
    return resources(directory, "aws_iam_policy_document", kind="data")[document]["statement"]


# --- tracking host -------------------------------------------------------------------------------


def test_imdsv2_required():
    options = first(host_instance()["metadata_options"])
    assert options["http_tokens"] == "required"
    assert options["http_put_response_hop_limit"] == 1


def test_root_volume_encrypted():
    root = first(host_instance()["root_block_device"])
    assert root["encrypted"] is True


def test_host_ebs_optimised():
    assert host_instance()["ebs_optimized"] is True


def test_no_ssh_key_by_default():
    assert host_instance()["key_name"] == "${var.key_name}"
    assert variable(HOST, "key_name")["default"] is None
    assert variable(ENVS / "aws", "key_name")["default"] is None


def test_ssm_session_manager_instead_of_ssh():
    # A policy of our own with what the agent needs for Session Manager, not AmazonSSMManagedInstanceCore
    # (ssm:GetParameter(s), ssmmessages:*, ec2messages:* on every resource).
    assert not resources(HOST, "aws_iam_role_policy_attachment"), "no managed policy on the host's role"
    policy = resources(HOST, "aws_iam_role_policy")["session_manager"]
    assert policy["policy"] == "${data.aws_iam_policy_document.session_manager.json}"
    statements = {s["sid"]: s for s in policy_statements(HOST, "session_manager")}
    assert statements["RegisterThisInstance"]["actions"] == ["ssm:UpdateInstanceInformation"]
    (instances,) = statements["RegisterThisInstance"]["resources"]
    assert instances.endswith(":instance/*") and ":ec2:" in instances
    assert set(statements["OpenSessionChannels"]["actions"]) == {
        "ssmmessages:CreateControlChannel",
        "ssmmessages:CreateDataChannel",
        "ssmmessages:OpenControlChannel",
        "ssmmessages:OpenDataChannel",
    }
    ports = [rule["from_port"] for rule in resources(NETWORK, "aws_vpc_security_group_ingress_rule").values()]
    assert 22 not in ports


def test_no_ingress_to_the_host_by_default():
    """The AWS env opens no port: it passes no allowed_cidrs, so the network module makes no ingress rule."""
    assert variable(NETWORK, "allowed_cidrs")["default"] == []
    assert "allowed_cidrs" not in named_blocks(ENVS / "aws", "variable")
    call = named_blocks(ENVS / "aws", "module")["network"]
    assert "allowed_cidrs" not in call


def test_no_public_address_by_default():
    instance = host_instance()
    assert instance["associate_public_ip_address"] == "${var.associate_public_ip_address}"
    assert variable(HOST, "associate_public_ip_address")["default"] is False
    assert variable(ENVS / "aws", "host_public_ip")["default"] is False
    call = named_blocks(ENVS / "aws", "module")["tracking_host"]
    assert call["associate_public_ip_address"] == "${var.host_public_ip}"
    # Without a public address the host sits in a subnet whose egress goes through the NAT gateway.
    assert call["subnet_id"] == (
        "${var.host_public_ip ? module.network.public_subnet_ids[0] : module.network.host_subnet_ids[0]}"
    )
    assert named_blocks(ENVS / "aws", "module")["network"]["create_nat_gateway"] == "${!var.host_public_ip}"
    route = first(resources(NETWORK, "aws_route_table")["host"]["route"])
    assert route["nat_gateway_id"] == "${aws_nat_gateway.this[0].id}" and "gateway_id" not in route
    assert resources(NETWORK, "aws_subnet")["host"].get("map_public_ip_on_launch") in (None, False)
    # No skip for CKV_AWS_88 (EC2 with a public IP) any more.
    assert "CKV_AWS_88" not in (HOST / "main.tf").read_text()


def test_services_are_reached_through_ssm_port_forwarding():
    outputs = named_blocks(HOST, "output")
    for service in ("mlflow", "grafana"):
        command = outputs[f"{service}_port_forward_command"]["value"]
        assert command.startswith("aws ssm start-session --target ${aws_instance.this.id}")
        assert "--document-name AWS-StartPortForwardingSession" in command
        port = f'${{var.service_ports["{service}"]}}'
        assert f"--parameters portNumber={port},localPortNumber={port}" in command
    assert outputs["tracking_uri"]["value"] == 'http://localhost:${var.service_ports["mlflow"]}'
    assert outputs["grafana_url"]["value"] == 'http://localhost:${var.service_ports["grafana"]}'
    assert "public_dns" not in outputs and "adminer_url" not in outputs
    env_outputs = named_blocks(ENVS / "aws", "output")
    assert {"mlflow_port_forward_command", "grafana_port_forward_command"} <= set(env_outputs)
    assert "adminer_url" not in env_outputs, "Adminer is not served on AWS"


def test_basic_auth_on_by_default():
    assert variable(HOST, "enable_basic_auth")["default"] is True
    assert variable(ENVS / "aws", "enable_basic_auth")["default"] is True
    call = named_blocks(ENVS / "aws", "module")["tracking_host"]
    assert call["enable_basic_auth"] == "${var.enable_basic_auth}"
    generated = load_dir(HOST)["locals"][0]["generated_secrets"]
    for secret in ("grafana-admin", "grafana-secret-key", "mlflow-admin", "mlflow-monitor"):
        assert f'"{secret}"' in generated, secret


def test_the_network_module_refuses_wide_cidrs():
    # The rule (no prefix wider than /16 outside the private ranges, IPv4 only, at most 20) lives in the network
    # module, for whoever opens an ingress; tests/infra/test_infra_validation.py runs it against good and bad lists.
    module_conditions = " ".join(v["condition"] for v in variable(NETWORK, "allowed_cidrs")["validation"])
    assert ">= 16" in module_conditions and "<= 20" in module_conditions


def test_host_ingress_only_from_allowed_cidrs_on_service_ports():
    rules = resources(NETWORK, "aws_vpc_security_group_ingress_rule")
    host_rules = [r for r in rules.values() if "aws_security_group.host" in r["security_group_id"]]
    assert host_rules
    for rule in host_rules:
        assert rule["for_each"] == "${local.host_ingress}"
        assert rule["cidr_ipv4"] == "${each.value.cidr}"
        assert rule["from_port"] == rule["to_port"] == "${each.value.port}"
    local = load_dir(NETWORK)["locals"][0]["host_ingress"]
    assert "setproduct(keys(var.service_ports), var.allowed_cidrs)" in local
    assert set(variable(NETWORK, "service_ports")["default"]) == {"mlflow", "grafana", "adminer"}
    assert not list(resources(NETWORK, "aws_security_group_rule"))


def host_statements():
    document = resources(HOST, "aws_iam_policy_document", kind="data")["host"]
    statements = list(document["statement"])
    statements += [first(d["statement"]["content"]) for d in document.get("dynamic", [])]
    return document, statements


def test_instance_profile_least_privilege():
    document, statements = host_statements()
    for statement in statements:
        assert statement.get("effect", "Allow") == "Allow"
        for action in statement["actions"]:
            assert "*" not in action, f"wildcard action {action}"
        found = statement["resources"]
        if isinstance(found, str) and found.startswith("${[for prefix in "):  # objects under each prefix
            assert found.endswith('${prefix}*"]}'), found
        elif statement["sid"] == "PutHeartbeat":  # PutMetricData has no resource type: confined by its namespace
            (condition,) = statement["condition"]
            assert (condition["test"], condition["variable"]) == ("StringEquals", "cloudwatch:namespace")
            assert condition["values"] == ["${statement.value}"] and found == ["*"]
        else:
            assert "*" not in found or found == ["${local.bucket_objects}${local.mlflow_artifacts_prefix}*"], found
    by_sid = {s["sid"]: s for s in statements}
    assert by_sid["LocateBucket"] == {
        "sid": "LocateBucket",
        "actions": ["s3:GetBucketLocation"],
        "resources": ["${var.artifact_bucket_arn}"],
    }
    assert by_sid["ReadDatabaseSecret"]["resources"] == ["${var.db_secret_arn}"]
    assert "aws_secretsmanager_secret.generated" in by_sid["FillGeneratedSecrets"]["resources"]
    assert set(by_sid["UseCustomerKeys"]["actions"]) == {"kms:Decrypt", "kms:GenerateDataKey"}
    assert by_sid["PublishNotifications"]["actions"] == ["sns:Publish"]
    assert by_sid["PublishNotifications"]["resources"] == ["${statement.value}"]
    (publish,) = [d for d in document["dynamic"] if first(d["statement"]["content"])["sid"] == "PublishNotifications"]
    assert publish["statement"]["for_each"] == "${var.notify_sns_topic_arn == null ? [] : [var.notify_sns_topic_arn]}"
    assert by_sid["PutHeartbeat"]["actions"] == ["cloudwatch:PutMetricData"]
    (beat,) = [d for d in document["dynamic"] if first(d["statement"]["content"])["sid"] == "PutHeartbeat"]
    assert beat["statement"]["for_each"] == '${local.heartbeat_namespace == "" ? [] : [local.heartbeat_namespace]}'
    services = {action.split(":")[0] for s in statements for action in s["actions"]}
    assert services == {"s3", "secretsmanager", "kms", "sns", "cloudwatch"}


def test_host_s3_access_is_scoped_to_its_prefixes():
    _, statements = host_statements()
    by_sid = {s["sid"]: s for s in statements}
    # Listing only under the host's prefixes.
    listing = by_sid["ListOwnPrefixes"]
    assert listing["actions"] == ["s3:ListBucket"]
    assert listing["resources"] == ["${var.artifact_bucket_arn}"]
    (condition,) = listing["condition"]
    assert (condition["test"], condition["variable"]) == ("StringLike", "s3:prefix")
    assert "concat(local.host_write_prefixes, local.host_read_prefixes)" in condition["values"]
    # Objects only under a prefix; nothing on the whole bucket.
    for statement in statements:
        if any(action.startswith("s3:") for action in statement["actions"]) and statement["sid"] != "LocateBucket":
            assert statement["resources"] != ["${var.artifact_bucket_arn}/*"], statement["sid"]
    assert by_sid["ReadInboxAndInputs"]["actions"] == ["s3:GetObject"]
    assert "local.host_read_prefixes" in by_sid["ReadInboxAndInputs"]["resources"]
    assert "local.host_write_prefixes" in by_sid["ReadWriteArtifactsAndPredictions"]["resources"]
    # Only MLflow's artifacts may be deleted.
    deleters = [sid for sid, s in by_sid.items() if "s3:DeleteObject" in s["actions"]]
    assert deleters == ["DeleteMlflowArtifacts"]
    assert by_sid["DeleteMlflowArtifacts"]["resources"] == ["${local.bucket_objects}${local.mlflow_artifacts_prefix}*"]
    writers = [sid for sid, s in by_sid.items() if {"s3:PutObject", "s3:DeleteObject"} & set(s["actions"])]
    assert sorted(writers) == ["DeleteMlflowArtifacts", "ReadWriteArtifactsAndPredictions"]


def test_host_writes_where_the_package_writes_and_not_the_spark_code():
    host = locals_of(HOST)
    assert host["host_write_prefixes"] == ["${local.mlflow_artifacts_prefix}", "${local.prediction_log_prefix}"]
    # MLflow's --artifacts-destination and the package's default prediction log.
    server = (HOST / "templates" / "mlflow-server.sh").read_text()
    destination = re.search(r'--artifacts-destination "s3://\$DRIFTLOOP_ARTIFACT_BUCKET/([^"]+)"', server).group(1)
    assert host["mlflow_artifacts_prefix"] == f"{destination}/"
    settings = (INFRA.parent / "pipeline" / "settings" / "__init__.py").read_text()
    assert 'f"s3://{self.artifact_bucket}/predictions"' in settings
    assert host["prediction_log_prefix"] == "predictions/"
    assert host["host_read_prefixes"] == "${distinct(concat([local.inbox_key_prefix], var.read_prefixes))}"
    # The Spark job's code is the operator's to upload: the host neither writes nor reads it.
    spark_call = named_blocks(ENVS / "aws", "module")["spark_runner"]
    code = spark_call["code_prefix"]
    for prefix in (host["mlflow_artifacts_prefix"], host["prediction_log_prefix"]):
        assert not prefix.startswith(code) and not code.startswith(prefix)
    host_call = named_blocks(ENVS / "aws", "module")["tracking_host"]
    assert host_call["read_prefixes"] == (
        "${concat(var.host_read_prefixes, var.enable_spark ? [local.spark_results_prefix] : [])}"
    )
    assert code not in variable(ENVS / "aws", "host_read_prefixes")["default"]


# --- every policy of ours --------------------------------------------------------------------------


def all_policy_documents():
    """(directory, name, document) of every aws_iam_policy_document under infra/."""
    for directory in sorted({p.parent for p in tf_files()}):
        for name, document in resources(directory, "aws_iam_policy_document", kind="data").items():
            yield directory, name, document


def statements_of(document):
    statements = list(document.get("statement", []))
    statements += [first(d["statement"]["content"]) for d in document.get("dynamic", []) if "statement" in d]
    return statements


def comments_of(document, statement):
    return " ".join(c["value"] for c in document.get("__comments__", []) + statement.get("__comments__", []))


def test_no_wildcard_in_a_policy_of_ours_without_a_written_reason():
    """An action with a * (s3:*, ssmmessages:*) or a resource "*" needs a comment next to it naming it and why."""
    seen = 0
    for directory, name, document in all_policy_documents():
        for statement in statements_of(document):
            seen += 1
            comments = comments_of(document, statement)
            actions = statement.get("actions", [])
            for action in actions if isinstance(actions, list) else [actions]:
                if "*" in action:
                    assert statement.get("effect") == "Deny", f"{directory.name}/{name}: Allow of {action}"
                    assert f'"{action}"' in comments and len(comments) > 60, f"{directory.name}/{name}: {action}"
            if statement.get("resources") == ["*"]:
                assert 'Resource "*"' in comments and len(comments) > 60, f"{directory.name}/{name}: resource *"
    assert seen > 15


def test_every_trust_policy_is_conditioned_on_the_source_account():
    """No confused deputy: each role's service trust names this account in aws:SourceAccount."""
    roles = 0
    for directory in sorted({p.parent for p in tf_files()}):
        documents = resources(directory, "aws_iam_policy_document", kind="data")
        for role_name, role in resources(directory, "aws_iam_role").items():
            roles += 1
            match = re.fullmatch(r"\$\{data\.aws_iam_policy_document\.(\w+)\.json\}", role["assume_role_policy"])
            assert match, f"{directory.name}/{role_name}: trust policy not from a policy document"
            for statement in documents[match.group(1)]["statement"]:
                conditions = {c["variable"]: c for c in statement.get("condition", [])}
                assert "aws:SourceAccount" in conditions, f"{directory.name}/{role_name}: no aws:SourceAccount"
                source = conditions["aws:SourceAccount"]
                assert source["values"] == ["${data.aws_caller_identity.current.account_id}"]
                (service,) = first(statement["principals"])["identifiers"]
                if service == "ec2.amazonaws.com":
                    # EC2 does not document the key for instance credentials: IfExists, with the reason written.
                    assert source["test"] == "StringEqualsIfExists"
                    assert "iam:PassRole" in comments_of({}, statement)
                else:
                    assert source["test"] == "StringEquals"
                    assert conditions["aws:SourceArn"]["test"] == "ArnLike", f"{directory.name}/{role_name}"
    assert roles == 4  # host, flow log, RDS monitoring, Spark execution


# --- metadata database ---------------------------------------------------------------------------


def test_rds_not_publicly_accessible():
    assert db_instance()["publicly_accessible"] is False


def test_rds_storage_encrypted():
    assert db_instance()["storage_encrypted"] is True


def test_rds_manage_master_user_password():
    instance = db_instance()
    assert instance["manage_master_user_password"] is True
    assert "password" not in instance
    for directory in (DB, ENVS / "aws"):
        assert not [v for v in named_blocks(directory, "variable") if "password" in v]


def test_rds_ca_rsa2048_g1():
    assert db_instance()["ca_cert_identifier"] == "${var.ca_cert_identifier}"
    assert variable(DB, "ca_cert_identifier")["default"] == "rds-ca-rsa2048-g1"


def test_rds_deletion_protection_on_by_default():
    assert db_instance()["deletion_protection"] == "${var.deletion_protection}"
    assert variable(DB, "deletion_protection")["default"] is True
    assert variable(ENVS / "aws", "db_deletion_protection")["default"] is True
    assert variable(DB, "skip_final_snapshot")["default"] is False


def test_rds_backups_on():
    retention = variable(DB, "backup_retention_period")
    assert retention["default"] >= 1
    assert "var.backup_retention_period >= 1" in retention["validation"][0]["condition"]


def test_rds_log_exports_on():
    assert "postgresql" in variable(DB, "enabled_cloudwatch_logs_exports")["default"]


def test_rds_in_private_subnets():
    call = named_blocks(ENVS / "aws", "module")["metadata_db"]
    assert call["subnet_ids"] == "${module.network.private_subnet_ids}"
    private_routes = resources(NETWORK, "aws_route_table")["private"]
    assert "route" not in private_routes, "private subnets must not route to the internet"


def test_rds_ingress_only_from_host_security_group():
    rules = resources(NETWORK, "aws_vpc_security_group_ingress_rule")
    db_rules = [r for r in rules.values() if "aws_security_group.db" in r["security_group_id"]]
    assert len(db_rules) == 1
    assert db_rules[0]["referenced_security_group_id"] == "${aws_security_group.host.id}"
    assert "cidr_ipv4" not in db_rules[0]
    call = named_blocks(ENVS / "aws", "module")["metadata_db"]
    assert call["vpc_security_group_ids"] == ["${module.network.db_security_group_id}"]


def test_rds_forces_tls():
    params = {p["name"]: p["value"] for p in resources(DB, "aws_db_parameter_group")["this"]["parameter"]}
    assert params["rds.force_ssl"] == "1"


# --- artifact store ------------------------------------------------------------------------------


def test_bucket_tls_only_policy():
    statements = policy_statements(STORE, "tls_only")
    deny = [s for s in statements if s["effect"] == "Deny" and s["actions"] == ["s3:*"]]
    conditions = {(first(s["condition"])["variable"], tuple(first(s["condition"])["values"])) for s in deny}
    assert ("aws:SecureTransport", ("false",)) in conditions
    policy = resources(STORE, "aws_s3_bucket_policy")["this"]
    assert policy["policy"] == "${data.aws_iam_policy_document.tls_only[0].json}"
    assert variable(STORE, "attach_deny_insecure_transport_policy")["default"] is True
    # Only the emulator env turns it off, and only while it points at the emulator.
    aws_call = named_blocks(ENVS / "aws", "module")["artifact_store"]
    assert "attach_deny_insecure_transport_policy" not in aws_call
    local_call = named_blocks(ENVS / "localstack", "module")["artifact_store"]
    assert local_call["attach_deny_insecure_transport_policy"] == "${!var.use_local_endpoints}"


def test_bucket_public_access_blocks():
    block = resources(STORE, "aws_s3_bucket_public_access_block")["this"]
    for flag in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"):
        assert block[flag] is True, flag


def test_bucket_ownership_enforced():
    rule = first(resources(STORE, "aws_s3_bucket_ownership_controls")["this"]["rule"])
    assert rule["object_ownership"] == "BucketOwnerEnforced"


def test_bucket_versioning():
    config = first(resources(STORE, "aws_s3_bucket_versioning")["this"]["versioning_configuration"])
    assert config["status"] == "Enabled"


def test_bucket_default_encryption():
    sse = resources(STORE, "aws_s3_bucket_server_side_encryption_configuration")["this"]
    default = first(first(sse["rule"])["apply_server_side_encryption_by_default"])
    assert default["sse_algorithm"] == "aws:kms"


def test_bucket_noncurrent_version_expiry():
    rule = first(resources(STORE, "aws_s3_bucket_lifecycle_configuration")["this"]["rule"])
    assert rule["status"] == "Enabled"
    assert first(rule["noncurrent_version_expiration"])["noncurrent_days"] == (
        "${var.noncurrent_version_expiration_days}"
    )
    assert variable(STORE, "noncurrent_version_expiration_days")["default"] > 0


def test_raw_data_expires():
    rules = resources(STORE, "aws_s3_bucket_lifecycle_configuration")["this"]
    (expiring,) = rules["dynamic"]
    assert expiring["rule"]["for_each"] == "${toset(var.expiring_prefixes)}"
    content = first(expiring["rule"]["content"])
    assert first(content["filter"])["prefix"] == "${rule.value}"
    assert first(content["expiration"])["days"] == "${var.expiration_days}"
    assert variable(STORE, "expiring_prefixes")["default"] == []  # the module alone expires nothing
    call = named_blocks(ENVS / "aws", "module")["artifact_store"]
    assert call["expiring_prefixes"] == "${local.raw_data_prefixes}"
    assert call["expiration_days"] == "${var.raw_data_retention_days}"
    assert locals_of(ENVS / "aws")["raw_data_prefixes"] == ["${var.inbox_prefix}", "predictions/", "results/"]
    assert variable(ENVS / "aws", "raw_data_retention_days")["default"] == 365


def test_bucket_not_force_destroyed_by_default():
    assert variable(STORE, "force_destroy")["default"] is False


# --- network -------------------------------------------------------------------------------------


def test_default_security_group_denies_all():
    default = resources(NETWORK, "aws_default_security_group")["this"]
    assert "ingress" not in default and "egress" not in default


def test_vpc_flow_log_on():
    assert variable(NETWORK, "create_flow_log")["default"] is True
    assert resources(NETWORK, "aws_flow_log")["this"]["traffic_type"] == "ALL"


# --- secrets never in files, state outputs or tfvars ---------------------------------------------


def test_no_generated_passwords_in_state():
    for directory in {p.parent for p in tf_files()}:
        kinds = set(all_resources(directory))
        assert "random_password" not in kinds, directory
        assert "aws_secretsmanager_secret_version" not in kinds, directory


def test_outputs_carry_no_secret_values():
    for directory in {p.parent for p in tf_files()}:
        for name, body in named_blocks(directory, "output").items():
            value = str(body["value"])
            assert not re.search(r"secret_string|\.password\b|random_password", value), name
            if "password" in name or "secret" in name:
                assert name.endswith("_arn"), f"{name}: only secret ARNs may be output"
            assert body.get("sensitive") is not True, f"{name}: a sensitive output means a secret got in"


def test_example_tfvars_hold_no_secrets():
    for path in INFRA.rglob("*.tfvars*"):
        text = path.read_text()
        assert not re.search(r"(?im)^\s*\w*(password|secret|token)\w*\s*=", text), path


# --- state and environments ----------------------------------------------------------------------


def test_s3_backend_with_lockfile():
    terraform = load_dir(ENVS / "aws")["terraform"][0]
    assert "s3" in first(terraform["backend"])
    # use_lockfile needs Terraform 1.10 or newer.
    assert int(re.fullmatch(r">= 1\.(\d+)", terraform["required_version"]).group(1)) >= 10
    with (ENVS / "aws" / "backend.hcl.example").open() as handle:
        example = hcl2.load(handle)
    assert example["use_lockfile"] is True
    assert example["encrypt"] is True


def test_localstack_uses_local_state():
    terraform = load_dir(ENVS / "localstack")["terraform"][0]
    assert "backend" not in terraform


def test_localstack_endpoints_switched_by_variable():
    provider = first(load_dir(ENVS / "localstack")["provider"])["aws"]
    for flag in (
        "s3_use_path_style",
        "skip_credentials_validation",
        "skip_metadata_api_check",
        "skip_requesting_account_id",
    ):
        assert provider[flag] == "${var.use_local_endpoints}", flag
    dynamic = first(provider["dynamic"])["endpoints"]
    assert dynamic["for_each"] == "${var.use_local_endpoints ? [var.endpoint_url] : []}"
    assert first(dynamic["content"])["s3"] == "${endpoints.value}"
    assert variable(ENVS / "localstack", "endpoint_url")["default"] == "http://localhost:4566"
    assert "access_key" not in provider and "secret_key" not in provider
