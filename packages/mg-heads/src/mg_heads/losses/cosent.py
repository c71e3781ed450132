"""Score (pair regression) with CoSENT: rank the pair predictions in the order of their labels."""

import torch


def cosent(predictions: torch.Tensor, labels: torch.Tensor, scale: float = 20.0) -> torch.Tensor:
    """L = log(1 + Σ_{(i, j): y_i > y_j} exp(λ (s_j - s_i)))

    predictions s [B] or [B, 1] (a cross-encoder's score or a cosine similarity), labels y [B] (only
    their order matters), λ = `scale` (20, as in CoSENT and sentence-transformers' CoSENTLoss). One sum
    over the batch, not a mean: the batch is the ranking.
    """
    s = predictions.reshape(-1) * scale
    y = labels.reshape(-1)
    diff = s[None, :] - s[:, None]  # diff[i, j] = λ s_j - λ s_i
    # Keep only the pairs that are out of order if s_j > s_i; the rest contribute exp(-inf) = 0.
    diff = diff.masked_fill(~(y[:, None] > y[None, :]), float("-inf"))
    zero = torch.zeros(1, dtype=diff.dtype, device=diff.device)  # the "1 +" inside the log
    return torch.logsumexp(torch.cat([zero, diff.flatten()]), dim=0)
