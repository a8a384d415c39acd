"""What the commands share: the consoles, the option types, failing in one line, the settings and collaborators."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console

from pipeline.settings import Settings, load_settings

if TYPE_CHECKING:
    from rich.table import Table

    from pipeline.app.collaborators import Collaborators
    from pipeline.domain.model_policy import ModelPolicy
    from pipeline.domain.schema import FeatureSchema

# Piped or logged output (a timer, CI) gets room for the tables instead of the 80-column fallback.
console = Console(width=None if sys.stdout.isatty() else 120)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 120)

ModelName = Annotated[
    str | None, typer.Option("--model-name", help="Registered model name (default: PIPELINE_MODEL_NAME).")
]
SchemaPath = Annotated[
    str | None,
    typer.Option(
        "--schema",
        help="Feature schema file, local or s3:// (features.json format; see `pipeline schema infer`). Default: "
        "PIPELINE_SCHEMA_PATH, else the champion's recorded schema, else the built-in demo schema.",
    ),
]

THRESHOLD_HELP = (
    "Prediction drift threshold. The score is the normed Wasserstein distance (Evidently 'wasserstein') "
    "between the champion's predicted positive-class probabilities on the reference and on the batch: 0 = same "
    "distribution, HIGHER = MORE drift; an alarm fires when score >= threshold (default 0.1)."
)


def fail(message: str, code: int = 2) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


# The failures that print one line: (module, class). Looked up among the modules already imported, since an error
# of a module never imported cannot have been raised: catching them costs a command no import.
KNOWN_ERRORS = (
    ("pipeline.io.tables", "DataError"),
    ("pipeline.model.flavors", "UntrustedModel"),
    ("pipeline.model.registry", "NoChampion"),
    ("pipeline.model.registry", "RegistryError"),
    ("pipeline.domain.schema", "SchemaError"),
    ("pipeline.model.scoring", "ModelMismatch"),
    ("pipeline.app.stack", "StackError"),
    ("pipeline.app.monitor_run", "MonitorRefused"),
    ("pipeline.io.store", "StoreUnavailable"),
    ("pipeline.model.tracking", "TrackingUnavailable"),
    ("pipeline.model.serving", "UntrustedUri"),
    ("pipeline.domain.retrain_mode", "ModeError"),
    ("pipeline.domain.model_policy", "PolicyError"),
    ("pipeline.io.notify", "NotifyError"),
)


def _known_error(err: BaseException) -> bool:
    for module, name in KNOWN_ERRORS:
        loaded = sys.modules.get(module)
        if loaded is not None and isinstance(err, getattr(loaded, name)):
            return True
    return False


@contextmanager
def clean_errors() -> Iterator[None]:
    """Known failures (``KNOWN_ERRORS``) print one line and exit non-zero; nothing else is caught."""
    try:
        yield
    except Exception as err:
        if not _known_error(err):
            raise
        fail(str(err))


def cli_settings(model_name: str | None = None, **overrides: Any) -> Settings:
    """The settings (environment, .env), with the command's --model-name over PIPELINE_MODEL_NAME; a bad value
    fails in one line (exit 2), a ``PIPELINE_*`` variable that names no setting is warned of."""
    import os

    from pipeline.settings import SettingsError, unknown_variables

    for name in unknown_variables(dict(os.environ)):
        err_console.print(f"warning: {name} is not a setting and is ignored (docs/settings.md)", highlight=False)
    try:
        return load_settings(model_name=model_name, **overrides)
    except SettingsError as err:
        fail(str(err))


def collaborators(settings: Settings) -> Collaborators:
    from pipeline.app.collaborators import Collaborators

    return Collaborators(settings)


def given_schema(path: str | None, settings: Settings) -> tuple[FeatureSchema | None, str]:
    """The schema the user passed (--schema, else PIPELINE_SCHEMA_PATH; a local file or ``s3://``), or None; and
    how to name it."""
    from pipeline.io.schema_file import read_schema_at

    for given, name in ((path, "--schema"), (settings.schema_path, "PIPELINE_SCHEMA_PATH")):
        if given is not None:
            s3 = None
            if given.startswith("s3://"):
                from pipeline.io.tables import make_s3_client

                s3 = make_s3_client(settings.s3_endpoint_url, settings.aws_region)
            return read_schema_at(given, s3), f"{name} {given}"
    return None, ""


def policy_table(policy: ModelPolicy) -> Table:
    """The policy in effect for a model: each value a model may set, and where it came from."""
    from rich.table import Table

    table = Table(title=f"policy in effect (retraining mode {policy.mode.value}, from {policy.mode_source})")
    for column in ("value", "in effect", "from"):
        table.add_column(column)
    for name, source in policy.sources.items():
        table.add_row(name, str(getattr(policy.settings, name)), source)
    return table


def say(message: str) -> None:
    console.print(message, highlight=False, soft_wrap=True, markup=False)


def ui_links(settings: Settings, run_id: str | None, versions: list[int]) -> None:
    base = settings.tracking_uri.rstrip("/")
    if not base.startswith("http"):
        return
    if run_id:
        import mlflow

        experiment = mlflow.get_run(run_id).info.experiment_id
        say(f"MLflow run:      {base}/#/experiments/{experiment}/runs/{run_id}")
    say(f"Registered model: {base}/#/models/{settings.model_name}")
    for version in versions:
        say(f"  version {version}:     {base}/#/models/{settings.model_name}/versions/{version}")
