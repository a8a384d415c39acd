"""``pipeline doctor``: the settings in effect and whether MLflow, the metrics database and S3 answer."""

from __future__ import annotations

import typer
from rich.table import Table

from pipeline.cli.app import app
from pipeline.cli.common import cli_settings, console, say

EXIT_FAILED_CHECK = 1


@app.command()
def doctor() -> None:
    """Print the settings in effect (secrets masked; set or default) and check MLflow (health and this login), the
    metrics database (its login) and the artifact bucket, one line each, each tried once. Exits 1 when one fails."""
    from pipeline.app.doctor import run_checks, settings_in_effect

    settings = cli_settings()
    table = Table(title="settings in effect")
    for column in ("variable", "value", "from"):
        table.add_column(column, overflow="fold")
    for row in settings_in_effect(settings):
        table.add_row(*row)
    console.print(table)
    checks = run_checks(settings)
    for check in checks:
        say(f"{'ok  ' if check.ok else 'FAIL'} {check.part}: {check.detail}")
    if not all(check.ok for check in checks):
        raise typer.Exit(EXIT_FAILED_CHECK)
