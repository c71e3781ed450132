"""Multi-label classification (classify, problem_type multi_label_classification)."""

import torch
import torch.nn.functional as F


def multilabel_bce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """L = -1/(B·C) Σ_b Σ_c [y_bc log σ(z_bc) + (1 - y_bc) log(1 - σ(z_bc))]

    logits z [B, C], labels y [B, C] multi-hot (0/1, or soft targets in [0, 1]).
    """
    return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
