"""Offline models for test suites: tiny random models with real tokenizers, plus MiniLM and SmolLM2."""

__version__ = "0.1.0"
