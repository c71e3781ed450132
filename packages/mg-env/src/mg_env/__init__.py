"""Backend environments (LLaMA-Factory, vLLM) built reproducibly with uv, a doctor, and Docker recipes."""

__version__ = "0.1.0"
