"""The ``pipeline`` command line: data synthesis, training, monitoring, rollback, status, the local stack.

The app and its sub-apps are in ``pipeline.cli.app``; each command module registers its commands on them when it is
imported, here. The commands import their heavy libraries (MLflow, scikit-learn, the app layer) when they run, so
``pipeline --help`` and a command that fails at once stay fast.
"""

from __future__ import annotations

from typer.models import CommandInfo

from pipeline.cli import (  # noqa: F401  (they register)
    data,
    doctor,
    explain,
    inbox,
    labels,
    monitor,
    notify,
    registry,
    stack,
    status,
    train,
)
from pipeline.cli.app import app

# The order of `pipeline --help`: the commands as a user meets them, whichever module defines them.
COMMAND_ORDER = (
    "train",
    "monitor",
    "adopt",
    "labels",
    "spark-job-args",
    "promote",
    "rollback",
    "configure",
    "status",
    "report",
    "explain",
    "notify",
    "doctor",
)


def _rank(info: CommandInfo) -> int:
    """Where a command comes in the help: by ``COMMAND_ORDER``, a command not listed there after them."""
    name = info.name or getattr(info.callback, "__name__", "").replace("_", "-")
    return COMMAND_ORDER.index(name) if name in COMMAND_ORDER else len(COMMAND_ORDER)


app.registered_commands.sort(key=_rank)  # stable: commands not listed keep the order they were registered in

__all__ = ["app"]

if __name__ == "__main__":  # pragma: no cover
    app()
