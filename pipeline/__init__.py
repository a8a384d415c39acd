"""Drift monitoring and self-retraining for the emergency-department triage classifier."""

__version__ = "0.1.0"
