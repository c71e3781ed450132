"""Where predictions come from: a local model (a folder, or a model in memory during training; torch) or a
served model (HTTP). Both implement `Backend`, so every task evaluator runs unchanged against either, and
evaluation during training, `mg-eval run --model` and `mg-eval run --endpoint` are one code path.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

# What classify/reward take: a text, a text pair, or a conversation (rendered by the model's chat template).
Message = dict[str, str]
ClassifyInput = str | tuple[str, str] | list[Message]


@runtime_checkable
class Backend(Protocol):
    def generate(self, prompts: list[list[Message]], max_new_tokens: int = 64) -> list[str]:
        """One reply per conversation, greedy."""
        ...

    def classify(self, inputs: list[ClassifyInput]) -> list[dict]:
        """One {"label": name, "probs": [one per class]} per input (regression: probs = [raw score])."""
        ...

    def reward(self, inputs: list[ClassifyInput]) -> list[float]:
        """One raw scalar reward per input."""
        ...

    def embed(self, texts: list[str]) -> list[list[float]]:
        """One L2-normalized vector per text."""
        ...

    def rerank(self, query: str, documents: list[str]) -> list[float]:
        """One relevance score per document, higher is more relevant."""
        ...

    def score(self, text_1: list[str], text_2: list[str]) -> list[float]:
        """One similarity score per pair (text_1[i], text_2[i])."""
        ...
