"""driftloop: drift monitoring and self-retraining for a tabular binary classifier, tracked in MLflow."""

__version__ = "0.1.0"
