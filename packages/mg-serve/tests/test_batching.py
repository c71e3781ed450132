"""The batcher on its own: a forward that records what it was given stands in for the model."""

from __future__ import annotations

import threading

import pytest
import torch

from mg_serve.batching import Batcher


def rows_of(*lengths: int):
    return [{"input_ids": [n] * n} for n in lengths]


def echo_forward(seen: list):
    def forward(rows):
        seen.append([len(r["input_ids"]) for r in rows])
        return torch.tensor([[float(r["input_ids"][0])] for r in rows])

    return forward


def test_forwards_stay_within_the_token_budget_longest_first():
    seen: list = []
    batcher = Batcher(echo_forward(seen), max_batch_tokens=10, max_wait_s=0)
    try:
        out = batcher.submit(rows_of(2, 5, 3, 3, 12)).result(timeout=10)
    finally:
        batcher.close()
    assert out[:, 0].tolist() == [2, 5, 3, 3, 12]  # each row's own result, in the request's order
    # 12 alone (longer than the budget), then 5+3 padded to 2x5, then 3+2 padded to 2x3.
    assert seen == [[12], [5, 3], [3, 2]]


def test_requests_that_wait_together_share_a_forward():
    seen: list = []
    entered, gate = threading.Event(), threading.Event()

    def slow_forward(rows):
        entered.set()
        gate.wait(10)
        return echo_forward(seen)(rows)

    batcher = Batcher(slow_forward, max_batch_tokens=1000, max_wait_s=0)
    try:
        first = batcher.submit(rows_of(1))  # the worker holds this one at the gate...
        assert entered.wait(10)
        others = [batcher.submit(rows_of(n)) for n in (2, 3, 4)]  # ...while these queue up
        gate.set()
        assert first.result(timeout=10)[0, 0] == 1
        assert [f.result(timeout=10)[0, 0].item() for f in others] == [2, 3, 4]
    finally:
        batcher.close()
    assert sorted(map(len, seen)) == [1, 3]


def test_a_failing_forward_fails_its_requests_and_the_worker_goes_on():
    def forward(rows):
        if any(r["input_ids"][0] == 7 for r in rows):
            raise RuntimeError("bad row")
        return torch.zeros(len(rows), 1)

    batcher = Batcher(forward, max_batch_tokens=100, max_wait_s=0)
    try:
        with pytest.raises(RuntimeError, match="bad row"):
            batcher.submit(rows_of(7)).result(timeout=10)
        assert batcher.submit(rows_of(3)).result(timeout=10).shape == (1, 1)
    finally:
        batcher.close()
