"""Shared pieces of the mg-heads suite: a few short texts, a tiny training loop, a strict fp32 comparison."""

import pytest
import torch

# Different lengths, so every batch has padding; some Chinese for the byte-level BPE.
TEXTS = [
    "the cat sat on the mat",
    "hello",
    "a much longer sentence that needs padding in the others of its batch",
    "机器学习很有趣",
]
PAIRS = ["a cat on a mat", "hi there", "short", "深度学习"]
ATOL = 1e-4


@pytest.fixture
def train():
    """train(model, loss_of, steps): a few AdamW steps so that the weights differ from their init."""

    def run(model: torch.nn.Module, loss_of, steps: int = 3, lr: float = 1e-3) -> None:
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=lr)
        model.train()
        for _ in range(steps):
            loss = loss_of(model)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        model.eval()

    return run


def assert_close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    torch.testing.assert_close(actual.float(), expected.float(), atol=ATOL, rtol=0)
