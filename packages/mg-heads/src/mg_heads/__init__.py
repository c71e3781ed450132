"""Task models (classify, reward, embed pooling, rerank) and their save/load in the layout vLLM serves."""

__version__ = "0.1.0"
