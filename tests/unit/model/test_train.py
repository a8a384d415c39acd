import numpy as np
import pandas as pd
import pytest

from pipeline.demo.synth import Population, load_sample_frame
from pipeline.model.train import ZOO, evaluate, fit, predict_proba, refit, split_in_time


@pytest.fixture(scope="module")
def window(schema):
    frame = Population.fit(load_sample_frame(), schema).sample_batch(3000, np.random.default_rng(5))
    frame["order"] = np.arange(len(frame))
    return frame


def test_split_is_in_time_order_with_newest_held_out(window):
    split = split_in_time(window, 0.2, 0.25)
    assert len(split.holdout) == 600 and len(split.validation) == 600 and len(split.train) == 1800
    assert split.train["order"].max() < split.validation["order"].min()
    assert split.validation["order"].max() < split.holdout["order"].min()
    assert split.holdout["order"].max() == len(window) - 1


def test_too_small_window_is_refused(window):
    with pytest.raises(ValueError, match="too small"):
        split_in_time(window.head(12), 0.2, 0.2)


@pytest.mark.parametrize("name", sorted(ZOO))
def test_every_candidate_learns_the_concept(name, window, schema):
    split = split_in_time(window, 0.2, 0.2)
    model = fit(ZOO[name], {}, split.train, schema)
    metrics = evaluate(model, split.holdout, schema)
    assert metrics["roc_auc"] > 0.7
    proba = predict_proba(model, split.holdout, schema)
    assert proba.shape == (len(split.holdout),) and ((proba >= 0) & (proba <= 1)).all()


def test_the_whole_split_is_the_window_oldest_first(window):
    split = split_in_time(window, 0.2, 0.25)
    pd.testing.assert_frame_equal(split.whole(), window.reset_index(drop=True))


@pytest.mark.parametrize("name", sorted(ZOO))
def test_the_refit_has_seen_the_newest_rows(name, window, schema):
    """In the holdout only, a new arrival mode comes in and marks every admission: a relation the older rows
    never show. The model fitted on the train slice cannot know it; the refit, fitted on the holdout too, must."""
    newest = window.copy()
    split_at = len(newest) - int(round(len(newest) * 0.2))
    rng = np.random.default_rng(11)
    marked = np.zeros(len(newest), dtype=bool)
    marked[split_at:] = rng.random(len(newest) - split_at) < 0.5
    newest.loc[marked, "arrivalmode"] = "drone"
    newest.loc[split_at:, schema.target] = np.where(marked[split_at:], schema.positive, schema.negative)
    split = split_in_time(newest, 0.2, 0.2)
    assert len(split.holdout) == len(newest) - split_at and (split.holdout["arrivalmode"] == "drone").any()
    before = evaluate(fit(ZOO[name], {}, split.train, schema), split.holdout, schema)
    after = evaluate(refit(ZOO[name], {}, split, schema), split.holdout, schema)
    assert before["roc_auc"] < 0.7 and after["roc_auc"] > 0.95
    assert after["log_loss"] < before["log_loss"] / 2


def test_models_accept_unseen_categories_and_empty_columns(window, schema):
    split = split_in_time(window, 0.2, 0.2)
    model = fit(ZOO["logreg"], {}, split.train, schema)
    odd = split.holdout.copy()
    odd["arrivalmode"] = "helicopter"
    odd["albumin_last"] = np.nan
    assert np.isfinite(predict_proba(model, odd, schema)).all()


def test_skops_round_trip_needs_only_the_listed_trusted_types(window, schema):
    import skops.io as sio

    from pipeline.model.flavors import PROJECT_TRUSTED_TYPES

    split = split_in_time(window, 0.2, 0.2)
    for name in ZOO:
        model = fit(ZOO[name], {}, split.train, schema)
        blob = sio.dumps(model)
        assert set(sio.get_untrusted_types(data=blob)) <= set(PROJECT_TRUSTED_TYPES)
        loaded = sio.loads(blob, trusted=list(PROJECT_TRUSTED_TYPES))
        pd.testing.assert_series_equal(
            pd.Series(predict_proba(loaded, split.holdout, schema)),
            pd.Series(predict_proba(model, split.holdout, schema)),
        )
