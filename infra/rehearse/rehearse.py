"""Rehearse infra/envs/aws against a throwaway moto server: apply, check, re-plan, destroy.

Run by `make infra-rehearse`. The AWS env is copied unchanged to a temporary directory with
emulator_override.tf next to it; the moto server listens on a free port of 127.0.0.1 and is
stopped by its PID at the end, whatever happened. Exit code 0 only when every step passed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
INFRA = HERE.parent
OVERRIDE = HERE / "emulator_override.tf"
ENDPOINT_TOKEN = "MOTO_ENDPOINT"

# The only differences a re-plan may show after the apply, by resource address and attribute; all
# come from moto, not from the configuration:
# - moto returns a parameter group's parameters without Source=user, and the provider reads back only
#   user parameters, so the five parameters look missing;
# - moto reports the instance's security groups on its network interface only, so the instance's
#   vpc_security_group_ids look empty;
# - moto keeps a security group rule's description only for CIDR rules (SecurityGroupRule.description
#   reads the IP range), so the two rules that reference the other group come back without theirs.
ALLOWED_REPLAN_CHANGES = {
    "module.metadata_db.aws_db_parameter_group.this": {"parameter"},
    "module.tracking_host.aws_instance.this": {"vpc_security_group_ids"},
    "module.network.aws_vpc_security_group_egress_rule.host_db": {"description"},
    "module.network.aws_vpc_security_group_ingress_rule.db_from_host": {"description"},
}

# Outputs that may be null: the Spark runner's outputs exist only with enable_spark (off by default, so the
# rehearsal creates none of it).
NULLABLE_OUTPUTS = {
    "spark_application_id",
    "spark_execution_role_arn",
    "spark_log_group_name",
    "spark_results_uri",
    "spark_code_uri",
}

# Inputs the AWS env requires; none of them is an emulator difference.
REQUIRED_INPUTS = {
    "project_git_url": "https://example.com/driftloop.git",
    "project_git_commit": "0123456789abcdef" * 2 + "01234567",  # a 40-hex commit id
}

# Files of a working copy that must not follow infra/ into the rehearsal.
COPY_IGNORE = shutil.ignore_patterns(
    ".terraform", "*.tfstate", "*.tfstate.*", "tfplan", "*.tfvars", "*.tfvars.json", "backend.hcl"
)


class RehearsalError(Exception):
    """A step failed; the message is the one line the user sees."""


class Clock:
    def __init__(self) -> None:
        self.start = time.monotonic()

    def elapsed(self) -> str:
        seconds = time.monotonic() - self.start
        return f"{int(seconds // 60)}:{seconds % 60:04.1f}"

    def say(self, message: str) -> None:
        print(f"[infra-rehearse {self.elapsed():>7}] {message}", flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_moto(moto_server: str, log_path: Path, clock: Clock) -> tuple[subprocess.Popen[bytes], str]:
    env = dict(os.environ, MOTO_IAM_LOAD_MANAGED_POLICIES="true")
    for _attempt in range(3):
        port = free_port()
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [moto_server, "-H", "127.0.0.1", "-p", str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break  # lost the port to someone else, or moto failed: try again or report
            try:
                with urllib.request.urlopen(f"{url}/moto-api/", timeout=2):
                    clock.say(f"moto server up on {url} (PID {process.pid})")
                    return process, url
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.3)
        stop_moto(process)
    tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
    raise RehearsalError(f"the moto server did not start: {tail[0]}")


def stop_moto(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def prepare(workdir: Path, endpoint: str, inputs: dict[str, Any]) -> Path:
    """Copy infra/ unchanged, add the override with the server's URL, write the inputs."""
    shutil.copytree(INFRA, workdir / "infra", ignore=COPY_IGNORE)
    env_dir = workdir / "infra" / "envs" / "aws"
    text = OVERRIDE.read_text()
    if ENDPOINT_TOKEN not in text:
        raise RehearsalError(f"{OVERRIDE.name} has no {ENDPOINT_TOKEN} to point at the moto server")
    (env_dir / OVERRIDE.name).write_text(text.replace(ENDPOINT_TOKEN, endpoint))
    (workdir / "rehearse.tfvars.json").write_text(json.dumps(inputs, indent=2))
    return env_dir


class Terraform:
    def __init__(self, binary: str, env_dir: Path, log_path: Path, var_file: Path) -> None:
        self.binary = binary
        self.env_dir = env_dir
        self.log_path = log_path
        self.var_file = var_file
        # Nothing of the caller's AWS or Terraform settings may reach the rehearsal.
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TF_VAR_", "TF_DATA_DIR", "TF_WORKSPACE"))
        }
        self.env.update(
            TF_IN_AUTOMATION="1",
            TF_INPUT="0",
            CHECKPOINT_DISABLE="1",
            AWS_EC2_METADATA_DISABLED="true",
        )

    def run(self, step: str, *args: str, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
        command = [self.binary, f"-chdir={self.env_dir}", *args]
        result = subprocess.run(command, env=self.env, capture_output=True, text=True)
        stdout = result.stdout if "-json" not in args else f"({len(result.stdout)} characters of JSON)\n"
        with self.log_path.open("a") as log:
            log.write(f"\n$ {' '.join(command)}\n{stdout}{result.stderr}")
        if result.returncode not in ok:
            raise RehearsalError(
                f"{step} failed (exit {result.returncode}): {first_error(result.stderr or result.stdout)}"
            )
        return result

    def vars(self, *extra: str) -> list[str]:
        return ["-input=false", "-no-color", f"-var-file={self.var_file}", *extra]


def first_error(output: str) -> str:
    lines = [line.strip(" │╷╵") for line in output.splitlines()]
    lines = [line.strip() for line in lines if line.strip()]
    for index, line in enumerate(lines):
        if line.startswith("Error:"):
            detail = " ".join(lines[index : index + 4])
            return detail[:400]
    return (lines[-1] if lines else "no output")[:400]


def check_outputs(outputs: dict[str, Any], bucket: str) -> list[str]:
    """Every output is set; the main ones have the shape AWS gives them."""
    problems = []
    values = {name: output.get("value") for name, output in outputs.items()}
    for name, value in sorted(values.items()):
        if name not in NULLABLE_OUTPUTS and value in (None, "", [], {}):
            problems.append(f"output {name} is empty")
    expectations = {
        "artifact_bucket": lambda v: v == bucket,
        "db_endpoint": lambda v: isinstance(v, str) and v.rpartition(":")[2].isdigit() and len(v) > 6,
        "instance_id": lambda v: isinstance(v, str) and v.startswith("i-"),
        "tracking_uri": lambda v: v == "http://localhost:5000",
        "grafana_url": lambda v: v == "http://localhost:3000",
        "db_secret_arn": lambda v: isinstance(v, str) and v.startswith("arn:aws:secretsmanager:"),
        "grafana_admin_secret_arn": lambda v: isinstance(v, str) and v.startswith("arn:aws:secretsmanager:"),
        "mlflow_admin_secret_arn": lambda v: isinstance(v, str) and v.startswith("arn:aws:secretsmanager:"),
        "mlflow_monitor_secret_arn": lambda v: isinstance(v, str) and v.startswith("arn:aws:secretsmanager:"),
        "ssm_session_command": lambda v: isinstance(v, str) and "aws ssm start-session --target i-" in v,
        "mlflow_port_forward_command": lambda v: isinstance(v, str)
        and "--document-name AWS-StartPortForwardingSession --parameters portNumber=5000,localPortNumber=5000" in v,
        "grafana_port_forward_command": lambda v: isinstance(v, str)
        and "--document-name AWS-StartPortForwardingSession --parameters portNumber=3000,localPortNumber=3000" in v,
        "inbox_uri": lambda v: v == f"s3://{bucket}/inbox/",  # the root inbox
        "model_names": lambda v: v == ["driftloop-model"],  # the default models
        "model_inbox_uris": lambda v: v == {"driftloop-model": f"s3://{bucket}/inbox/driftloop-model/"},
    }
    for name, expected in expectations.items():
        if name not in values:
            problems.append(f"output {name} is missing")
        elif values[name] not in (None, "") and not expected(values[name]):
            problems.append(f"output {name} has an unexpected value {values[name]!r}")
    return problems


def has_unknown(node: Any) -> bool:
    if isinstance(node, dict):
        return any(has_unknown(v) for v in node.values())
    if isinstance(node, list):
        return any(has_unknown(v) for v in node)
    return node is True


def changed_attributes(change: dict[str, Any]) -> set[str]:
    before = change.get("before") or {}
    after = change.get("after") or {}
    unknown = change.get("after_unknown") or {}
    keys = set(before) | set(after) | set(unknown)
    return {k for k in keys if before.get(k) != after.get(k) or has_unknown(unknown.get(k))}


def check_replan(plan: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Split the re-plan's changes into the known moto differences and anything else (a failure)."""
    known, unexpected = [], []
    for rc in plan.get("resource_changes", []):
        actions = rc["change"]["actions"]
        if actions in (["no-op"], ["read"]):
            continue
        address = rc["address"]
        attributes = changed_attributes(rc["change"])
        allowed = ALLOWED_REPLAN_CHANGES.get(address, set())
        extra = attributes - allowed
        if actions != ["update"] or extra or not attributes:
            unexpected.append(f"{address}: {'/'.join(actions)} of {', '.join(sorted(extra or attributes)) or '?'}")
        else:
            known.append(f"{address}: {', '.join(sorted(attributes))}")
    for name, change in (plan.get("output_changes") or {}).items():
        if change["actions"] != ["no-op"]:
            unexpected.append(f"output {name}: {'/'.join(change['actions'])}")
    return known, unexpected


def rehearse(args: argparse.Namespace, clock: Clock, workdir: Path) -> None:
    moto_log = workdir / "moto.log"
    tf_log = workdir / "terraform.log"
    moto = None
    try:
        moto, endpoint = start_moto(args.moto_server, moto_log, clock)
        env_dir = prepare(workdir, endpoint, {**REQUIRED_INPUTS, "artifact_bucket_name": args.bucket})
        tf = Terraform(args.terraform, env_dir, tf_log, workdir / "rehearse.tfvars.json")
        clock.say(f"infra/envs/aws copied with {OVERRIDE.name} to {env_dir}")

        init = ["init", "-input=false", "-no-color"]
        if args.plugin_dir:
            init.append(f"-plugin-dir={args.plugin_dir}")
        tf.run("terraform init", *init)
        clock.say("init done" + (f" (providers from {args.plugin_dir})" if args.plugin_dir else ""))

        tf.run("terraform apply", "apply", "-auto-approve", *tf.vars())
        addresses = tf.run("terraform state list", "state", "list").stdout.split()
        managed = [a for a in addresses if not (a.startswith("data.") or ".data." in a)]
        clock.say(f"apply done: {len(managed)} resources")

        outputs = json.loads(tf.run("terraform output", "output", "-json").stdout)
        problems = check_outputs(outputs, args.bucket)
        if problems:
            raise RehearsalError("; ".join(problems))
        clock.say(f"outputs checked: {len(outputs)} ({', '.join(sorted(outputs))})")

        plan_run = tf.run("terraform plan", "plan", "-detailed-exitcode", "-out=replan.tfplan", *tf.vars(), ok=(0, 2))
        plan = json.loads(tf.run("terraform show", "show", "-json", "replan.tfplan").stdout)
        known, unexpected = check_replan(plan)
        if unexpected:
            raise RehearsalError("re-plan is not clean beyond the known moto differences: " + "; ".join(unexpected))
        if plan_run.returncode == 0:
            clock.say("re-plan: no changes")
        else:
            clock.say(f"re-plan: only the known moto differences ({'; '.join(known)})")

        off = "-var=db_deletion_protection=false"
        tf.run("apply with deletion protection off", "apply", "-auto-approve", *tf.vars(off))
        state = json.loads(tf.run("terraform show", "show", "-json").stdout)
        if db_deletion_protection(state) is not False:
            raise RehearsalError("deletion protection of the database is still on after applying it off")
        clock.say("deletion protection off (applied, as infra/README.md's Destroy section says)")

        tf.run("terraform destroy", "destroy", "-auto-approve", *tf.vars(off))
        left = tf.run("terraform state list", "state", "list").stdout.split()
        if left:
            raise RehearsalError(f"destroy left {len(left)} resources in state: {', '.join(left[:5])}")
        clock.say("destroy done: state is empty")
    except RehearsalError:
        if tf_log.exists():
            print("--- last lines of the Terraform log ---", file=sys.stderr)
            print("\n".join(tf_log.read_text(errors="replace").splitlines()[-40:]), file=sys.stderr)
        raise
    finally:
        if moto is not None:
            stop_moto(moto)
            clock.say(f"moto server stopped (PID {moto.pid})")


def db_deletion_protection(state: dict[str, Any]) -> bool | None:
    modules = [state.get("values", {}).get("root_module", {})]
    while modules:
        module = modules.pop()
        modules.extend(module.get("child_modules", []))
        for resource in module.get("resources", []):
            if resource["type"] == "aws_db_instance":
                return bool(resource["values"]["deletion_protection"])
    return None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--terraform", default=shutil.which("tofu") or shutil.which("terraform") or "terraform")
    parser.add_argument("--plugin-dir", default="", help="offline provider mirror for `init -plugin-dir`")
    parser.add_argument("--moto-server", default=str(Path(sys.executable).with_name("moto_server")))
    parser.add_argument("--bucket", default="driftloop-artifacts", help="artifact_bucket_name")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (state and logs)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    clock = Clock()
    for tool, name in ((args.terraform, "terraform"), (args.moto_server, "moto_server")):
        if not shutil.which(tool):
            print(f"infra-rehearse: {name} not found at {tool!r} (make install provides moto_server)", file=sys.stderr)
            return 1

    def interrupted(signum: int, _frame: Any) -> None:
        raise RehearsalError(f"interrupted by signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    workdir = Path(tempfile.mkdtemp(prefix="infra-rehearse-"))
    try:
        rehearse(args, clock, workdir)
    except RehearsalError as error:
        print(f"infra-rehearse: FAILED after {clock.elapsed()}: {error}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            clock.say(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    clock.say("passed: applied, outputs checked, re-planned, destroyed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
