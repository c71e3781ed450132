"""Single-label classification (classify, problem_type single_label_classification)."""

import torch
import torch.nn.functional as F


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """L = -1/B Σ_b Σ_c q_bc log softmax(z_b)_c,  q_bc = (1-ε)·[c = y_b] + ε/C

    logits z [B, C], labels y [B] (class ids), label smoothing ε.
    """
    return F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
