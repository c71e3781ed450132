"""Trainers, one module per method (pt, sft, dpo, grpo, classify, rm, embed, rerank, score), config and launch."""

__version__ = "0.1.0"
