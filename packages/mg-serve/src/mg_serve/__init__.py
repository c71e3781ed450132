"""OpenAI/vLLM-compatible HTTP API with an embedded torch engine and a vLLM engine."""

__version__ = "0.1.0"
