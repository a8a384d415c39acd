"""The incident rule, as a table: a stream of batches and the notices it sends, batch by batch."""

from __future__ import annotations

import pytest

from pipeline.domain.incidents import BatchFacts, Incidents, Notice, segment_step, step
from pipeline.domain.policy_types import Action

D, P, E = "drift_detected", "performance_drop", "estimated_drop"
N = Action.none


def alarm(*causes: str, action: Action = Action.skipped_cooldown, failed: bool = False):
    return lambda index: BatchFacts(index, frozenset(causes), action, failed)


def quiet(action: Action = N):
    return lambda index: BatchFacts(index, frozenset(), action)


def refused():
    return lambda index: BatchFacts(index, refused=True)


TABLE = [
    ("a stable stream says nothing", [quiet(), quiet(), quiet()], [[], [], []]),
    (
        "a drift promoted at once: opened, then promoted; the quiet batches after say nothing",
        [quiet(), alarm(D, action=Action.retrained_promoted), quiet(), quiet()],
        [[], [Notice.alarm, Notice.promotion], [], []],
    ),
    (
        "a persisting drift is one incident, cleared once",
        [alarm(D, action=Action.retrained_rejected), alarm(D), alarm(D), quiet()],
        [[Notice.alarm, Notice.rejection], [], [], [Notice.cleared]],
    ),
    (
        "a new cause joining the open incident is said once",
        [alarm(D, action=N), alarm(D, P, action=N), alarm(P, action=N), alarm(D, P, action=N)],
        [[Notice.alarm], [Notice.alarm_grew], [], []],
    ),
    (
        "a failed retrain is said, the incident stays open",
        [alarm(D, action=Action.retrained_rejected, failed=True), alarm(D), quiet()],
        [[Notice.alarm, Notice.retrain_failed], [], [Notice.cleared]],
    ),
    (
        "a challenger held for a person is said, the incident stays open",
        [alarm(P, action=Action.retrained_challenger), alarm(P), quiet()],
        [[Notice.alarm, Notice.challenger], [], [Notice.cleared]],
    ),
    (
        "a retry's second rejection on the same incident is said (each decision is)",
        [alarm(P, action=Action.retrained_rejected), alarm(P, action=Action.retrained_rejected)],
        [[Notice.alarm, Notice.rejection], [Notice.rejection]],
    ),
    (
        "a refresh without an alarm: its promotion is said, its rejection is not",
        [quiet(Action.retrained_promoted), quiet(Action.retrained_rejected)],
        [[Notice.promotion], []],
    ),
    (
        "after a promotion the same cause again is a new incident",
        [alarm(E, action=Action.retrained_promoted), alarm(E, action=N)],
        [[Notice.alarm, Notice.promotion], [Notice.alarm]],
    ),
    (
        "refused batches are one incident: the first said, monitoring again said once",
        [refused(), refused(), refused(), quiet(), quiet()],
        [[Notice.batch_refused], [], [], [Notice.monitoring_resumed], []],
    ),
    (
        "a refused batch inside an alarm leaves the alarm open",
        [alarm(D, action=N), refused(), alarm(D, action=N), quiet()],
        [[Notice.alarm], [Notice.batch_refused], [Notice.monitoring_resumed], [Notice.cleared]],
    ),
    (
        "busy and cooldown skips are the incident going on, not news",
        [alarm(D, action=Action.skipped_busy), alarm(D, action=Action.skipped_cooldown)],
        [[Notice.alarm], []],
    ),
]


@pytest.mark.parametrize(("stream", "expected"), [(s, e) for _name, s, e in TABLE], ids=[n for n, _s, _e in TABLE])
def test_the_notices_of_a_stream(stream, expected):
    state, said = Incidents(), []
    for index, make in enumerate(stream, start=1):
        state, notices = step(state, make(index))
        said.append(list(notices))
    assert said == expected


def test_the_open_incident_remembers_where_it_opened_and_its_causes():
    state, _ = step(Incidents(), BatchFacts(3, frozenset({D})))
    state, _ = step(state, BatchFacts(4, frozenset({P})))
    assert state.opened_at == 3 and state.causes == {D, P}
    state, notices = step(state, BatchFacts(5))
    assert notices == (Notice.cleared,) and not state.alarm_open and state.causes == frozenset()


def test_the_facts_of_a_recorded_row():
    row = {"drift_detected": True, "performance_drop": False, "prior_shift": None, "estimated_drop": True}
    facts = BatchFacts.of_row(7, {**row, "action": "retrained-promoted"})
    assert facts == BatchFacts(7, frozenset({D, E}), Action.retrained_promoted)


OLD, NORTH = "age=>=80", "region=north"
SEGMENT_TABLE = [
    ("no segments alarmed says nothing", [set(), set(), None], [[], [], []]),
    (
        "a persisting segment alarm is one incident, cleared once",
        [set(), {OLD}, {OLD}, {OLD}, set(), set()],
        [[], [Notice.segment_alarm], [], [], [Notice.segment_cleared], []],
    ),
    (
        "a segment joining the open incident is said once; one that leaves it is not news",
        [{OLD}, {OLD, NORTH}, {NORTH}, {OLD}, set()],
        [[Notice.segment_alarm], [Notice.segment_alarm_grew], [], [], [Notice.segment_cleared]],
    ),
    (
        "a batch not measured (its segments failed) neither opens, grows nor clears it",
        [{OLD}, None, {OLD}, None, set()],
        [[Notice.segment_alarm], [], [], [], [Notice.segment_cleared]],
    ),
]


@pytest.mark.parametrize(
    ("alarms", "expected"), [(a, e) for _name, a, e in SEGMENT_TABLE], ids=[n for n, _a, _e in SEGMENT_TABLE]
)
def test_the_segment_notices_of_a_stream(alarms, expected):
    state, said = Incidents(), []
    for index, alarmed in enumerate(alarms, start=1):
        state, notices = segment_step(state, index, None if alarmed is None else frozenset(alarmed))
        said.append(list(notices))
    assert said == expected


def test_the_segment_incident_is_apart_from_the_batch_alarm():
    """A promotion closes the batch's alarm incident, not the segments' (a segment alarm does not retrain)."""
    state, _ = segment_step(Incidents(), 2, frozenset({OLD}))
    state, _ = step(state, BatchFacts(2, frozenset({D})))
    state, notices = step(state, BatchFacts(3, frozenset({D}), Action.retrained_promoted))
    assert notices == (Notice.promotion,) and not state.alarm_open
    assert state.segments_since == 2 and state.segments == {OLD}
