"""A model's quality on labelled rows: the numbers every part of the project reports for a champion or a batch."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score


def quality(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """ROC AUC, log loss and accuracy (cut at 0.5). AUC is NaN when only one class is present."""
    clipped = np.clip(proba, 1e-7, 1 - 1e-7)
    both = len(np.unique(y_true)) == 2
    return {
        "roc_auc": float(roc_auc_score(y_true, proba)) if both else float("nan"),
        "log_loss": float(log_loss(y_true, clipped, labels=[0, 1])),
        "accuracy": float(accuracy_score(y_true, proba >= 0.5)),
    }
