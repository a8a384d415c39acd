"""``pipeline notify``: send a message through the configured sinks (what a systemd ``OnFailure=`` unit runs), and
the notifications of the commands that move the champion by hand."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pipeline.cli.app import app
from pipeline.cli.common import ModelName, clean_errors, cli_settings, fail, say
from pipeline.settings import Settings

if TYPE_CHECKING:
    from pipeline.domain.incidents import Notice
    from pipeline.domain.records import Event

EXIT_NOT_SENT = 1  # a sink did not take the message


@app.command()
def notify(
    text: Annotated[str | None, typer.Argument(help="The message (or give --json).")] = None,
    record: Annotated[
        str | None,
        typer.Option(
            "--json",
            help="A JSON object to send, from this file or - for stdin: its text (or summary), and any of kind, "
            "model, version, batch, run_key, source, links, details.",
        ),
    ] = None,
    kind: Annotated[
        str, typer.Option(help="What it tells: message, run-failed, ... (a --json record's kind wins).")
    ] = "message",
    model_name: ModelName = None,
) -> None:
    """Send a message through the configured sinks (PIPELINE_NOTIFY_URL, PIPELINE_NOTIFY_SNS_TOPIC).

    For a systemd unit's OnFailure= hook: `pipeline notify --kind run-failed "%i failed on %H"`. Exits 0 when every
    sink took it, 1 when one did not, 2 when no sink is configured or the input is unusable.
    """
    from pipeline.app.notify import Links, message_notification, notifier_of

    settings = cli_settings(model_name)
    given = _given(text, record, kind)
    with clean_errors():
        notifier = notifier_of(settings.notify, say)
        if notifier is None:
            fail("no notification sink configured: set PIPELINE_NOTIFY_URL or PIPELINE_NOTIFY_SNS_TOPIC")
        notification = message_notification(given, settings.model_name, Links.of(settings.notify, settings.model_name))
        if not notifier.notify(notification):
            raise typer.Exit(EXIT_NOT_SENT)
        say(f"{notification.kind} notification sent to {', '.join(sink.name for sink in notifier.sinks)}")


def _given(text: str | None, record: str | None, kind: str) -> dict[str, Any]:
    """The message as a record: the --json object (read from a file or stdin), else the text, with the kind."""
    if (text is None) == (record is None):
        fail("give the message as TEXT or --json PATH (- for stdin), one of them")
    if record is None:
        return {"text": text, "kind": kind}
    try:
        raw = sys.stdin.read() if record == "-" else Path(record).read_text(encoding="utf-8")
        given = json.loads(raw)
    except (OSError, ValueError) as err:
        fail(f"--json {record}: {err}")
    if not isinstance(given, dict):
        fail(f"--json {record}: a JSON object is needed")
    return {"kind": kind, **given}


def event_notifier(settings: Settings) -> Callable[[Notice, Event], None]:
    """What tells the configured sinks of a recorded event (a promotion or rollback by hand). Built before the
    command's work, so that a refused webhook URL stops the command before it moves anything; a failure to send
    is said, and the command's work stands."""
    from pipeline.app.notify import Links, event_notification, notifier_of

    notifier = notifier_of(settings.notify, say)
    links = Links.of(settings.notify, settings.model_name)

    def send(notice: Notice, event: Event) -> None:
        if notifier is not None:
            notifier.notify(event_notification(notice, event, links))

    return send


def notify_run_failed(settings: Settings, err: BaseException, run_key: str | None = None) -> None:
    """Tell the configured sinks that a monitor run failed with ``err``; never raises (the error is the news)."""
    from pipeline.app.notify import Links, notifier_of, run_failed_notification
    from pipeline.domain.values import one_line

    try:
        notifier = notifier_of(settings.notify, say)
        if notifier is not None:
            links = Links.of(settings.notify, settings.model_name)
            line = f"pipeline monitor failed: {err.__class__.__name__}: {one_line(err)}"
            notifier.notify(run_failed_notification(settings.model_name, line, links, run_key))
    except Exception as failure:  # noqa: BLE001 - the run's own error is the one to raise
        say(f"warning: run-failed notification not sent: {one_line(failure, 200)}")
