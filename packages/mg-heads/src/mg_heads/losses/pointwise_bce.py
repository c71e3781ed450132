"""Rerank, pointwise: every (query, document) pair on its own, relevant or not."""

import torch
import torch.nn.functional as F


def pointwise_bce(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """L = -1/B Σ_b [y_b log σ(s_b) + (1 - y_b) log(1 - σ(s_b))]

    scores s: logits of a one-output cross-encoder, any shape ([B], [B, 1], or [B, G] for groups), served
    with a sigmoid, so σ(s) is the relevance vLLM returns; labels y: the same number of values, in {0, 1}
    or soft in [0, 1]. The mean runs over every (query, document) pair.
    """
    scores = scores.reshape(-1)
    return F.binary_cross_entropy_with_logits(scores, labels.reshape(-1).to(scores.dtype))
