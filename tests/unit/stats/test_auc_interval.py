"""The expected ROC AUC of grouped rows: ranked by score, expected from the calibrated probabilities, hand-counted."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.stats.auc_interval import expected_roc_auc, grouped_estimate, ranked_pairs


def test_the_ranking_is_the_raw_scores_and_the_expectation_the_calibrated_ones():
    # Two rows, ranked by score; the lower-scored is surely positive, the higher surely negative: AUC 0.
    assert expected_roc_auc(np.array([0.9, 0.1]), np.array([0.0, 1.0])) == pytest.approx(0.0)


def test_certain_labels_ranked_by_other_scores_give_a_point_interval_at_the_hand_counted_auc():
    # Scores 1 < 2 < 3 < 4, labels certain: 0, 1, 0, 1. Pairs (positive, negative): (2,1) right, (2,3) wrong,
    # (4,1) right, (4,3) right: AUC 3/4, whatever is drawn.
    estimate = grouped_estimate(np.arange(1.0, 5.0), np.ones(4), np.array([0.0, 1.0, 0.0, 1.0]), 2.0)
    assert estimate.roc_auc == estimate.roc_auc_low == estimate.roc_auc_high == pytest.approx(0.75)
    assert estimate.accuracy == pytest.approx(0.5)


def test_ranked_pairs_count_the_pairs_ranked_right_and_the_pairs_tied():
    # Groups 0 < 1 < 2: positives 0, 2, 1 and negatives 1, 1, 3. Right: the 2 positives of group 1 over the
    # negative of group 0 (2), the positive of group 2 over the negatives of groups 0 and 1 (2). Tied: 2 x 1 + 1 x 3.
    right, tied = ranked_pairs(np.array([0.0, 2.0, 1.0]), np.array([1.0, 1.0, 3.0]))
    assert (right, tied) == (4.0, 5.0)
