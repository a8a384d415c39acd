"""The ``pipeline`` Typer app, its sub-apps and its callback; the command modules register their commands on them."""

from __future__ import annotations

from typing import Annotated

import typer

HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}

app = typer.Typer(
    help="Monitor a tabular binary classifier for drift; retrain, tune, register and promote it, tracked in MLflow.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings=HELP_OPTIONS,
)
data_app = typer.Typer(help="Data utilities.", no_args_is_help=True)
stack_app = typer.Typer(help="The local stack: embedded PostgreSQL, moto S3, MLflow server.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(stack_app, name="stack")
schema_app = typer.Typer(help="The feature schema: infer one from data.", no_args_is_help=True)
app.add_typer(schema_app, name="schema")
inbox_app = typer.Typer(
    help="The inbox's rejected files: a file set aside is not read again until retried.", no_args_is_help=True
)
app.add_typer(inbox_app, name="inbox")


def _say_version(asked: bool) -> None:
    if asked:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("driftloop")
        except PackageNotFoundError:  # run from a source tree that was never installed
            found = "unknown (not installed)"
        typer.echo(f"driftloop {found}")
        raise typer.Exit()


# The warnings of a model saved by another version of its library: scikit-learn's InconsistentVersionWarning and
# XGBoost's warning on an older model file (matched by their text, so scikit-learn is not imported to name them).
VERSION_MISMATCH_WARNINGS = (r"Trying to unpickle estimator", r".*older version of XGBoost")


def _read_config(path: str | None) -> str | None:
    """``--config FILE.toml``: its ``[pipeline]`` settings under the environment's; a bad file exits 2."""
    if path is not None:
        import os

        from pipeline.cli.common import fail
        from pipeline.io.config_file import apply_config
        from pipeline.settings import SettingsError, load_settings

        try:
            applied = apply_config(path, os.environ)
            load_settings()
        except SettingsError as err:
            named = str(err).split("=", 1)[0]
            fail(str(err) if str(err).startswith(path) or named not in applied else f"{path}: {err}")
    return path


@app.callback()
def _quiet_libraries(
    show_version: Annotated[
        bool, typer.Option("--version", is_eager=True, callback=_say_version, help="Print the version and exit.")
    ] = False,
    config: Annotated[
        str | None,
        typer.Option(
            "--config",
            callback=_read_config,
            help="A TOML file whose \\[pipeline] table sets settings by name; environment variables override it.",
        ),
    ] = None,
) -> None:
    """Keep the output ours: MLflow's URL prints, INFO logs and download bars are switched off."""
    import logging
    import os
    import warnings

    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    for name in ("mlflow", "alembic", "botocore", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    # but a model saved by another version of its library is the user's to know of
    for mismatch in VERSION_MISMATCH_WARNINGS:
        warnings.filterwarnings("default", message=mismatch)
