"""The decision policy: what the monitor does with a batch. Pure functions of plain values, no I/O.

One implementation, used by the monitor, the benchmarks and (through the verdict columns it produces) the
dashboard's alert. Per batch:

1. ``judge``: from the batch's ``Observation`` and the ``PolicyState``, a ``Verdict``: which alarms fire and
   why, and whether to retrain now. Every rule compares its score with the noise that score has at the batch's
   size, at one false-alarm rate (``false_alarm_rate``, about 1% of batches that did not drift, per rule):
   - **Prediction drift**: the champion's predicted probabilities moved (normed Wasserstein distance between
     reference and batch) by at least ``drift_threshold``, **and** beyond chance: the score's p-value against the
     reference's own sampling noise at the batch's size (``pipeline.stats.noise``) is at most the rate.
   - **Dataset drift**: at least ``drifted_share_threshold`` of the feature columns drifted, a column counting
     only when its score reaches the column threshold and Benjamini-Hochberg at the rate rejects it
     (``DriftResult.judged``): under no drift, any column at all is declared drifted at most at the rate.
   - **Multivariate drift**: a domain classifier tells the batch's rows from the reference's (its held-out ROC
     AUC, ``pipeline.stats.multivariate``) at ``multivariate_threshold`` or more **and** beyond chance: the AUC's
     p-value under no change (Mann-Whitney, at the sample's size) is at most the rate. It sees a change in how the
     features move together while each column stays put. An input-drift alarm like the two above:
     ``drift_detected`` is set with it, so it retrains, cools down and rebaselines as they do; its own verdict
     (``multivariate_drift``) says which rule it was.
   - **Performance drop**: on a labelled batch with at least ``min_rows_for_auc`` rows and both classes, ROC
     AUC more than ``auc_tolerance`` below the champion's holdout AUC **and** below it by the one-sided z of the
     rate times its standard error (Hanley-McNeil, with the holdout AUC's own when its size is known:
     ``auc_test``). Only this sees a concept shift.
   - **Estimated performance drop**: on a batch without such labels (at least ``min_rows_for_auc`` rows), the
     ROC AUC estimated from the champion's probabilities alone (``pipeline.stats.estimate``), by the same rule with
     the expected positives and negatives. On a labelled batch the realized AUC decides; the estimate is kept
     to show its error. It cannot see a concept shift (the model stays as confident as before): late labels
     (``pipeline labels``) can.
   - **Prior shift**: on such a labelled batch, the observed positive rate differs from the champion's mean
     predicted probability by at least ``prior_tolerance`` and by at least ``prior_z`` standard errors (the
     binomial error of the rate if the predictions were right: sqrt(sum p(1-p)) / n; 3 s.e. is 0.27% of stable
     batches, two-sided). Only this sees the share of positives move while the inputs do not: ROC AUC ranks,
     so it holds, and no input moves.
   - **Refresh** (not an alarm): in a world that keeps moving no batch is a step change, but the newest rows
     teach what the champion never saw: once the labelled rows since its last retrain reach
     ``refresh_fraction`` of the rows it was trained on, the batch retrains (``refresh_due``).
   An alarm or a refresh retrains unless the cooldown holds: within ``cooldown_batches`` batches after a
   promotion (the new champion needs time to be judged; a label alarm beyond noise *is* that judgment and is
   not held), or after a retrain that could not run (another monitor busy, the tracking server down). A
   **rejected** challenger does not start a cooldown when labels say the champion is worse (performance drop
   or prior shift): the next alarmed batch retries with more rows since the change, up to ``label_retries``
   rejections in a row; then the cooldown holds as after a promotion. A rejected refresh restarts the count.
   A challenger rejected on an input-drift alarm alone means the champion copes with the new inputs: the
   reference follows them, so the same shift does not alarm again (``rebaseline``). It moves to the **next**
   batch, not to the one that alarmed: that one was picked for being unusual (a batch of a stable world alarms
   now and then by chance, and a reference made of such a batch makes the fair batches after it alarm), while
   the next batch is a fair sample of whatever world follows. The next batch's input-drift alarm (against the
   old reference) is held for that one batch: it is the same shift.
2. ``training_rows``: which labelled rows the retrain uses. After a label alarm, only the rows since the
   change (the first batch of the episode whose labels alarmed) once there are ``min_change_rows`` of them,
   newest last: training on mostly old rows would teach the old relation again. Otherwise the newest
   ``window_rows``.
3. ``advance``: the next state, once the batch's action is known.

The values these rules read and return (``Rules``, ``Observation``, ``PolicyState``, ``Verdict``, ``Action``) are
in ``pipeline.domain.policy_types``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from pipeline.domain.policy_types import Action, Observation, PolicyState, Rules, Verdict


def prior_gap(observation: Observation) -> tuple[float, float] | None:
    """(observed rate - mean prediction, its standard error if the predictions were right), or None."""
    rate = observation.positive_rate
    if rate is None or not observation.judgeable:
        return None
    mean, variance = observation.labelled_mean_prediction
    stderr = math.sqrt(max(variance, 0.0)) / observation.label_rows
    return rate - mean, stderr


def one_sided_z(rate: float) -> float:
    """The standard normal score that chance exceeds with probability ``rate``."""
    from scipy.stats import norm

    return float(norm.isf(rate))


def auc_stderr(auc: float, positives: float, negatives: float) -> float:
    """The standard error of a ROC AUC of ``auc`` measured on that many positives and negatives (Hanley and
    McNeil, 1982); infinite when a class is missing."""
    if positives < 1 or negatives < 1:
        return math.inf
    a = min(max(auc, 1e-6), 1 - 1e-6)
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    variance = (a * (1 - a) + (positives - 1) * (q1 - a * a) + (negatives - 1) * (q2 - a * a)) / (positives * negatives)
    return math.sqrt(max(variance, 0.0))


@dataclass(frozen=True)
class AucTest:
    """A batch's ROC AUC against the champion's holdout AUC: the drop, its noise, and the verdict."""

    drop: float  # holdout AUC - batch AUC
    stderr: float  # the batch AUC's standard error if its true AUC were the holdout's
    dropped: bool

    @property
    def z(self) -> float:
        return self.drop / self.stderr if self.stderr > 0 else math.inf


def auc_test(
    auc: float,
    holdout_auc: float,
    positives: float,
    negatives: float,
    rules: Rules,
    holdout_counts: tuple[float, float] | None = None,
) -> AucTest:
    """The performance rule, for realized, estimated and late-labelled ROC AUC alike: the AUC is more than
    ``auc_tolerance`` below the holdout AUC **and** the drop is beyond the noise of an AUC on that many positives
    and negatives (one-sided, at ``false_alarm_rate``: a drop of z = 2.33 standard errors for 1%), and of the
    holdout AUC itself when its positives and negatives are known (``holdout_counts``). An estimated AUC passes
    its expected positives and negatives (the sum of the P(positive) and of their complements)."""
    drop = holdout_auc - auc
    stderr = auc_stderr(holdout_auc, positives, negatives)
    if holdout_counts is not None:
        stderr = math.hypot(stderr, auc_stderr(holdout_auc, *holdout_counts))
    dropped = drop > rules.auc_tolerance and drop >= one_sided_z(rules.false_alarm_rate) * stderr
    return AucTest(drop, stderr, dropped)


def auc_drop_reason(what: str, auc: float, holdout_auc: float, test: AucTest, rules: Rules) -> str:
    return (
        f"{what} {auc:.3f} below holdout {holdout_auc:.3f} by more than {rules.auc_tolerance} "
        f"and {test.z:.1f} s.e. ({test.stderr:.3f})"
    )


def prediction_drifted(observation: Observation, rules: Rules) -> bool:
    """The prediction-drift rule: the score at or above ``drift_threshold`` and, when it was judged against the
    reference's noise band, beyond chance at ``false_alarm_rate``."""
    if observation.prediction_drift < rules.drift_threshold:
        return False
    p = observation.prediction_drift_p
    return p is None or math.isnan(p) or p <= rules.false_alarm_rate


def multivariate_drifted(observation: Observation, rules: Rules) -> bool:
    """The multivariate rule: the domain classifier's AUC at or above ``multivariate_threshold`` and beyond chance
    at ``false_alarm_rate``; never when it was not measured."""
    auc, p = observation.multivariate_auc, observation.multivariate_p
    if auc is None or p is None or math.isnan(auc) or math.isnan(p):
        return False
    return auc >= rules.multivariate_threshold and p <= rules.false_alarm_rate


def judge(
    index: int,
    observation: Observation,
    state: PolicyState,
    rules: Rules,
    holdout_auc: float | None,
    holdout_counts: tuple[float, float] | None = None,
    trained_rows: int | None = None,
) -> Verdict:
    """The verdict on batch ``index``; ``holdout_counts``: the positives and negatives the holdout AUC was
    measured on, when known (its own noise then counts in the performance rules); ``trained_rows``: the rows the
    champion was trained on, when known (``refresh_due``)."""
    reasons: list[str] = []
    prediction_drift = prediction_drifted(observation, rules)
    if prediction_drift:
        beyond = "" if observation.prediction_drift_p is None else f", p = {observation.prediction_drift_p:.2g}"
        reasons.append(f"prediction drift {observation.prediction_drift:.3f} >= {rules.drift_threshold}{beyond}")
    columns = observation.share_drifted_columns >= rules.drifted_share_threshold
    if columns:
        reasons.append(f"{observation.drifted_columns} feature columns drifted")
    multivariate = multivariate_drifted(observation, rules)
    if multivariate:
        reasons.append(
            f"multivariate drift: domain classifier AUC {observation.multivariate_auc:.3f} >= "
            f"{rules.multivariate_threshold}, p = {observation.multivariate_p:.2g}"
        )
    trusted = observation.judgeable and observation.label_rows >= rules.min_rows_for_auc
    performance_drop = _performance_drop(observation, rules, holdout_auc, holdout_counts, trusted, reasons)
    estimated_drop = _estimated_drop(observation, rules, holdout_auc, holdout_counts, trusted, reasons)
    prior_shift = _prior_shift(observation, rules, trusted, reasons)
    alarm = prediction_drift or columns or multivariate or performance_drop or prior_shift or estimated_drop
    refresh = refresh_due(observation, state, rules, trained_rows)
    if refresh and not alarm:
        reasons.append(
            f"refresh: {state.labelled_since + observation.label_rows} labelled rows since the last retrain, "
            f"at least {rules.refresh_fraction:g} × the {trained_rows} the champion learned from"
        )
    holding = cooldown_from(index, state, rules, label_alarm=performance_drop or prior_shift)
    wants = alarm or refresh
    return Verdict(
        drift_detected=prediction_drift or columns or multivariate,
        performance_drop=performance_drop,
        prior_shift=prior_shift,
        reasons=tuple(reasons),
        retrain=wants and holding is None,
        cooldown_from=holding if wants else None,
        estimated_drop=estimated_drop,
        refresh=refresh,
        multivariate_drift=multivariate,
    )


def _performance_drop(
    observation: Observation,
    rules: Rules,
    holdout_auc: float | None,
    holdout_counts: tuple[float, float] | None,
    trusted: bool,
    reasons: list[str],
) -> bool:
    """The performance rule on a trusted labelled batch's realized ROC AUC; its reason added when it fires."""
    if not trusted or observation.roc_auc is None or holdout_auc is None:
        return False
    positives = float(observation.positives or 0)
    negatives = observation.label_rows - positives
    test = auc_test(observation.roc_auc, holdout_auc, positives, negatives, rules, holdout_counts)
    if test.dropped:
        reasons.append(auc_drop_reason("ROC AUC", observation.roc_auc, holdout_auc, test, rules))
    return test.dropped


def _estimated_drop(
    observation: Observation,
    rules: Rules,
    holdout_auc: float | None,
    holdout_counts: tuple[float, float] | None,
    trusted: bool,
    reasons: list[str],
) -> bool:
    """The performance rule on the estimated ROC AUC, for a batch whose labels do not decide (untrusted) with
    enough rows; its reason added when it fires."""
    estimate = observation.estimated_roc_auc
    if trusted or estimate is None or holdout_auc is None or observation.rows < rules.min_rows_for_auc:
        return False
    expected = observation.mean_prediction * observation.rows
    test = auc_test(estimate, holdout_auc, expected, observation.rows - expected, rules, holdout_counts)
    if test.dropped:
        reasons.append(auc_drop_reason("estimated ROC AUC", estimate, holdout_auc, test, rules))
    return test.dropped


def _prior_shift(observation: Observation, rules: Rules, trusted: bool, reasons: list[str]) -> bool:
    """The prior-shift rule on a trusted labelled batch; its reason added when it fires."""
    gap = prior_gap(observation) if trusted else None
    if gap is None:
        return False
    difference, stderr = gap
    shifted = abs(difference) >= rules.prior_tolerance and abs(difference) >= rules.prior_z * stderr
    if shifted:
        reasons.append(
            f"positive rate {observation.positive_rate:.3f} vs predicted {observation.labelled_mean_prediction[0]:.3f} "
            f"(gap beyond {rules.prior_tolerance} and {rules.prior_z:g} s.e.)"
        )
    return shifted


def refresh_due(observation: Observation, state: PolicyState, rules: Rules, trained_rows: int | None) -> bool:
    """A refresh without an alarm: the labelled rows that arrived since the champion's last retrain (this batch's
    included) reach ``refresh_fraction`` of the rows the champion was trained on. In a world that keeps moving,
    no single batch is a step change, but the newest rows teach what the champion never saw; the comparison on
    the newest held-out rows still decides whether the refit replaces it. Off for a champion whose training rows
    are unknown (an adopted model) and with ``refresh_fraction`` 0."""
    if rules.refresh_fraction <= 0 or not trained_rows or not observation.labelled:
        return False
    return state.labelled_since + observation.label_rows >= rules.refresh_fraction * trained_rows


def cooldown_from(index: int, state: PolicyState, rules: Rules, *, label_alarm: bool = False) -> int | None:
    """The batch whose cooldown covers ``index`` (a promotion, a retrain that could not run, or the last of
    too many rejections in a row), or None. A label alarm beyond noise is not held by a promotion's cooldown:
    it is the new champion being judged, and found worse."""
    too_many = state.last_rejection if state.rejections >= rules.label_retries else None
    promotion = None if label_alarm else state.last_promotion
    if not label_alarm and following(index, state):
        return state.follow_at
    for start in (promotion, state.blocked_at, too_many):
        if start is not None and 0 < index - start <= rules.cooldown_batches:
            return start
    return None


def advance(
    state: PolicyState,
    index: int,
    verdict: Verdict,
    action: Action,
    *,
    failed: bool = False,
    labelled_rows: int = 0,
) -> PolicyState:
    """The state after batch ``index`` (``labelled_rows`` of its rows labelled) ended with ``action``
    (``failed``: the retrain broke, not rejected). A retrain that ran, promoted or rejected, restarts the count
    of labelled rows towards the next refresh: its challenger saw them."""
    change_at = state.change_at
    if verdict.label_alarm and change_at is None:
        change_at = index
    since = state.labelled_since + labelled_rows
    if action is Action.retrained_promoted:
        return PolicyState(last_promotion=index, blocked_at=state.blocked_at)
    if action is Action.retrained_challenger:
        # a winner waits for a person: retraining again would find the same, so the cooldown holds as after a
        # retrain that could not run, for every kind of alarm; the champion and the reference stay
        return replace(state, blocked_at=index, change_at=change_at, labelled_since=0)
    if action is Action.skipped_busy or failed:
        return replace(state, blocked_at=index, change_at=change_at, labelled_since=since)
    if action is Action.retrained_rejected:
        if not verdict.label_alarm:
            # the champion copes with the new inputs (the next batch becomes the reference), or a refresh that
            # found nothing better
            follow_at = index if verdict.drift_only else state.follow_at
            return replace(state, change_at=change_at, labelled_since=0, follow_at=follow_at)
        return replace(
            state, change_at=change_at, rejections=state.rejections + 1, last_rejection=index, labelled_since=0
        )
    if not verdict.alarm:
        # the episode is over: nothing alarms, the labels agree with the champion again
        return replace(state, change_at=None, rejections=0, last_rejection=None, labelled_since=since)
    return replace(state, change_at=change_at, labelled_since=since)


def rebaseline(state: PolicyState, index: int, action: Action) -> bool:
    """Whether batch ``index`` becomes the drift reference (``state``: the policy's state before the batch):
    after a promotion (the new champion's world), and when the batch before it had a challenger rejected on
    input drift alone (the champion copes with the new inputs; this batch, not the alarmed one, is a fair sample
    of them). Not after a refresh without an input-drift alarm: nothing moved that the reference should follow."""
    return action is Action.retrained_promoted or following(index, state)


def following(index: int, state: PolicyState) -> bool:
    """Whether batch ``index`` is the one after a challenger rejected on input drift alone."""
    return state.follow_at is not None and index - state.follow_at == 1


def training_rows(
    batches: Sequence[tuple[int, int]], index: int, state: PolicyState, verdict: Verdict, rules: Rules
) -> dict[int, int]:
    """Which labelled rows to retrain on. ``batches``: (batch index, labelled rows), oldest first, the
    reference as index 0. Returns {batch index: rows taken from its newest end}, oldest first.

    After a label alarm the rows since the change, when there are at least ``min_change_rows`` of them (and
    at most ``window_rows``); otherwise the newest ``window_rows`` rows."""
    change_at = state.change_at if state.change_at is not None else (index if verdict.label_alarm else None)
    if change_at is not None:
        since = [(batch, rows) for batch, rows in batches if batch >= change_at]
        if sum(rows for _, rows in since) >= rules.min_change_rows:
            return _newest(since, rules.window_rows)
    return _newest(batches, rules.window_rows)


def _newest(batches: Sequence[tuple[int, int]], limit: int) -> dict[int, int]:
    taken: dict[int, int] = {}
    total = 0
    for batch, rows in reversed(batches):
        take = min(rows, limit - total)
        if take <= 0:
            break
        taken[batch] = take
        total += take
    return dict(sorted(taken.items()))
