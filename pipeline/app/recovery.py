"""Crash recovery: what a monitor run does when an earlier attempt of the same run was interrupted.

- ``version_to_resume_with``: a crash between a promotion and the write of its batch left the promoted version
  champion; the rerun scores from that batch on with the champion of the time, so it reproduces the batch.
- ``finish_interrupted``: the rerun finds the version an interrupted attempt registered for this batch (by its
  origin tags) and finishes its story (events, the promotion if it was decided) instead of training again.
- ``settle_failed_retrain``: the tracking side failed mid-retrain; wait for the server (giving up raises
  ``TrackingUnavailable``: nothing is written for the batch, a rerun does it again) and close the runs the
  failure left open.
"""

from __future__ import annotations

from collections.abc import Callable, Container

from pipeline.app.champion import ChampionCache
from pipeline.domain.policy_types import Action
from pipeline.domain.records import Event
from pipeline.domain.values import one_line
from pipeline.model import tracking
from pipeline.model.registry import Registry, VersionInfo

Say = Callable[[str], None]


def version_to_resume_with(champion: VersionInfo, run_key: str, recorded: Container[int]) -> tuple[int, int] | None:
    """(the champion of the time, the batch it was replaced at) when ``champion`` was promoted by an interrupted
    attempt of this run at a batch that is not recorded; else None."""
    tags = champion.tags
    made_at, before = tags.get("monitor_batch"), tags.get("compared_with")
    if tags.get("monitor_run_key") != run_key or not made_at or not before or int(made_at) in recorded:
        return None
    return int(before), int(made_at)


def interrupted_batches(registry: Registry, run_key: str, recorded: Container[int]) -> dict[int, str]:
    """{batch index: source identity} of the batches an interrupted attempt of this run registered a version for
    but did not record (``pipeline.domain.batch_keys.number_batches`` gives each its index back)."""
    found: dict[int, str] = {}
    for made in registry.versions_with({"monitor_run_key": run_key}):
        batch, source = made.tags.get("monitor_batch", ""), made.tags.get("monitor_source")
        if batch.isdigit() and int(batch) not in recorded and source:
            found[int(batch)] = source
    return found


def resume_champion(cache: ChampionCache, run_key: str, recorded: Container[int], say: Callable[[str], None]) -> None:
    """A rerun of a run whose interrupted attempt promoted a version: serve the champion of that batch's time."""
    assert cache.current is not None
    found = version_to_resume_with(cache.current, run_key, recorded)
    if found is None:
        return
    before, made_at = found
    say(
        f"resuming run {run_key}: v{cache.version} was promoted at batch {made_at} by an "
        f"interrupted attempt; scoring from there with v{before}, the champion at that batch"
    )
    cache.serve(cache.registry.version(before))


def finish_interrupted(
    registry: Registry, done: VersionInfo, champion_version: int, index: int, run_key: str, say: Say
) -> tuple[Action, list[Event]]:
    """The events of a version an interrupted attempt made for batch ``index``; promotes it if it was decided."""
    promoted = done.tags.get("decision") == "promoted"
    details = {"mlflow_run_id": done.run_id, "candidate": done.tags.get("candidate"), "recovered": True}

    def event(kind: str, message: str) -> Event:
        return Event(run_key, registry.name, kind, message, index, done.version, champion_version, details)

    events = [
        event(
            "retrain",
            f"trained v{done.version} ({done.tags.get('candidate')}) on {done.tags.get('window_rows')} rows "
            "(found after an interrupted attempt)",
        )
    ]
    if done.tags.get("decision") == "held":
        events.append(event("challenger", f"v{done.version} is the challenger, held for a person"))
        say(f"[batch {index}] v{done.version} was trained and held as challenger by an interrupted attempt")
        return Action.retrained_challenger, events
    if not promoted:
        events.append(event("rejection", f"v{done.version} not promoted"))
        say(f"[batch {index}] v{done.version} was trained and rejected by an interrupted attempt")
        return Action.retrained_rejected, events
    current = registry.champion()
    if current is None or current.version != done.version:
        registry.promote(done.version)
    events.append(
        event(
            "promotion",
            f"v{done.version} promoted over v{champion_version} (finished after an interrupted attempt)",
        )
    )
    say(f"[batch {index}] v{done.version} promoted over v{champion_version} (finishing an interrupted attempt)")
    return Action.retrained_promoted, events


def settle_failed_retrain(
    err: BaseException, index: int, tracking_uri: str, monitor_run_id: str | None, wait: float, say: Say
) -> str:
    """Wait for the tracking server if it is down, end the runs the failure left open; returns the error line."""
    import mlflow

    line = one_line(err)
    say(f"[batch {index}] retrain failed: {line}")
    if not tracking.server_up(tracking_uri):
        say(
            f"[batch {index}] MLflow at {tracking_uri} is down; waiting up to {wait:.0f}s "
            "for it before recording anything"
        )
        tracking.wait_for_server(tracking_uri, wait)
        say(f"[batch {index}] MLflow is back")
    active = mlflow.active_run()
    while active is not None and active.info.run_id != monitor_run_id:
        mlflow.end_run("FAILED")
        active = mlflow.active_run()
    if monitor_run_id:
        tracking.end_running_children(monitor_run_id, "FAILED")
    return line
