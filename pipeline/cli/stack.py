"""``pipeline stack ...``: the local stack (embedded PostgreSQL, moto S3, the MLflow server)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from pipeline.cli.app import stack_app
from pipeline.cli.common import clean_errors, cli_settings, say
from pipeline.settings import Settings

if TYPE_CHECKING:
    from pipeline.app.stack_config import StackConfig


def _stack_config(settings: Settings) -> StackConfig:
    from pipeline.app.stack_config import StackConfig

    return StackConfig(
        state_dir=settings.state_dir.resolve(),
        pg_port=settings.pg_port,
        s3_port=settings.s3_port,
        mlflow_port=settings.mlflow_port,
        bucket=settings.artifact_bucket,
    )


@stack_app.command("up")
def stack_up() -> None:
    """Start (or find running) PostgreSQL, moto S3 with the artifact bucket, and the MLflow server."""
    from pipeline.app import stack

    with clean_errors():
        stack.up(_stack_config(cli_settings()), say=say)


@stack_app.command("down")
def stack_down() -> None:
    """Snapshot the bucket to disk and stop the stack (data stays under the state folder)."""
    from pipeline.app import stack

    with clean_errors():
        stack.down(_stack_config(cli_settings()), say=say)


@stack_app.command("snapshot")
def stack_snapshot() -> None:
    """Copy the artifact bucket to disk now (moto keeps objects in memory only)."""
    from pipeline.app.stack_bucket import snapshot_bucket

    with clean_errors():
        cfg = _stack_config(cli_settings())
        say(f"{snapshot_bucket(cfg)} objects -> {cfg.snapshot_dir}")


@stack_app.command("status")
def stack_status() -> None:
    """Which parts of the local stack answer."""
    from pipeline.app import stack

    cfg = _stack_config(cli_settings())
    states = stack.status(cfg)
    for name, ok in states.items():
        say(f"{name:<9} {'up' if ok else 'down'}")
    if not all(states.values()):
        raise typer.Exit(1)
