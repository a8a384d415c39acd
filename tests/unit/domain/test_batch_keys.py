"""A batch is known by its source's identity, never by its place in the list a run was given."""

from __future__ import annotations

import pytest

from pipeline.domain.batch_keys import Numbered, number_batches, processing_order


@pytest.mark.parametrize(
    ("names", "recorded", "placed"),
    [
        (["a", "b"], {}, [Numbered(1), Numbered(2)]),  # a new run: 1, 2, ...
        (["a", "b"], {1: "a"}, [Numbered(1, recorded=True), Numbered(2)]),  # a rerun after a crash
        (["c"], {1: "a", 2: "b"}, [Numbered(3)]),  # the next scheduled run: on after the newest recorded
        (["c", "a"], {1: "a", 2: "b"}, [Numbered(3), Numbered(1, recorded=True)]),  # not by place: by source
        (["a#new"], {1: "a#old"}, [Numbered(2)]),  # the same path with new content is a new batch
        (["a", "a"], {}, [Numbered(1), Numbered(None)]),  # given twice: read once
        (["b"], {1: "a", 4: "x"}, [Numbered(5)]),  # a gap (a batch refused) is not filled
        (["a"], {1: "a", 3: "a"}, [Numbered(3, recorded=True)]),  # recorded twice (inbox retry): the newest
    ],
)
def test_each_source_is_placed_by_its_identity(names, recorded, placed):
    assert number_batches(names, recorded) == placed


@pytest.mark.parametrize(
    ("names", "recorded", "interrupted", "placed", "order"),
    [
        # killed after promoting at batch 2 ("b"); "a2" sorts first and arrived before the rerun: "b" keeps 2
        (
            ["a", "a2", "b"],
            {1: "a"},
            {2: "b"},
            [Numbered(1, recorded=True), Numbered(3), Numbered(2, resumed=True)],
            [2, 0, 1],
        ),
        # the interrupted file was not given again: its index is free for the next new one
        (["c"], {1: "a"}, {2: "b"}, [Numbered(2)], [0]),
        # an interrupted batch recorded after all (its row was written) is a recorded one
        (["b"], {1: "a", 2: "b"}, {2: "b"}, [Numbered(2, recorded=True)], [0]),
    ],
)
def test_an_interrupted_attempt_s_source_gets_its_batch_back_and_comes_first(
    names, recorded, interrupted, placed, order
):
    numbered = number_batches(names, recorded, interrupted)
    assert numbered == placed
    assert processing_order(numbered) == order
