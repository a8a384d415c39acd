"""The batches a run recorded before: the policy replayed from their rows alone, and a revisited source read
again only when its rows are needed."""

from __future__ import annotations

import pandas as pd

from pipeline.app import earlier_batches
from pipeline.domain.policy_types import Action, PolicyState


def row(action: Action, **extra):
    return {"action": action.value, "drift_detected": True, "performance_drop": False, **extra}


def test_a_recorded_promotion_starts_the_cooldown_and_makes_that_batch_the_reference():
    state, rebased = earlier_batches.replay_row(PolicyState(), 4, row(Action.retrained_promoted))
    assert state.last_promotion == 4
    assert rebased


def test_a_recorded_alarm_without_retrain_moves_no_promotion_and_keeps_the_reference():
    state, rebased = earlier_batches.replay_row(PolicyState(), 2, row(Action.none, drift_detected=True))
    assert state.last_promotion is None
    assert not rebased


def test_labelled_rows_count_only_when_the_batch_was_scored_on_its_labels():
    scored = row(Action.none, drift_detected=False, labelled_rows=300, roc_auc=0.8)
    unscored = row(Action.none, drift_detected=False, labelled_rows=300, roc_auc=None)
    assert earlier_batches.replay_row(PolicyState(), 1, scored)[0].labelled_since == 300
    assert earlier_batches.replay_row(PolicyState(), 1, unscored)[0].labelled_since == 0


class Source:
    def __init__(self, frame: pd.DataFrame | None) -> None:
        self.name, self.frame, self.loads = "day.csv#abc", frame, 0

    def load(self):
        self.loads += 1
        if self.frame is None:
            raise OSError("gone")
        return Batch(self.frame)


class Batch:
    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame, self.has_labels, self.unlabelled_rows = frame, True, 0


class Reader:
    schema = None  # every row of these batches is labelled: the schema is not looked at

    def in_chunks(self, _source) -> bool:
        return False


class Cache:
    def __init__(self) -> None:
        self.references: list[tuple[int, bool]] = []

    def set_reference(self, frame, fitted: bool) -> None:
        self.references.append((len(frame), fitted))


def revisit(source, recorded, window, cache, rebased=False, said=None):
    earlier_batches.revisit(
        3,
        source,
        recorded,
        rebased=rebased,
        window=window,
        cache=cache,
        reader=Reader(),
        say=(said if said is not None else []).append,
    )


def test_a_labelled_batch_missing_from_the_window_is_read_again_into_its_place():
    frame = pd.DataFrame({"x": [1, 2]})
    window = [(0, "ref", frame), (5, "later", frame)]
    source = Source(frame)
    revisit(source, row(Action.none, labelled_rows=2), window, Cache())
    assert [entry[0] for entry in window] == [0, 3, 5]


def test_a_batch_already_in_the_window_and_not_the_reference_is_not_read():
    frame = pd.DataFrame({"x": [1, 2]})
    source = Source(frame)
    revisit(source, row(Action.none, labelled_rows=2), [(3, "it", frame)], Cache())
    assert source.loads == 0


def test_a_batch_that_became_the_reference_is_the_reference_again_fitted_only_after_a_promotion():
    frame = pd.DataFrame({"x": [1, 2, 3]})
    promoted, followed = Cache(), Cache()
    revisit(Source(frame), row(Action.retrained_promoted), [], promoted, rebased=True)
    revisit(Source(frame), row(Action.none), [], followed, rebased=True)
    assert promoted.references == [(3, True)]
    assert followed.references == [(3, False)]


def test_a_batch_that_cannot_be_read_again_is_a_warning_and_leaves_the_window_alone():
    window: list = []
    said: list[str] = []
    revisit(Source(None), row(Action.none, labelled_rows=2), window, Cache(), said=said)
    assert window == []
    assert said and "not read again" in said[0]
