"""The batches a run recorded before this attempt (an interrupted attempt's, an inbox's or a schedule's earlier
runs): how the loop picks up where they left it.

- ``replay_row``: the policy moved on from a recorded row alone (its verdict and action, no data read);
- ``late_labelled``: their labelled rows, read back from the prediction log, for the retraining window;
- ``revisit``: a recorded source met again in this run, read again only when its rows are needed (its labels are
  not in the window yet, or it became the reference).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline.app.champion import ChampionCache
from pipeline.app.reading import BatchReader
from pipeline.app.retraining import Window
from pipeline.app.sources import BatchSource
from pipeline.domain import policy
from pipeline.domain.policy_types import Action, PolicyState, Verdict
from pipeline.domain.schema import FeatureSchema
from pipeline.domain.values import one_line
from pipeline.io.data import Batch, labelled_frame
from pipeline.io.store import MetricsStore
from pipeline.io.tables import DataError

Say = Callable[[str], None]


def replay_row(state: PolicyState, index: int, recorded: dict[str, Any]) -> tuple[PolicyState, bool]:
    """The policy's state after a recorded row, and whether that batch became the reference."""
    action = Action(recorded["action"])
    verdict = Verdict(
        drift_detected=bool(recorded["drift_detected"]),
        performance_drop=bool(recorded["performance_drop"]),
        prior_shift=bool(recorded.get("prior_shift")),
        estimated_drop=bool(recorded.get("estimated_drop")),
        multivariate_drift=bool(recorded.get("multivariate_drift")),
        reasons=(),
        retrain=action in (Action.retrained_promoted, Action.retrained_rejected, Action.skipped_busy),
    )
    labelled = int(recorded.get("labelled_rows") or 0) if recorded.get("roc_auc") is not None else 0
    after = policy.advance(state, index, verdict, action, labelled_rows=labelled)
    return after, policy.rebaseline(state, index, action)


def late_labelled(
    reader: BatchReader,
    store: MetricsStore,
    schema: FeatureSchema,
    model: str,
    run_key: str,
    recorded: dict[int, dict[str, Any]],
    window_rows: int,
    say: Say,
) -> Window:
    """The labelled rows of the run's earlier batches, labelled in the batch or later (``pipeline labels``), read
    back from the prediction log: a scheduled run's window holds more than its one new batch. Empty without an id
    column or a prediction log; a log that cannot be read is a warning, not a failure of the run."""
    log = reader.prediction_log
    earlier = [i for i in sorted(recorded) if recorded[i].get("labelled_rows")]
    if not earlier or schema.id is None or log is None:
        return []
    from pipeline.app.labels import late_labelled_window

    try:
        found = late_labelled_window(log, store, schema, model, run_key, earlier, window_rows)
    except DataError as err:
        say(f"warning: late-labelled rows not added to the retraining window ({err})")
        return []
    if found:
        rows = sum(len(frame) for _i, _n, frame in found)
        say(f"{rows} labelled rows of {len(found)} earlier batches of the run join the retraining window")
    return list(found)


def read_again(reader: BatchReader, index: int, source: BatchSource, say: Say) -> Batch | None:
    """A recorded batch read whole again (None for one read in chunks, or that cannot be read any more)."""
    try:
        return None if reader.in_chunks(source) else source.load()
    except Exception as err:  # noqa: BLE001 - its record stands; only its rows are missing from the window
        say(f"[batch {index}] warning: not read again for the retraining window ({one_line(err, 120)})")
        return None


def revisit(
    index: int,
    source: BatchSource,
    recorded: dict[str, Any],
    *,
    rebased: bool,
    window: Window,
    cache: ChampionCache,
    reader: BatchReader,
    say: Say,
) -> None:
    """A source recorded before, met again: its labelled rows join ``window`` when they are not in it yet, and a
    batch that became the reference is the reference again."""
    in_window = {position for position, _name, _frame in window}
    labelled = bool(recorded.get("labelled_rows")) and index not in in_window
    batch = read_again(reader, index, source, say) if labelled or rebased else None
    if batch is None:
        return
    if labelled and batch.has_labels:
        window.append((index, source.name, labelled_frame(batch, reader.schema)))
        window.sort(key=lambda entry: entry[0])
    if rebased:
        # the champion itself was loaded (as of now) when the run started
        promoted = recorded["action"] == Action.retrained_promoted.value
        cache.set_reference(batch.frame, fitted=promoted and batch.has_labels)
