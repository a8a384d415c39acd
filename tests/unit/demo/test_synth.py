import numpy as np
import pandas as pd
import pytest

from pipeline.demo.synth import DriftKind, Population, generate_stream, load_sample_frame


@pytest.fixture(scope="module")
def population(schema):
    return Population.fit(load_sample_frame(), schema)


@pytest.fixture(scope="module")
def stable(population):
    return population.sample_batch(6000, np.random.default_rng(7))


def test_about_a_third_admitted(stable):
    rate = (stable["disposition"] == "admit").mean()
    assert 0.28 <= rate <= 0.40


def test_missingness_and_ranges_follow_the_real_sample(stable, schema, real_sample_path):
    real = pd.read_csv(real_sample_path)
    assert (
        abs(stable[list(schema.numerical)].isna().mean().mean() - real[list(schema.numerical)].isna().mean().mean())
        < 0.05
    )
    for name in ("age", "triage_vital_hr", "triage_vital_sbp"):
        lo, hi = real[name].min(), real[name].max()
        span = hi - lo
        assert stable[name].min() >= lo - 0.3 * span and stable[name].max() <= hi + 0.3 * span
    for name in schema.categorical:
        assert set(stable[name].dropna()) <= set(real[name].dropna())
    assert set(stable["esi"].dropna()) <= {1, 2, 3, 4, 5}


def test_lab_groups_are_consistent(stable):
    both = stable[["wbc_min", "wbc_median", "wbc_max"]].dropna()
    assert len(both) > 100
    assert (both["wbc_min"] <= both["wbc_median"]).all() and (both["wbc_median"] <= both["wbc_max"]).all()


def test_drift_kinds_change_what_they_claim(population, stable):
    rng = np.random.default_rng(8)
    covariate = population.sample_batch(6000, rng, DriftKind.covariate)
    concept = population.sample_batch(6000, rng, DriftKind.concept)
    prior = population.sample_batch(6000, rng, DriftKind.prior)
    assert covariate["age"].mean() > stable["age"].mean() + 8
    assert abs(concept["age"].mean() - stable["age"].mean()) < 2
    assert abs((prior["disposition"] == "admit").mean() - 0.6) < 0.02
    # concept shift: same inputs, a new relation: the base concept's scores no longer rank admissions
    from sklearn.metrics import roc_auc_score

    base_score = population.logit(concept, "base")
    assert roc_auc_score(concept["disposition"] == "admit", base_score) < 0.6
    assert roc_auc_score(stable["disposition"] == "admit", population.logit(stable, "base")) > 0.75


def test_stream_drifts_from_the_given_batch(population):
    stream = generate_stream(population, rows=800, batches=4, drift_at=3, kind=DriftKind.covariate, seed=1)
    ages = [frame["age"].mean() for frame in stream]
    assert max(ages[:2]) + 8 < min(ages[2:])


def test_cli_synth_writes_the_files(tmp_path):
    from typer.testing import CliRunner

    from pipeline.cli.main import app

    result = CliRunner().invoke(
        app,
        [
            "data",
            "synth",
            "--out",
            str(tmp_path),
            "--rows",
            "100",
            "--batches",
            "3",
            "--reference-rows",
            "200",
            "--drift-at",
            "2",
            "--drift-kind",
            "prior",
        ],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "batch_001.csv",
        "batch_002.csv",
        "batch_003.csv",
        "manifest.json",
        "reference.csv",
    ]
    bad = CliRunner().invoke(app, ["data", "synth", "--out", str(tmp_path), "--drift-kind", "sideways"])
    assert bad.exit_code == 2 and "--drift-kind must be one of" in bad.output
