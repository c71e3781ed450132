"""Matryoshka: train embeddings whose prefixes are embeddings too, by wrapping any embedding loss."""

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F


def matryoshka(
    loss_fn: Callable[..., torch.Tensor],
    dims: Sequence[int],
    *embeddings: torch.Tensor | None,
    weights: Sequence[float] | None = None,
    **loss_kwargs,
) -> torch.Tensor:
    """L = Σ_k w_k · loss_fn(norm(e_1[..., :d_k]), norm(e_2[..., :d_k]), ..., **loss_kwargs)

    `embeddings` are loss_fn's positional embedding arguments (e.g. query [B, H], positive [B, H],
    negatives [B, N, H] or None for info_nce: `matryoshka(info_nce, [768, 256], q, p, n)`); each is cut to
    its first d_k dimensions and L2-normalized again, as vLLM serves the `dimensions` request parameter.
    Weights w_k default to 1 for every d_k (as sentence-transformers' MatryoshkaLoss).
    """
    weights = [1.0] * len(dims) if weights is None else list(weights)
    if len(weights) != len(dims):
        raise ValueError(f"{len(dims)} dims but {len(weights)} weights")
    total: torch.Tensor | None = None
    for dim, weight in zip(dims, weights, strict=True):
        cut = [None if e is None else F.normalize(e[..., :dim], p=2, dim=-1) for e in embeddings]
        term = weight * loss_fn(*cut, **loss_kwargs)
        total = term if total is None else total + term
    if total is None:  # a float 0.0 would have no gradient to train on
        raise ValueError("dims is empty: give at least one embedding size")
    return total
