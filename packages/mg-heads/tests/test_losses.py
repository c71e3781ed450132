import math
import os
import socket

import pytest
import torch
import torch.nn.functional as F

from mg_heads.losses import (
    bradley_terry,
    cosent,
    cross_entropy,
    info_nce,
    listwise_ce,
    matryoshka,
    mse,
    multilabel_bce,
    pointwise_bce,
)

torch.manual_seed(0)


def test_cross_entropy_matches_hand_computation():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    labels = torch.tensor([0, 2])
    log_p = logits.log_softmax(-1)
    expected = -(log_p[0, 0] + log_p[1, 2]) / 2
    torch.testing.assert_close(cross_entropy(logits, labels), expected)
    # Label smoothing ε: target (1-ε) on the label + ε/C everywhere.
    eps = 0.1
    q = torch.full((2, 3), eps / 3)
    q[0, 0] += 1 - eps
    q[1, 2] += 1 - eps
    torch.testing.assert_close(
        cross_entropy(logits, labels, label_smoothing=eps), -(q * log_p).sum(-1).mean()
    )


def test_multilabel_bce():
    logits = torch.tensor([[1.0, -2.0], [0.0, 3.0]])
    labels = torch.tensor([[1, 0], [1, 1]])
    p = torch.sigmoid(logits)
    expected = -(labels * p.log() + (1 - labels) * (1 - p).log()).mean()
    torch.testing.assert_close(multilabel_bce(logits, labels), expected)


def test_mse_accepts_one_output_heads():
    torch.testing.assert_close(mse(torch.tensor([[1.0], [3.0]]), torch.tensor([0.0, 1.0])), torch.tensor(2.5))


def test_bradley_terry_with_and_without_margin():
    chosen, rejected = torch.tensor([2.0, 0.5]), torch.tensor([1.0, 1.0])
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    expected = -(math.log(sig(1.0)) + math.log(sig(-0.5))) / 2
    assert bradley_terry(chosen, rejected).item() == pytest.approx(expected, abs=1e-6)
    margin = torch.tensor([0.5, 1.0])
    expected = -(math.log(sig(0.5)) + math.log(sig(-1.5))) / 2
    assert bradley_terry(chosen[:, None], rejected[:, None], margin).item() == pytest.approx(
        expected, abs=1e-6
    )
    assert bradley_terry(chosen, rejected, 0.5).item() == pytest.approx(
        -(math.log(sig(0.5)) + math.log(sig(-1.0))) / 2, abs=1e-6
    )


def test_listwise_ce_positive_first():
    scores = torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, 1.0]])
    expected = -(scores[0].log_softmax(-1)[0] + scores[1].log_softmax(-1)[0]) / 2
    torch.testing.assert_close(listwise_ce(scores), expected)


def test_pointwise_bce():
    scores, labels = torch.tensor([[2.0], [-1.0]]), torch.tensor([1, 0])
    expected = (
        -(math.log(torch.sigmoid(torch.tensor(2.0))) + math.log(1 - torch.sigmoid(torch.tensor(-1.0)))) / 2
    )
    assert pointwise_bce(scores, labels).item() == pytest.approx(expected, abs=1e-6)


def test_cosent_formula():
    s = torch.tensor([0.9, 0.1, 0.5])
    y = torch.tensor([1.0, 0.0, 0.5])
    # Ordered pairs (i, j) with y_i > y_j: (0, 1), (0, 2), (2, 1).
    terms = [20 * (s[1] - s[0]), 20 * (s[2] - s[0]), 20 * (s[1] - s[2])]
    expected = math.log(1 + sum(math.exp(t) for t in terms))
    assert cosent(s, y).item() == pytest.approx(expected, abs=1e-5)
    # A perfect ranking far apart costs ~0; equal labels add nothing.
    assert cosent(torch.tensor([1.0, -1.0]), torch.tensor([1.0, 0.0])).item() < 1e-10
    assert cosent(torch.tensor([1.0, -1.0]), torch.tensor([1.0, 1.0])).item() == 0


def explicit_info_nce(q, p, n, temperature):
    """CE over the similarity matrix, built row by row from the definition."""
    q, p, n = F.normalize(q, dim=-1), F.normalize(p, dim=-1), F.normalize(n, dim=-1)
    candidates = torch.cat([p, n.reshape(-1, q.shape[-1])])
    losses = []
    for i in range(q.shape[0]):
        sims = torch.stack([q[i] @ c for c in candidates]) / temperature
        losses.append(-(sims[i] - torch.logsumexp(sims, 0)))
    return torch.stack(losses).mean()


def test_info_nce_is_ce_over_the_similarity_matrix():
    q, p, n = torch.randn(4, 8), torch.randn(4, 8), torch.randn(4, 2, 8)
    torch.testing.assert_close(info_nce(q, p, n, temperature=0.05), explicit_info_nce(q, p, n, 0.05))
    # No hard negatives (and an empty list of them) = in-batch negatives only.
    torch.testing.assert_close(info_nce(q, p), explicit_info_nce(q, p, torch.empty(4, 0, 8), 0.05))
    torch.testing.assert_close(info_nce(q, p, torch.empty(4, 0, 8)), info_nce(q, p))
    # Hard negatives may come flattened (any number per query): all are candidates for every query.
    torch.testing.assert_close(info_nce(q, p, n.reshape(8, 8)), info_nce(q, p, n))


def test_info_nce_gather_is_a_no_op_without_a_process_group():
    q, p = torch.randn(3, 8), torch.randn(3, 8)
    torch.testing.assert_close(info_nce(q, p, gather_across_processes=True), info_nce(q, p))


def test_matryoshka_weights_truncated_renormalized_losses():
    q, p, n = torch.randn(4, 16), torch.randn(4, 16), torch.randn(4, 1, 16)
    got = matryoshka(info_nce, [16, 4], q, p, n, weights=[1.0, 0.5], temperature=0.1)
    expected = info_nce(q, p, n, temperature=0.1) + 0.5 * info_nce(
        q[:, :4], p[:, :4], n[..., :4], temperature=0.1
    )
    torch.testing.assert_close(got, expected)
    # Truncated embeddings are renormalized before the loss sees them.
    seen = []
    matryoshka(lambda a, b: seen.append(a.norm(dim=-1)) or a.sum(), [4], q, None)
    torch.testing.assert_close(seen[0], torch.ones(4))
    with pytest.raises(ValueError, match="weights"):
        matryoshka(info_nce, [4, 8], q, p, weights=[1.0])


def test_matryoshka_without_dims_is_an_error_not_a_float_zero():
    q, p = torch.randn(2, 8), torch.randn(2, 8)
    with pytest.raises(ValueError, match="dims is empty"):
        matryoshka(info_nce, [], q, p)


# ---- info_nce gather_across_processes under a real 2-process gloo group ----

WORLD, LOCAL_B, N, H = 2, 3, 2, 8


def full_batch():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(WORLD * LOCAL_B, 2, H, generator=g)  # per example: query and positive inputs
    negs = torch.randn(WORLD * LOCAL_B, N, H, generator=g)
    state = {"weight": torch.randn(H, H, generator=g), "bias": torch.randn(H, generator=g)}
    return x, negs, state


def embed(encoder, x, negs):
    return encoder(x[:, 0]), encoder(x[:, 1]), encoder(negs)


def _worker(rank: int, port: int, out_dir: str) -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        x, negs, state = full_batch()
        local = slice(rank * LOCAL_B, (rank + 1) * LOCAL_B)
        encoder = torch.nn.Linear(H, H)
        encoder.load_state_dict(state)
        ddp = DistributedDataParallel(encoder)
        # Embedding-level gradients, and parameter gradients after DDP's averaging.
        q, p, n = (t.detach().requires_grad_() for t in embed(encoder, x[local], negs[local]))
        loss = info_nce(q, p, n, gather_across_processes=True)
        loss.backward()
        q2, p2, n2 = embed(ddp, x[local], negs[local])
        info_nce(q2, p2, n2, gather_across_processes=True).backward()
        torch.save(
            {"loss": loss.detach(), "q": q.grad, "p": p.grad, "n": n.grad, "weight": encoder.weight.grad},
            os.path.join(out_dir, f"rank{rank}.pt"),
        )
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.distributed
@pytest.mark.slow
def test_info_nce_gather_across_two_gloo_processes_equals_the_full_batch(tmp_path):
    torch.multiprocessing.spawn(_worker, args=(free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]

    x, negs, state = full_batch()
    encoder = torch.nn.Linear(H, H)
    encoder.load_state_dict(state)
    q, p, n = (t.detach().requires_grad_() for t in embed(encoder, x, negs))
    full = info_nce(q, p, n)
    full.backward()
    q2, p2, n2 = embed(encoder, x, negs)
    info_nce(q2, p2, n2).backward()

    # The full-batch loss is the mean of the per-process losses.
    torch.testing.assert_close(torch.stack([r["loss"] for r in ranks]).mean(), full.detach())
    # Each process gets world_size x the full-batch gradient of its own embeddings ...
    for rank, result in enumerate(ranks):
        local = slice(rank * LOCAL_B, (rank + 1) * LOCAL_B)
        for name, grad in (("q", q.grad), ("p", p.grad), ("n", n.grad)):
            torch.testing.assert_close(result[name] / WORLD, grad[local], msg=f"rank {rank} {name}")
        # ... so that DDP's averaging gives exactly the full-batch parameter gradient.
        torch.testing.assert_close(result["weight"], encoder.weight.grad)
