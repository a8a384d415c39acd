"""The monitor's records: a batch's columns are its row's fields, an event's kind is one of the known kinds."""

from __future__ import annotations

from dataclasses import fields

import pytest

from pipeline.domain.records import (
    BATCH_COLUMNS,
    EVENT_KINDS,
    RUN_LEVEL,
    VERDICT_COLUMNS,
    BatchRow,
    Event,
)


def _row(**changes: object) -> BatchRow:
    """A batch built by position with the fields of the first release only, as older callers build it."""
    row = BatchRow(
        "run", 3, "triage", 1, "batch-3.csv", 100, 0.05, 0.1, 1, 0.1, 0.0, 0, False, None, None, False, "none"
    )
    return BatchRow(**{**row.__dict__, **changes})


def test_the_batch_columns_are_the_rows_fields_key_first_each_once() -> None:
    assert tuple(f.name for f in fields(BatchRow)) == BATCH_COLUMNS
    assert BATCH_COLUMNS[:2] == ("run_key", "batch_index")
    assert len(set(BATCH_COLUMNS)) == len(BATCH_COLUMNS)


def test_every_verdict_is_a_boolean_column_of_the_row() -> None:
    types = {f.name: f.type for f in fields(BatchRow)}
    assert {name: types.get(name) for name in VERDICT_COLUMNS} == dict.fromkeys(VERDICT_COLUMNS, "bool")


def test_a_row_built_by_position_is_no_shift_unlabelled_and_without_estimate() -> None:
    row = _row()
    assert (row.prior_shift, row.estimated_drop, row.positive_rate, row.labelled_rows) == (False, False, None, None)
    assert (row.estimated_roc_auc, row.estimate_trusted) == (None, None)
    assert not any(getattr(row, name) for name in VERDICT_COLUMNS)
    assert any(getattr(_row(estimated_drop=True), name) for name in VERDICT_COLUMNS)


@pytest.mark.parametrize("kind", EVENT_KINDS)
def test_every_known_kind_makes_an_event_of_no_batch_by_default(kind: str) -> None:
    event = Event("run", "triage", kind, "message")
    assert (event.kind, event.batch_index, event.details) == (kind, RUN_LEVEL, {})


@pytest.mark.parametrize("kind", ["bogus", "Alarm", ""])
def test_an_unknown_kind_is_refused(kind: str) -> None:
    with pytest.raises(ValueError, match="unknown event kind"):
        Event("run", "triage", kind, "message")


def test_events_do_not_share_their_details() -> None:
    first, second = Event("run", "triage", "alarm", "a"), Event("run", "triage", "alarm", "b")
    first.details["drifted"] = ["age"]
    assert second.details == {}
