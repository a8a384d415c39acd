"""driftloop: drift monitoring and self-retraining for a tabular binary classifier, tracked in MLflow."""

__version__ = "0.1.0"

__all__ = ["__version__", "adopt", "monitor", "status", "train"]


def __getattr__(name: str) -> object:
    """``pipeline.monitor`` and the rest of the Python API (``pipeline.api``), imported when first asked for."""
    if name in {"adopt", "monitor", "status", "train"}:
        from pipeline import api

        return getattr(api, name)
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
