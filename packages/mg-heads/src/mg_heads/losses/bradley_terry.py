"""Reward model (rm): Bradley–Terry pairwise loss on chosen/rejected rewards."""

import torch
import torch.nn.functional as F


def bradley_terry(
    r_chosen: torch.Tensor, r_rejected: torch.Tensor, margin: torch.Tensor | float | None = None
) -> torch.Tensor:
    """L = -1/B Σ_b log σ(r_chosen_b - r_rejected_b - m_b)

    rewards [B] or [B, 1]; margin m: None (0), one float, or [B] per pair (Llama-2 style: the chosen
    reward must beat the rejected one by at least m_b before the loss lets go).
    """
    diff = r_chosen.reshape(-1) - r_rejected.reshape(-1)
    if margin is not None:
        diff = diff - torch.as_tensor(margin, dtype=diff.dtype, device=diff.device)
    return -F.logsigmoid(diff).mean()
