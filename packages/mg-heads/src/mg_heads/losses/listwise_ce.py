"""Rerank, listwise: each query's group of 1 positive + N negatives scored by the cross-encoder."""

import torch
import torch.nn.functional as F


def listwise_ce(scores: torch.Tensor) -> torch.Tensor:
    """L = -1/B Σ_b log( exp(s_b0) / Σ_g exp(s_bg) )

    scores s [B, G]: the logits of one group per row, the positive at index 0, its negatives after it.
    """
    targets = torch.zeros(scores.shape[0], dtype=torch.long, device=scores.device)
    return F.cross_entropy(scores, targets)
