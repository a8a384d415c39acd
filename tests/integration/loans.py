"""A table the project has never seen: loan applications, to test the product on a user's own data.

Columns: ``loan_id`` (an id, unique on every row), ``applied_at`` (a timestamp), ``age`` (int), ``income``
(float, some missing), ``debt_ratio`` (float), ``region`` (an int-coded category 1-6, some missing, so it reads
as float in some files and int in others), ``product`` (text) and the target ``defaulted``: 0/1 integers, or
text labels ``"default"`` / ``"repaid"`` (the positive label sorts FIRST, so a reader that takes
``predict_proba[:, 1]`` as the positive class reads the model inverted).

From ``shift_at`` on, applicants get poorer and come from other regions, and the relation to default changes
(debt matters less, region's effect flips): a drift alarm, a champion that gets worse, a retrain that helps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

REGION_EFFECT = np.array([0.0, -0.8, -0.4, 0.0, 0.4, 0.8, 1.2])  # index = region code 1..6
PRODUCT_EFFECT = {"card": 0.3, "personal": 0.5, "auto": -0.2, "mortgage": -0.6}


@dataclass(frozen=True)
class LoanFiles:
    folder: Path
    reference: Path
    batches: list[Path]


def applications(
    rows: int,
    rng: np.random.Generator,
    *,
    shifted: bool,
    first_id: int,
    text_labels: bool,
    inputs_shift: bool = True,
) -> pd.DataFrame:
    """``shifted``: the relation to default changes, and, with ``inputs_shift``, the applicants too."""
    moved = shifted and inputs_shift
    age = rng.integers(18, 80, rows)
    income = rng.lognormal(np.log(42_000 if not moved else 30_000), 0.45, rows)
    debt = np.clip(rng.beta(2, 4, rows) + (0.15 if moved else 0.0), 0, 1)
    region_p = [0.3, 0.25, 0.2, 0.1, 0.1, 0.05] if not moved else [0.05, 0.1, 0.1, 0.2, 0.25, 0.3]
    region = rng.choice(np.arange(1, 7), size=rows, p=region_p)
    product = rng.choice(list(PRODUCT_EFFECT), size=rows, p=[0.4, 0.3, 0.2, 0.1])
    effect = REGION_EFFECT[region] * (-1.0 if shifted else 1.0)
    logit = (
        -1.2
        + (1.0 if shifted else 4.0) * (debt - 0.35)
        - 1.2 * np.log(income / 40_000)
        + effect
        + np.array([PRODUCT_EFFECT[p] for p in product])
        + 0.01 * (age - 45)
    )
    default = rng.random(rows) < 1 / (1 + np.exp(-logit))
    frame = pd.DataFrame(
        {
            "loan_id": np.arange(first_id, first_id + rows),
            "applied_at": pd.date_range("2026-01-01", periods=rows, freq="7min").strftime("%Y-%m-%d %H:%M:%S"),
            "age": age,
            "income": np.round(income, 2),
            "debt_ratio": np.round(debt, 4),
            "region": region.astype("float64"),
            "product": product,
            "defaulted": np.where(default, "default", "repaid") if text_labels else default.astype(int),
        }
    )
    frame.loc[rng.random(rows) < 0.05, "income"] = np.nan
    frame.loc[rng.random(rows) < 0.03, "region"] = np.nan
    return frame


def write_loans(
    folder: Path,
    *,
    reference_rows: int = 3000,
    batches: int = 6,
    rows: int = 800,
    shift_at: int | None = 3,
    text_labels: bool = False,
    seed: int = 11,
    inputs_shift: bool = True,
) -> LoanFiles:
    """A labelled reference and ``batches`` batches; from ``shift_at`` on the relation to default changes, and the
    applicants too unless ``inputs_shift`` is False (a pure concept shift: no input drifts)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    reference = applications(reference_rows, rng, shifted=False, first_id=100_000, text_labels=text_labels)
    reference = reference.dropna(subset=["region"])  # the reference reads region as int, batches as float
    reference["region"] = reference["region"].astype(int)
    paths = [folder / "reference.csv"]
    reference.to_csv(paths[0], index=False)
    for index in range(1, batches + 1):
        shifted = shift_at is not None and index >= shift_at
        frame = applications(
            rows,
            rng,
            shifted=shifted,
            first_id=200_000 + index * rows,
            text_labels=text_labels,
            inputs_shift=inputs_shift,
        )
        path = folder / f"batch_{index:03d}.csv"
        frame.to_csv(path, index=False)
        paths.append(path)
    return LoanFiles(folder, paths[0], paths[1:])
