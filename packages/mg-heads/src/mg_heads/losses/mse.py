"""Regression (classify with problem_type regression; score as pair regression)."""

import torch
import torch.nn.functional as F


def mse(predictions: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """L = 1/B Σ_b (ŷ_b - y_b)²

    predictions ŷ [B] or [B, 1] (one-output heads), labels y [B] floats.
    """
    if predictions.dim() == labels.dim() + 1 and predictions.shape[-1] == 1:
        predictions = predictions.squeeze(-1)
    return F.mse_loss(predictions, labels.to(predictions.dtype))
