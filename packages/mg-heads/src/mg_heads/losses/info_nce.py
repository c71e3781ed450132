"""Embed: InfoNCE with in-batch negatives, hard negatives and an optional gather across processes."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F


def info_nce(
    query: torch.Tensor,
    positive: torch.Tensor,
    negatives: torch.Tensor | None = None,
    *,
    temperature: float = 0.05,
    gather_across_processes: bool = False,
) -> torch.Tensor:
    """L = -1/B Σ_i log( exp(s(q_i, p_i)) / (Σ_j exp(s(q_i, p_j)) + Σ_{j,k} exp(s(q_i, n_jk))) )

    s(a, b) = cos(a, b) / τ. query q [B, H], positive p [B, H], hard negatives n [B, N, H] (N may be 0)
    or flattened [M, H]. Every query is scored against all positives and all hard negatives of the batch,
    as sentence-transformers' MultipleNegativesRankingLoss does (τ = 0.05 is its scale 20).

    `gather_across_processes`: under torch.distributed the candidates (positives and negatives) of all
    processes are gathered, so each query sees world_size × B positives. The loss is the mean over the
    local queries, and each process's gradient for its local embeddings is the sum over all processes'
    losses (world_size × the full-batch gradient), so that DDP's gradient averaging gives exactly the
    gradient of the full-batch loss. Every process must pass the same shapes (a clear error otherwise). Without an initialized
    process group it does nothing.
    """
    q = F.normalize(query, p=2, dim=-1)
    candidates = F.normalize(positive, p=2, dim=-1)
    extra = None
    if negatives is not None:
        extra = F.normalize(negatives, p=2, dim=-1).reshape(-1, q.shape[-1])
    offset = 0
    if gather_across_processes and dist.is_available() and dist.is_initialized():
        offset = dist.get_rank() * q.shape[0]
        candidates = all_gather_with_grad(candidates)
        extra = all_gather_with_grad(extra) if extra is not None else None
    if extra is not None:
        candidates = torch.cat([candidates, extra])
    logits = q @ candidates.T / temperature
    targets = torch.arange(q.shape[0], device=q.device) + offset
    return F.cross_entropy(logits, targets)


def all_gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate `x` [n, ...] of every process along dim 0, differentiably (see _AllGather)."""
    # all_gather needs equal shapes; a mismatch (e.g. a short last batch on one process) would fail
    # obscurely or hang, so compare the shapes first (a tiny collective on x's device).
    shape = torch.tensor(x.shape, device=x.device)
    shapes = [torch.empty_like(shape) for _ in range(dist.get_world_size())]
    dist.all_gather(shapes, shape)
    if any(not torch.equal(s, shape) for s in shapes):
        sizes = [tuple(s.tolist()) for s in shapes]
        raise ValueError(f"gather_across_processes needs the same shapes on every process, got {sizes}")
    return _AllGather.apply(x)


class _AllGather(torch.autograd.Function):
    """Forward: all_gather. Backward: sum the gradient of the gathered tensor over processes (every
    process's loss used every shard) and hand each process the slice of its own shard."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.rank, ctx.n = dist.get_rank(), x.shape[0]
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.rank * ctx.n : (ctx.rank + 1) * ctx.n]
