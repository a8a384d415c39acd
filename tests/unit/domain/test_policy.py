"""Every rule of the decision policy, table-driven, in milliseconds."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from pipeline.domain.policy import advance, auc_stderr, judge, prediction_drifted, rebaseline, training_rows
from pipeline.domain.policy_types import Action, Observation, PolicyState, Rules, Verdict

RULES = Rules(
    drift_threshold=0.1,
    drifted_share_threshold=0.5,
    auc_tolerance=0.05,
    min_rows_for_auc=200,
    prior_tolerance=0.1,
    prior_z=3.0,
    cooldown_batches=3,
    label_retries=2,
    window_rows=5_000,
    min_change_rows=1_000,
    refresh_fraction=0.5,
)
QUIET = Observation(
    rows=1000, prediction_drift=0.02, share_drifted_columns=0.1, drifted_columns=8, mean_prediction=0.34
)


def labelled(positives: int, auc: float, rows: int = 1000, mean: float = 0.34, variance: float = 200.0) -> Observation:
    return Observation(
        rows=rows,
        prediction_drift=0.02,
        share_drifted_columns=0.1,
        drifted_columns=8,
        mean_prediction=mean,
        prediction_variance=variance,
        positives=positives,
        roc_auc=auc,
    )


@pytest.mark.parametrize(
    ("observation", "holdout_auc", "expected"),
    [
        (QUIET, 0.8, (False, False, False)),
        (Observation(1000, 0.1, 0.1, 8, 0.4), 0.8, (True, False, False)),  # prediction drift at the threshold
        (Observation(1000, 0.099, 0.1, 8, 0.4), 0.8, (False, False, False)),
        (Observation(1000, 0.02, 0.5, 40, 0.34), 0.8, (True, False, False)),  # half the columns drifted
        (labelled(340, 0.74), 0.8, (False, True, False)),  # AUC more than 0.05 below the holdout's
        (labelled(340, 0.76), 0.8, (False, False, False)),
        (labelled(340, 0.60), None, (False, False, False)),  # no holdout metric: the performance alarm is off
        (labelled(60, 0.60, rows=150), 0.8, (False, False, False)),  # too few rows to trust
        (labelled(0, float("nan")), 0.8, (False, False, False)),  # one class only
        (labelled(550, 0.8), 0.8, (False, False, True)),  # positives 55% vs predicted 34%
        (labelled(430, 0.8), 0.8, (False, False, False)),  # 9 points: under the 10-point tolerance
        (labelled(460, 0.8, variance=2500.0), 0.8, (False, False, False)),  # 12 points, but under 3 s.e. (0.15)
        (labelled(150, 0.8), 0.8, (False, False, True)),  # a fall counts as much as a rise
    ],
)
def test_which_alarms_fire(observation, holdout_auc, expected):
    verdict = judge(5, observation, PolicyState(), RULES, holdout_auc)
    assert (verdict.drift_detected, verdict.performance_drop, verdict.prior_shift) == expected
    assert verdict.retrain == any(expected)
    assert bool(verdict.reasons) == any(expected)


DRIFT = Observation(1000, 0.5, 0.1, 8, 0.5)


@pytest.mark.parametrize(
    ("state", "index", "retrains", "held_by"),
    [
        (PolicyState(), 5, True, None),
        (PolicyState(last_promotion=4), 5, False, 4),
        (PolicyState(last_promotion=4), 7, False, 4),
        (PolicyState(last_promotion=4), 8, True, None),  # cooldown of 3 batches is over
        (PolicyState(blocked_at=6), 7, False, 6),  # a retrain that could not run
        (PolicyState(rejections=1, last_rejection=6), 7, True, None),  # one rejection: retry at once
        (PolicyState(rejections=2, last_rejection=6), 7, False, 6),  # two in a row: the cooldown holds
        (PolicyState(rejections=2, last_rejection=6), 10, True, None),
    ],
)
def test_the_cooldown(state, index, retrains, held_by):
    verdict = judge(index, DRIFT, state, RULES, 0.8)
    assert verdict.retrain is retrains and verdict.cooldown_from == held_by
    assert verdict.action_without_retrain() is (Action.none if retrains else Action.skipped_cooldown)


def verdict(*, drift=False, performance=False, prior=False, retrain=True) -> Verdict:
    return Verdict(drift, performance, prior, ("why",), retrain)


@pytest.mark.parametrize(
    ("state", "index", "v", "action", "failed", "expected"),
    [
        (PolicyState(), 3, verdict(drift=True), Action.retrained_promoted, False, PolicyState(last_promotion=3)),
        (
            PolicyState(change_at=2, rejections=1, last_rejection=2),
            3,
            verdict(performance=True),
            Action.retrained_promoted,
            False,
            PolicyState(last_promotion=3),
        ),
        (
            PolicyState(),
            3,
            verdict(performance=True),
            Action.retrained_rejected,
            False,
            PolicyState(change_at=3, rejections=1, last_rejection=3),
        ),
        (PolicyState(), 3, verdict(drift=True), Action.retrained_rejected, False, PolicyState(follow_at=3)),
        (PolicyState(), 3, verdict(drift=True), Action.retrained_rejected, True, PolicyState(blocked_at=3)),
        (PolicyState(), 3, verdict(drift=True), Action.skipped_busy, False, PolicyState(blocked_at=3)),
        (
            PolicyState(change_at=2, rejections=1, last_rejection=2),
            4,
            verdict(retrain=False),
            Action.none,
            False,
            PolicyState(),
        ),  # nothing alarms: the episode is over
        (
            PolicyState(last_promotion=1, change_at=2),
            3,
            verdict(prior=True, retrain=False),
            Action.skipped_cooldown,
            False,
            PolicyState(last_promotion=1, change_at=2),
        ),
    ],
)
def test_the_state_after_each_outcome(state, index, v, action, failed, expected):
    quiet = not (v.drift_detected or v.performance_drop or v.prior_shift)
    v = Verdict(False, False, False, (), False) if quiet else v
    assert advance(state, index, v, action, failed=failed) == expected


@pytest.mark.parametrize(
    ("v", "action", "failed", "follows"),
    [
        (verdict(drift=True), Action.retrained_rejected, False, True),  # the champion copes with the new inputs
        (verdict(drift=True, performance=True), Action.retrained_rejected, False, False),
        (verdict(prior=True), Action.retrained_rejected, False, False),
        (verdict(drift=True), Action.retrained_rejected, True, False),  # failed, not judged
        (verdict(drift=True), Action.skipped_cooldown, False, False),
        (verdict(drift=True), Action.retrained_challenger, False, False),
    ],
)
def test_after_a_challenger_rejected_on_input_drift_alone_the_next_batch_becomes_the_reference(
    v, action, failed, follows
):
    state = advance(PolicyState(), 4, v, action, failed=failed)
    assert not rebaseline(PolicyState(), 4, action)  # never the batch that alarmed: it was picked for being unusual
    assert rebaseline(state, 5, Action.none) is follows
    assert rebaseline(state, 5, Action.skipped_cooldown) is follows
    assert not rebaseline(state, 6, Action.none)  # only the next batch


def test_a_promotion_always_makes_the_batch_the_reference():
    for v in (verdict(drift=True), verdict(performance=True)):
        assert rebaseline(PolicyState(), 4, Action.retrained_promoted)
        assert advance(PolicyState(follow_at=3), 4, v, Action.retrained_promoted).follow_at is None


def test_the_batch_after_an_input_drift_rejection_holds_its_drift_alarm_but_not_a_label_alarm():
    state = advance(PolicyState(), 4, verdict(drift=True), Action.retrained_rejected)
    drifted = judge(5, Observation(1000, 0.3, 0.0, 0, 0.4), state, RULES, 0.8)
    assert drifted.alarm and not drifted.retrain and drifted.cooldown_from == 4  # the same shift, seen again
    assert judge(5, labelled(340, 0.6), state, RULES, 0.8).retrain  # labels say the champion is worse: act
    assert judge(6, Observation(1000, 0.3, 0.0, 0, 0.4), state, RULES, 0.8).retrain  # against the new reference


BATCHES = [(0, 3000), (1, 1500), (2, 1500), (3, 1500), (4, 1500)]


@pytest.mark.parametrize(
    ("state", "index", "v", "expected"),
    [
        (PolicyState(), 4, verdict(drift=True), {1: 500, 2: 1500, 3: 1500, 4: 1500}),  # the newest 5,000
        (PolicyState(), 4, verdict(performance=True), {4: 1500}),  # a label alarm: the rows since the change
        (PolicyState(change_at=3), 4, verdict(performance=True), {3: 1500, 4: 1500}),
        (PolicyState(change_at=3), 4, verdict(drift=True), {3: 1500, 4: 1500}),  # the episode goes on
    ],
)
def test_which_rows_a_retrain_uses(state, index, v, expected):
    assert training_rows(BATCHES, index, state, v, RULES) == dict(sorted(expected.items()))


def test_too_few_rows_since_the_change_fall_back_to_the_window():
    small = [(0, 3000), (1, 400), (2, 400)]
    assert training_rows(small, 2, PolicyState(change_at=2), verdict(performance=True), RULES) == {
        0: 3000,
        1: 400,
        2: 400,
    }


def estimated(auc: float | None, rows: int = 1000, positives: int | None = None, realized: float | None = None):
    return Observation(
        rows=rows,
        prediction_drift=0.02,
        share_drifted_columns=0.1,
        drifted_columns=8,
        mean_prediction=0.34,
        prediction_variance=200.0,
        positives=positives,
        roc_auc=realized,
        estimated_roc_auc=auc,
    )


@pytest.mark.parametrize(
    ("observation", "holdout_auc", "drop"),
    [
        (estimated(0.74), 0.8, True),  # unlabelled, estimate more than 0.05 below the holdout's
        (estimated(0.76), 0.8, False),
        (estimated(0.70, rows=150), 0.8, False),  # too few rows to trust the estimate
        (estimated(0.60), None, False),  # no holdout metric: off, as the realized one
        (estimated(None), 0.8, False),  # nothing to estimate with
        (estimated(0.60, positives=340, realized=0.79), 0.8, False),  # labelled: the realized AUC decides
        (estimated(0.60, positives=0, realized=None), 0.8, True),  # one class, no realized AUC: the estimate speaks
    ],
)
def test_the_estimated_performance_drop(observation, holdout_auc, drop):
    verdict = judge(5, observation, PolicyState(), RULES, holdout_auc)

    assert verdict.estimated_drop is drop
    assert verdict.alarm is drop and verdict.retrain is drop
    assert not verdict.performance_drop and not verdict.drift_detected and not verdict.label_alarm
    assert any("estimated ROC AUC" in reason for reason in verdict.reasons) is drop


def test_an_estimated_drop_rejected_rebaselines_like_input_drift():
    verdict = judge(5, estimated(0.70), PolicyState(), RULES, 0.8)

    assert advance(PolicyState(), 5, verdict, Action.retrained_rejected) == PolicyState(follow_at=5)  # no episode
    assert judge(6, estimated(0.70), PolicyState(last_promotion=5), RULES, 0.8).cooldown_from == 5


# ---------------------------------------------------------------- noise-aware rules and a world that keeps moving


def test_the_auc_standard_error_is_hanley_and_mcneils():
    # A = 0.8 on 100 positives and 100 negatives: Q1 = 2/3, Q2 = 32/45, variance 9.84e-4 (by hand)
    assert auc_stderr(0.8, 100, 100) == pytest.approx(math.sqrt(9.84e-4), rel=1e-3)
    assert auc_stderr(0.8, 0, 100) == math.inf


def test_an_auc_drop_beyond_the_tolerance_alarms_only_beyond_its_noise():
    small = labelled(30, 0.72, rows=200)  # 0.08 below, but the s.e. at 30 positives is about 0.045
    large = labelled(340, 0.72, rows=1000)  # the same drop on 1,000 rows: about 5 s.e.
    assert not judge(1, small, PolicyState(), RULES, 0.8).performance_drop
    assert judge(1, large, PolicyState(), RULES, 0.8).performance_drop
    # the holdout's own noise counts when its size is known: a tiny holdout hides the same drop
    assert not judge(1, large, PolicyState(), RULES, 0.8, holdout_counts=(20, 40)).performance_drop


def test_prediction_drift_needs_the_threshold_and_the_noise_band():
    def seen(score: float, p: float | None) -> Observation:
        return Observation(200, score, 0.0, 0, 0.4, prediction_drift_p=p)

    assert not prediction_drifted(seen(0.25, 0.2), RULES)  # above the threshold, within chance at this size
    assert prediction_drifted(seen(0.25, 0.001), RULES)
    assert not prediction_drifted(seen(0.05, 1e-9), RULES)  # beyond chance, but too small to matter
    assert prediction_drifted(seen(0.25, None), RULES)  # no noise model: the threshold alone


@pytest.mark.parametrize(
    ("since", "observation", "trained", "due"),
    [
        (400, labelled(60, 0.8, rows=200), 1000, True),  # 600 new labelled rows >= 0.5 x 1,000
        (200, labelled(60, 0.8, rows=200), 1000, False),
        (900, QUIET, 1000, False),  # an unlabelled batch brings nothing to learn from
        (900, labelled(60, 0.8, rows=200), None, False),  # training rows unknown (adopted): never
    ],
)
def test_a_refresh_is_due_when_enough_new_labelled_rows_arrived(since, observation, trained, due):
    verdict = judge(5, observation, PolicyState(labelled_since=since), RULES, 0.8, trained_rows=trained)
    assert verdict.refresh is due and verdict.retrain is due and not verdict.alarm


def test_a_label_alarm_is_not_held_by_a_promotions_cooldown_but_drift_is():
    after_promotion = PolicyState(last_promotion=4)
    assert judge(5, labelled(340, 0.6), after_promotion, RULES, 0.8).retrain
    drift = judge(5, Observation(1000, 0.3, 0.0, 0, 0.4), after_promotion, RULES, 0.8)
    assert drift.alarm and not drift.retrain and drift.cooldown_from == 4


def test_a_retrain_restarts_the_refresh_count_and_a_refresh_does_not_rebaseline():
    refresh = Verdict(False, False, False, ("refresh",), retrain=True, refresh=True)
    state = PolicyState(labelled_since=700)
    assert advance(state, 6, refresh, Action.retrained_rejected, labelled_rows=200).labelled_since == 0
    assert (
        advance(state, 6, Verdict(False, False, False, (), False), Action.none, labelled_rows=200).labelled_since == 900
    )
    assert advance(state, 6, refresh, Action.retrained_rejected).follow_at is None  # nothing to follow
    drift = Verdict(True, False, False, (), True)
    assert advance(state, 6, drift, Action.retrained_rejected).follow_at == 6


def test_a_challenger_held_for_a_person_holds_every_retrain_for_the_cooldown_and_keeps_the_reference():
    label_alarm = Verdict(False, True, False, ("AUC dropped",), True)
    held = advance(PolicyState(labelled_since=700), 4, label_alarm, Action.retrained_challenger, labelled_rows=200)
    assert held.blocked_at == 4 and held.labelled_since == 0 and held.last_promotion is None
    assert not rebaseline(held, 5, Action.none)
    again = judge(5, labelled(340, 0.6), held, RULES, 0.8)
    assert again.alarm and not again.retrain and again.cooldown_from == 4  # a label alarm is held too
    later = judge(4 + RULES.cooldown_batches + 1, labelled(340, 0.6), held, RULES, 0.8)
    assert later.retrain


@pytest.mark.parametrize(
    ("auc", "p", "fires"),
    [
        (0.90, 1e-12, True),  # far beyond its threshold and its noise
        (0.60, 0.02, False),  # beyond the threshold, within chance at the 1% rate
        (0.53, 1e-4, False),  # beyond chance, below the threshold: a real but small change
        (None, None, False),  # not measured (turned off, or a batch too small)
        (float("nan"), float("nan"), False),
    ],
)
def test_multivariate_drift_needs_its_threshold_and_to_be_beyond_chance(auc, p, fires):
    observation = Observation(
        rows=1000,
        prediction_drift=0.02,
        share_drifted_columns=0.0,
        drifted_columns=0,
        mean_prediction=0.34,
        multivariate_auc=auc,
        multivariate_p=p,
    )
    verdict = judge(1, observation, PolicyState(), RULES, holdout_auc=0.8)
    assert verdict.multivariate_drift is fires
    assert verdict.drift_detected is fires and verdict.alarm is fires and verdict.retrain is fires
    assert any("multivariate drift" in reason for reason in verdict.reasons) is fires


def test_multivariate_drift_alone_is_input_drift_a_rejected_challenger_rebaselines_on():
    observation = Observation(
        rows=1000,
        prediction_drift=0.02,
        share_drifted_columns=0.0,
        drifted_columns=0,
        mean_prediction=0.34,
        multivariate_auc=0.9,
        multivariate_p=1e-9,
    )
    verdict = judge(4, observation, PolicyState(), RULES, holdout_auc=0.8)
    assert verdict.drift_only and not verdict.label_alarm
    state = advance(PolicyState(), 4, verdict, Action.retrained_rejected)
    assert rebaseline(state, 5, Action.none)


def partly(positives: int, auc: float, labelled_rows: int, mean: float = 0.34) -> Observation:
    """A batch of 1000 rows of which ``labelled_rows`` have a label."""
    return replace(
        labelled(positives, auc), labelled_rows=labelled_rows, labelled_prediction=(mean, labelled_rows * 0.2)
    )


def test_a_partly_labelled_batch_is_judged_on_its_labelled_rows():
    quarter_empty = partly(255, 0.74, labelled_rows=750)
    assert quarter_empty.label_rows == 750
    assert quarter_empty.positive_rate == pytest.approx(0.34)  # 255 of the 750 labelled, not of the 1000
    assert judge(1, quarter_empty, PolicyState(), RULES, 0.8).performance_drop
    too_few = partly(50, 0.6, labelled_rows=150)  # 1000 rows, but too few labelled ones to trust
    assert not judge(1, too_few, PolicyState(), RULES, 0.8).performance_drop


def test_the_prior_shift_compares_the_labelled_rows_with_their_own_predictions():
    # 44% positive among the labelled rows; the whole batch is predicted at 34%, its labelled rows at 44%
    assert not judge(1, partly(330, 0.8, labelled_rows=750, mean=0.44), PolicyState(), RULES, 0.8).prior_shift
    assert judge(1, partly(330, 0.8, labelled_rows=750, mean=0.30), PolicyState(), RULES, 0.8).prior_shift


def test_a_refresh_counts_only_the_labelled_rows():
    state = PolicyState(labelled_since=1000)
    observation = partly(100, 0.8, labelled_rows=300)
    assert not judge(1, observation, state, RULES, 0.8, trained_rows=2700).refresh  # 1300 < 0.5 x 2700
    assert judge(1, observation, state, RULES, 0.8, trained_rows=2600).refresh  # 1300 >= 0.5 x 2600
