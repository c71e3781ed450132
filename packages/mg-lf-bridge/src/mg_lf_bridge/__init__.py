"""LLaMA-Factory as a training backend: config and dataset_info translation, run in its own uv env."""

__version__ = "0.1.0"
