"""Metrics, evaluators for local models and served endpoints, run logs and training reports."""

__version__ = "0.1.0"
