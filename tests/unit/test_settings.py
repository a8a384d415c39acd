import pytest

from pipeline.settings import DEFAULT_BUCKET, Settings, load_settings


def test_defaults_point_at_the_local_stack(monkeypatch):
    for name in ("PIPELINE_TRACKING_URI", "PIPELINE_METRICS_DB_URL", "PIPELINE_S3_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None)
    assert settings.tracking_uri == "http://127.0.0.1:5000"
    assert settings.s3_endpoint_url == "http://127.0.0.1:4566"
    assert settings.metrics_db_url.startswith("postgresql://") and ":15432/" in settings.metrics_db_url
    assert settings.artifact_bucket == DEFAULT_BUCKET


def test_environment_overrides_and_empty_endpoint_means_aws(monkeypatch):
    monkeypatch.setenv("PIPELINE_DRIFT_THRESHOLD", "0.25")
    monkeypatch.setenv("PIPELINE_S3_ENDPOINT_URL", "")
    monkeypatch.setenv("PIPELINE_MODEL_NAME", "other-model")
    settings = Settings(_env_file=None)
    assert settings.drift_threshold == 0.25
    assert settings.s3_endpoint_url is None
    assert settings.model_name == "other-model"


def test_cli_overrides_win_and_none_means_unset(monkeypatch):
    monkeypatch.setenv("PIPELINE_MODEL_NAME", "from-env")
    assert load_settings(model_name="from-cli").model_name == "from-cli"
    assert load_settings(model_name=None).model_name == "from-env"


def test_password_from_a_secret_is_injected_and_quoted():
    settings = Settings(
        _env_file=None,
        metrics_db_url="postgresql://app@db.example:5432/metrics?sslmode=require",
        metrics_db_password="p@ss/word",
    )
    assert settings.metrics_dsn() == "postgresql://app:p%40ss%2Fword@db.example:5432/metrics?sslmode=require"
    assert "p@ss" not in repr(settings)


def test_invalid_threshold_is_refused(monkeypatch):
    monkeypatch.setenv("PIPELINE_DRIFT_THRESHOLD", "-1")
    import pydantic
    import pytest

    with pytest.raises(pydantic.ValidationError):
        Settings(_env_file=None)


def test_every_setting_belongs_to_a_group_with_its_type_and_no_default_of_its_own():
    from pipeline.settings import GROUPS, Settings

    grouped: set[str] = set()
    for group in GROUPS.values():
        for name, field in group.model_fields.items():
            assert name in Settings.model_fields, (group.__name__, name)
            assert field.annotation == Settings.model_fields[name].annotation, (group.__name__, name)
            assert field.is_required(), (group.__name__, name)  # the default is written once, on Settings
        grouped |= group.model_fields.keys()
    assert grouped == set(Settings.model_fields)


def test_a_group_reads_the_same_flat_environment_names(monkeypatch):
    from pipeline.settings import Settings

    monkeypatch.setenv("PIPELINE_DRIFT_THRESHOLD", "0.25")
    monkeypatch.setenv("PIPELINE_TUNING_TRIALS", "7")
    monkeypatch.setenv("PIPELINE_RETRAIN", "challenger")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.policy.drift_threshold == 0.25 and settings.policy.retrain == "challenger"
    assert settings.training.tuning_trials == 7 and settings.stack.tracking_uri == settings.tracking_uri
    with pytest.raises(Exception, match="frozen"):
        settings.policy.drift_threshold = 0.5  # type: ignore[misc]


def test_mlflow_s_own_tracking_uri_is_honoured_unless_ours_is_set(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env
    monkeypatch.delenv("PIPELINE_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://mlflow.example.org")
    assert load_settings().tracking_uri == "https://mlflow.example.org"
    monkeypatch.setenv("PIPELINE_TRACKING_URI", "http://10.0.0.5:5000")
    assert load_settings().tracking_uri == "http://10.0.0.5:5000"
    (tmp_path / ".env").write_text("PIPELINE_TRACKING_URI=http://from-dotenv:5000\n")
    monkeypatch.delenv("PIPELINE_TRACKING_URI")
    assert load_settings().tracking_uri == "http://from-dotenv:5000"  # ours, from .env, still wins


def test_a_bad_value_is_one_line_naming_its_variable(monkeypatch):
    from pipeline.settings import SettingsError

    monkeypatch.setenv("PIPELINE_COOLDOWN_BATCHES", "often")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert str(raised.value).startswith("PIPELINE_COOLDOWN_BATCHES='often': ")
    assert "\n" not in str(raised.value)


def test_a_variable_that_names_no_setting_is_found():
    from pipeline.settings import unknown_variables

    environ = {"PIPELINE_DRIFT_TRESHOLD": "0.2", "PIPELINE_DRIFT_THRESHOLD": "0.2", "MLFLOW_TRACKING_URI": "x"}
    assert unknown_variables(environ) == ["PIPELINE_DRIFT_TRESHOLD"]


@pytest.mark.parametrize(
    ("namespace", "refused"),
    [
        ("driftloop/prod", False),
        ("Team ML: churn #2", False),
        ("", False),  # empty: no heartbeat
        ("AWS/EC2", True),  # CloudWatch keeps AWS/ for its own services
        ("drift|loop", True),
        ("x" * 256, True),
    ],
)
def test_the_heartbeat_namespace_follows_cloudwatch_s_rule(monkeypatch, namespace, refused):
    from pipeline.settings import SettingsError

    monkeypatch.setenv("PIPELINE_HEARTBEAT_NAMESPACE", namespace)
    if refused:
        with pytest.raises(SettingsError, match="^PIPELINE_HEARTBEAT_NAMESPACE="):
            load_settings()
    else:
        assert load_settings().notify.heartbeat_namespace == (namespace or None)
