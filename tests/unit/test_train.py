import numpy as np
import pandas as pd
import pytest

from pipeline.synth import Population, load_sample_frame
from pipeline.train import ZOO, evaluate, fit, predict_proba, split_in_time


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


def test_models_accept_unseen_categories_and_empty_columns(window, schema):
    split = split_in_time(window, 0.2, 0.2)
    model = fit(ZOO["logreg"], {}, split.train, schema)
    odd = split.holdout.copy()
    odd["arrivalmode"] = "helicopter"
    odd["albumin_last"] = np.nan
    assert np.isfinite(predict_proba(model, odd, schema)).all()


def test_skops_round_trip_needs_only_the_listed_trusted_types(window, schema):
    import skops.io as sio

    from pipeline.flavors import PROJECT_TRUSTED_TYPES

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
