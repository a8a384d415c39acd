"""``pipeline inbox retry``: an inbox file set aside as rejected is read again by the next monitor run."""

from __future__ import annotations

from typing import Annotated

import typer

from pipeline.cli.app import inbox_app
from pipeline.cli.common import ModelName, clean_errors, cli_settings, collaborators, fail, say


@inbox_app.command()
def retry(
    key: Annotated[
        str,
        typer.Argument(
            help="The rejected file: its s3:// URI, its key in the bucket, or its local path (`pipeline status` "
            "lists the rejected ones)."
        ),
    ],
    model_name: ModelName = None,
) -> None:
    """Clear a file's rejection (after fixing it, or raising the setting that refused it): the next
    `pipeline monitor --inbox` reads it again. A file written again with new content needs no retry."""
    from pipeline.app.rejections import retry as clear

    settings = cli_settings(model_name)
    with clean_errors():
        try:
            cleared = clear(collaborators(settings).store, settings.model_name, key)
        except LookupError as err:
            fail(str(err))
    for row in cleared:
        say(f"{row['uri']} (ETag {row['etag']}): rejection cleared; the next monitor run reads it again")
