"""Every model of a root inbox, one after the other (``pipeline monitor --inbox ROOT --all-models``).

A root inbox is a prefix (or a folder) whose folders are models' inboxes: ``ROOT/<name>/`` holds the batches of
the registered model ``<name>``. Each folder is monitored as ``--inbox ROOT/<name>/ --model-name <name>`` would
monitor it: with that model's champion, the schema stored with it, its own policy (its tags), its inbox's run key
and its inbox lock, so that a model has one run whichever way it is monitored. Files right under the root belong
to no model and are not read.

A model that cannot be monitored (a folder named after no model or a model with no champion, a schema or policy
refused, any error of its own) is said in one line and the next model goes on. An outage of what every model
depends on (the metrics database, the MLflow server: ``batch_fault.is_outage``) stops the run at that model and
is raised, since every model after it would fail the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

from pipeline.app.monitor_result import EXIT_FAILED, EXIT_OK, worst_exit
from pipeline.app.monitor_run import MonitorRefused, MonitorRequest, MonitorRun
from pipeline.domain.values import one_line
from pipeline.settings import Settings

if TYPE_CHECKING:
    from pipeline.io.tables import ObjectStore

Say = Callable[[str], None]


class ModelParts(Protocol):
    """The collaborators of one model (``pipeline.app.collaborators.Collaborators``)."""

    settings: Settings

    def for_model(self, name: str) -> ModelParts: ...
    def s3_for(self, *paths: str) -> ObjectStore | None: ...


# Monitors one model's inbox (``monitor_run`` with the command's callbacks): the request, its settings and parts.
RunOne = Callable[[MonitorRequest, Settings, ModelParts], MonitorRun]


@dataclass(frozen=True)
class ModelOutcome:
    """One model of a root inbox: its run, or ``failed``, the one line saying why it could not be monitored."""

    model: str
    run: MonitorRun | None = None
    failed: str = ""

    def exit_code(self, *, fail_on_alarm: bool = False) -> int:
        """``EXIT_FAILED`` for a model that could not be monitored, else its run's code (0 for nothing to do)."""
        if self.failed:
            return EXIT_FAILED
        if self.run is None or self.run.result is None:
            return EXIT_OK
        return self.run.result.exit_code(fail_on_alarm=fail_on_alarm)


def exit_code(outcomes: list[ModelOutcome], *, fail_on_alarm: bool = False) -> int:
    """The run's exit code: the most serious of its models' (``monitor_result.worst_exit``)."""
    return worst_exit([outcome.exit_code(fail_on_alarm=fail_on_alarm) for outcome in outcomes])


def check_root_request(request: MonitorRequest) -> None:
    """Refuse what names one model's run in a root inbox's request: each model has its own."""
    if not request.inbox:
        raise MonitorRefused("--all-models monitors a root inbox: pass it with --inbox")
    given = [
        name
        for name, value in (
            ("--reference", request.reference),
            ("--run-id", request.run_key),
            ("--schema or PIPELINE_SCHEMA_PATH", request.given_schema),
        )
        if value is not None
    ]
    if given:
        raise MonitorRefused(
            f"--all-models monitors each model with its own champion, schema and run: {', '.join(given)} "
            "names one model's; monitor that model's inbox with --model-name instead"
        )


def monitor_models(request: MonitorRequest, parts: ModelParts, *, run_one: RunOne, say: Say) -> list[ModelOutcome]:
    """Monitor every model folder of the root inbox ``request.inbox``, in name order; each model's outcome.
    Raises ``MonitorRefused`` for a root with no folders, and an outage (``batch_fault.is_outage``) as it is."""
    from pipeline.app.batch_fault import is_outage
    from pipeline.io.inbox import folder_inbox, inbox_folders

    check_root_request(request)
    root = str(request.inbox)
    names = inbox_folders(root, parts.s3_for(root))
    if not names:
        raise MonitorRefused(f"{root}: no model folders (a root inbox holds one folder a model: {root}/MODEL/)")
    say(f"{root}: {len(names)} model folder(s): {', '.join(names)}")
    outcomes: list[ModelOutcome] = []
    for index, name in enumerate(names):
        inbox = folder_inbox(root, name)
        say(f"model {name} ({index + 1} of {len(names)}): {inbox}")
        model_parts = parts.for_model(name)
        try:
            run = run_one(replace(request, inbox=inbox), model_parts.settings, model_parts)
        except Exception as err:
            if is_outage(err):
                left = names[index + 1 :]
                say(f"model {name}: stopped: {one_line(err)}" + (f"; not monitored: {', '.join(left)}" if left else ""))
                raise
            outcomes.append(ModelOutcome(name, failed=f"model {name}: not monitored: {one_line(err)}"))
            say(outcomes[-1].failed)
            continue
        outcomes.append(ModelOutcome(name, run))
    return outcomes


def summary(outcomes: list[ModelOutcome]) -> str:
    """One line for the whole run: the models monitored, with nothing new, and not monitored."""
    failed = [outcome.model for outcome in outcomes if outcome.failed]
    idle = [o.model for o in outcomes if not o.failed and (o.run is None or o.run.result is None)]
    done = len(outcomes) - len(failed) - len(idle)
    line = f"{len(outcomes)} model(s): {done} monitored, {len(idle)} with nothing to do, {len(failed)} not monitored"
    return line + (f" ({', '.join(failed)})" if failed else "")
