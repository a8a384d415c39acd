"""The Evidently report of a batch: built only when asked for, on a bounded, uniform, repeatable sample of each side."""

import numpy as np
import pytest

from pipeline.demo.synth import DriftKind, Population, load_sample_frame
from pipeline.stats import evidently_report
from pipeline.stats.drift import ReferenceProfile
from pipeline.stats.evidently_report import sample_positions

THRESHOLD = 0.1


@pytest.fixture(scope="module")
def population(schema):
    return Population.fit(load_sample_frame(), schema)


@pytest.fixture(scope="module")
def profile(population, schema):
    reference = population.sample_batch(3000, np.random.default_rng(21))
    return ReferenceProfile(
        reference, _oracle(population, reference), schema, prediction_threshold=THRESHOLD, column_threshold=THRESHOLD
    )


def _oracle(population, frame):
    return 1 / (1 + np.exp(-population.logit(frame, "base")))


def _batch(population, kind: DriftKind, seed: int):
    return population.sample_batch(1200, np.random.default_rng(seed), kind)


def test_the_evidently_report_is_built_only_when_asked_for(population, profile, tmp_path):
    batch = _batch(population, DriftKind.covariate, seed=60)
    result = profile.measure(batch, _oracle(population, batch))
    path = tmp_path / "drift.html"
    result.save_html(str(path))
    assert path.stat().st_size > 10_000
    assert "prediction" in path.read_text(encoding="utf-8", errors="ignore")


def test_the_html_report_is_built_on_a_bounded_sample_of_each_side(
    population, profile, monkeypatch, tmp_path, evidently_frame_sizes
):
    monkeypatch.setattr(evidently_report, "HTML_SAMPLE_ROWS", 400)
    batch = _batch(population, DriftKind.covariate, seed=61)  # 1,200 rows against a 3,000-row reference
    result = profile.measure(batch, _oracle(population, batch))
    result.save_html(str(tmp_path / "drift.html"))
    assert evidently_frame_sizes == [400, 400]
    assert "prediction" in (tmp_path / "drift.html").read_text(encoding="utf-8", errors="ignore")


def test_the_html_sample_is_uniform_bounded_ordered_and_repeatable():
    kept = sample_positions(100_000, 5_000)
    assert len(kept) == 5_000 and len(set(kept.tolist())) == 5_000
    assert (np.diff(kept) > 0).all() and kept[0] >= 0 and kept[-1] < 100_000
    assert (kept == sample_positions(100_000, 5_000)).all()
    assert kept.mean() == pytest.approx(50_000, rel=0.05)  # spread over the whole batch, not its head
    assert sample_positions(300, 5_000).tolist() == list(range(300))
