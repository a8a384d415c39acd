"""Security: no credential in the tree, the logs or MLflow params; SQL parameterised with identifiers quoted;
models load only as skops with our explicit trusted types, pickles only when allowed."""

from __future__ import annotations

import ast
import json
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from reliability_rig import VENV_BIN, Case, invoke

from pipeline.domain.records import BatchRow, Event
from pipeline.io.store import MetricsStore
from pipeline.model import flavors

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "pipeline"


def scan_with_baseline(paths: list[str]) -> subprocess.CompletedProcess:
    """What `make lint` runs: detect-secrets over the files, failing on anything not in the baseline.

    The scan runs against a copy of the baseline: the hook rewrites its baseline when audited lines only
    moved, which must neither touch the repository nor count as a finding.
    """
    with tempfile.TemporaryDirectory() as tmp:
        baseline = Path(tmp) / ".secrets.baseline"
        shutil.copy(ROOT / ".secrets.baseline", baseline)
        return subprocess.run(
            [str(VENV_BIN / "detect-secrets-hook"), "--baseline", str(baseline), *paths],  # noqa: S603
            cwd=ROOT,
            capture_output=True,
            text=True,
        )


def found_secrets(result: subprocess.CompletedProcess) -> bool:
    return "Potential secrets" in result.stdout + result.stderr


def test_no_credential_in_the_repository():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)  # noqa: S607
    paths = [p for p in files.stdout.splitlines() if p != ".secrets.baseline" and (ROOT / p).is_file()]
    result = scan_with_baseline(paths)
    assert not found_secrets(result), result.stdout + result.stderr


def test_the_scan_catches_a_planted_credential(tmp_path: Path):
    planted = ROOT / "tests" / "reliability" / f"planted_{secrets.token_hex(4)}.env"
    key_id = "AKIA" + "Q3EGRIRPV6NK2T5M"  # built at run time, so this file itself holds no key
    planted.write_text(f"aws_access_key_id = {key_id}\npassword = '{secrets.token_urlsafe(18)}'\n")
    try:
        result = scan_with_baseline([str(planted.relative_to(ROOT))])
    finally:
        planted.unlink()
    assert found_secrets(result) and "AWS Access Key" in result.stdout


@pytest.mark.reliability
def test_no_credential_in_mlflow_params_tags_artifacts_or_output(
    case: Case, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    db_password = "pw-" + secrets.token_urlsafe(16)  # pragma: allowlist secret
    aws_secret = secrets.token_urlsafe(30)
    monkeypatch.setenv("PIPELINE_METRICS_DB_PASSWORD", db_password)  # the test database trusts any password
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", aws_secret)
    output = invoke(
        "monitor",
        "--reference",
        str(case.data.reference),
        "--run-id",
        "secrets",
        "--threshold",
        "0.000001",
        "--current",
        str(case.data.batches[0]),
    ).output
    client = MlflowClient(case.settings.tracking_uri)
    experiment = client.get_experiment_by_name(case.settings.experiment_name).experiment_id
    monitor_run = client.search_runs([experiment], "tags.run_key = 'secrets'")[0]
    runs, parents = [monitor_run], [monitor_run.info.run_id]
    while parents:
        children = client.search_runs([experiment], f"tags.mlflow.parentRunId = '{parents.pop()}'")
        runs += children
        parents += [r.info.run_id for r in children]
    assert len(runs) >= 4  # the monitor, its retrain, two candidates (and tuning trials)
    logged = [output]
    for run in runs:
        logged += [json.dumps(run.data.params), json.dumps(run.data.tags)]
    for version in client.search_model_versions(f"name = '{case.model_name}'"):
        logged += [json.dumps(dict(version.tags)), version.description or ""]
    logged.append(
        Path(
            mlflow.artifacts.download_artifacts(
                run_id=monitor_run.info.run_id, artifact_path="batches.json", dst_path=str(tmp_path)
            )
        ).read_text()
    )
    text = "\n".join(logged)
    assert db_password not in text and aws_secret not in text
    assert "postgresql://" not in text  # no DSN at all, with or without a password


def execute_calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "execute":
            yield node


def is_safe_sql(node: ast.expr, constants: set[str]) -> bool:
    """A literal, a module constant, or psycopg2's sql.SQL("literal") composed with .format(Identifier...)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return True
    if isinstance(node, ast.Name):
        return node.id in constants
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        if node.func.attr == "format":
            return is_safe_sql(node.func.value, constants) and not isinstance(node.func.value, ast.Constant)
        if node.func.attr == "SQL":
            return len(node.args) == 1 and isinstance(node.args[0], ast.Constant)
    return False


@pytest.mark.parametrize("module", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_sql_statement_is_parameterised_and_identifiers_are_quoted(module: Path):
    tree = ast.parse(module.read_text())
    constants = {
        t.id
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    unsafe = [
        f"{module.name}:{call.lineno}"
        for call in execute_calls(tree)
        if call.args and not is_safe_sql(call.args[0], constants)
    ]
    assert unsafe == [], "SQL built by string formatting"


def test_the_sql_check_catches_formatted_sql():
    bad = ast.parse(
        'cur.execute(f"CREATE DATABASE {name}")\ncur.execute("SELECT %s" % x)\n'
        'cur.execute("DROP {}".format(t))\ncur.execute(sql.SQL(f"DROP {t}"))'
    )
    assert [is_safe_sql(c.args[0], set()) for c in execute_calls(bad)] == [False, False, False, False]


def test_hostile_values_are_stored_verbatim(pg_dsn: str):
    store = MetricsStore(pg_dsn)
    store.create_schema()
    key = "x'); DROP TABLE batch_metrics; --"
    store.start_run(key, "m", 0.1, ["a'b.csv"])
    row = BatchRow(key, 1, "m", 1, "a'b.csv", 10, 0.0, 0.1, 0, 0.0, 0.0, 0, False, None, None, False, "none")
    assert store.record_batch(row, [Event(key, "m", "alarm", "it's '; --", 1)])
    assert store.recorded_batches(key)[1]["source"] == "a'b.csv"
    assert store.events_of_run(key)[0]["message"] == "it's '; --"


def test_nothing_in_the_package_unpickles():
    modules_read = sorted(PACKAGE.rglob("*.py"))
    assert len(modules_read) > 40  # the layers' subpackages too, not only the package's top level
    for module in modules_read:
        tree = ast.parse(module.read_text())
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom) for a in n.names}
        modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not ({"pickle", "cloudpickle", "joblib", "dill"} & (names | modules)), module.name


def save_model(path: Path, model, fmt: str, trusted: list[str] | None = None) -> None:
    import mlflow.sklearn

    mlflow.sklearn.save_model(model, str(path), serialization_format=fmt, skops_trusted_types=trusted)


def test_a_model_with_an_untrusted_type_is_refused_even_if_its_mlmodel_trusts_it(tmp_path: Path):
    from sklearn.preprocessing import FunctionTransformer

    crafted = tmp_path / "crafted"
    save_model(crafted, FunctionTransformer(func=eval), "skops", trusted=["builtins.eval"])
    assert "builtins.eval" in (crafted / "MLmodel").read_text()  # the artifact whitelists its own type
    with pytest.raises(flavors.UntrustedModel, match=r"untrusted type\(s\) in the model file: builtins\.eval;"):
        flavors.load_model(str(crafted))


def test_a_pickled_model_is_never_unpickled(tmp_path: Path):
    from sklearn.linear_model import LogisticRegression

    pickled = tmp_path / "pickled"
    save_model(pickled, LogisticRegression(), "cloudpickle")
    with pytest.raises(flavors.UntrustedModel, match="saved with cloudpickle.*PIPELINE_ALLOW_PICKLED_MODELS"):
        flavors.load_model(str(pickled))


def test_a_model_file_outside_the_model_folder_is_refused(tmp_path: Path):
    from sklearn.linear_model import LogisticRegression

    crafted = tmp_path / "crafted"
    save_model(crafted, LogisticRegression(), "skops")
    (tmp_path / "elsewhere.skops").write_bytes((crafted / "model.skops").read_bytes())
    mlmodel = crafted / "MLmodel"
    mlmodel.write_text(mlmodel.read_text().replace("pickled_model: model.skops", "pickled_model: ../elsewhere.skops"))
    with pytest.raises(flavors.UntrustedModel, match="model file outside the model folder"):
        flavors.load_model(str(crafted))


def test_our_models_load_with_exactly_the_listed_trusted_types(tmp_path: Path, data):
    from pipeline.domain.schema import load_schema
    from pipeline.io.data import load_batch
    from pipeline.model.train import ZOO, fit

    schema = load_schema()
    model = fit(ZOO["xgboost"], {"n_estimators": 5}, load_batch(str(data.reference), schema).frame, schema)
    save_model(tmp_path / "ours", model, "skops", trusted=list(flavors.PROJECT_TRUSTED_TYPES))
    assert hasattr(flavors.load_model(str(tmp_path / "ours")).model, "predict_proba")
