"""Module calls, variable and output references fit together (what `terraform validate` would say)."""

import pytest
from tfconfig import (
    ENV_NAMES,
    ENVS,
    MODULE_META_ARGUMENTS,
    MODULE_NAMES,
    MODULES,
    module_dir,
    named_blocks,
    references,
)


def module_calls():
    return [
        pytest.param(env, name, call, id=f"{env}.{name}")
        for env in ENV_NAMES
        for name, call in named_blocks(ENVS / env, "module").items()
    ]


@pytest.mark.parametrize(("env", "name", "call"), module_calls())
def test_module_call_passes_only_declared_variables(env, name, call):
    declared = set(named_blocks(module_dir(env, call), "variable"))
    passed = set(call) - MODULE_META_ARGUMENTS - {"__comments__"}
    assert passed <= declared, f"module.{name} passes undeclared {sorted(passed - declared)}"


@pytest.mark.parametrize(("env", "name", "call"), module_calls())
def test_module_call_passes_every_required_variable(env, name, call):
    variables = named_blocks(module_dir(env, call), "variable")
    required = {v for v, body in variables.items() if "default" not in body}
    missing = required - set(call)
    assert not missing, f"module.{name} misses required {sorted(missing)}"


@pytest.mark.parametrize(("env", "name", "call"), module_calls())
def test_module_source_is_one_of_ours(env, name, call):
    assert module_dir(env, call).parent == MODULES


@pytest.mark.parametrize("env", ENV_NAMES)
def test_referenced_module_outputs_exist(env):
    calls = named_blocks(ENVS / env, "module")
    for module, output in references(ENVS / env, r"module\.(\w+)\.(\w+)"):
        assert module in calls, f"module.{module} is referenced but not called"
        outputs = named_blocks(module_dir(env, calls[module]), "output")
        assert output in outputs, f"module.{module} has no output {output}"


@pytest.mark.parametrize(
    "directory", [MODULES / m for m in MODULE_NAMES] + [ENVS / e for e in ENV_NAMES], ids=lambda p: p.name
)
def test_referenced_variables_are_declared(directory):
    declared = set(named_blocks(directory, "variable"))
    used = {name for (name,) in references(directory, r"\bvar\.(\w+)")}
    assert used <= declared, f"{directory.name} uses undeclared {sorted(used - declared)}"


@pytest.mark.parametrize("module", MODULE_NAMES)
def test_every_module_variable_is_used(module):
    declared = set(named_blocks(MODULES / module, "variable"))
    used = {name for (name,) in references(MODULES / module, r"\bvar\.(\w+)")}
    assert declared <= used, f"{module} declares unused {sorted(declared - used)}"


def test_aws_env_uses_every_module():
    sources = {module_dir("aws", call).name for call in named_blocks(ENVS / "aws", "module").values()}
    assert sources == set(MODULE_NAMES)


def test_localstack_env_uses_the_same_artifact_store():
    sources = {module_dir("localstack", c).name for c in named_blocks(ENVS / "localstack", "module").values()}
    assert sources == {"artifact_store"}
