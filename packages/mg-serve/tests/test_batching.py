"""The batcher on its own: a forward that records what it was given stands in for the model."""

from __future__ import annotations

import itertools
import random
import threading

import pytest
import torch

from mg_serve.batching import Batcher, plan_forwards


def rows_of(*lengths: int):
    return [{"input_ids": [n] * n} for n in lengths]


def echo_forward(seen: list):
    def forward(rows):
        seen.append([len(r["input_ids"]) for r in rows])
        return torch.tensor([[float(r["input_ids"][0])] for r in rows])

    return forward


def test_forwards_stay_within_the_token_budget_longest_first():
    seen: list = []
    batcher = Batcher(echo_forward(seen), max_batch_tokens=10, max_wait_s=0, overhead_tokens=16)
    try:
        out = batcher.submit(rows_of(2, 5, 3, 3, 12)).result(timeout=10)
    finally:
        batcher.close()
    assert out[:, 0].tolist() == [2, 5, 3, 3, 12]  # each row's own result, in the request's order
    # 12 alone (longer than the budget); then 5 alone and 3+3+2 padded to 3x3: 14 padded tokens in two
    # forwards, where filling each forward to the budget (5+3, 3+2) pads 16 in as many.
    assert seen == [[12], [5], [3, 3, 2]]


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


def cost(plan: list[list[int]], lengths: list[int], overhead: int) -> int:
    return sum(len(f) * max(lengths[i] for i in f) + overhead for f in plan)


def partitions(items: list[int]):
    """Every way to split `items` into non-empty groups."""
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for smaller in partitions(rest):
        yield [[first], *smaller]
        for k in range(len(smaller)):
            yield [*smaller[:k], [first, *smaller[k]], *smaller[k + 1 :]]


def fill_to_budget(lengths: list[int], budget: int) -> list[list[int]]:
    """The plan without length grouping: longest first, each forward filled up to the budget."""
    plan: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        if plan and (len(plan[-1]) + 1) * lengths[plan[-1][0]] <= budget:
            plan[-1].append(i)
        else:
            plan.append([i])
    return plan


def test_the_plan_is_the_cheapest_split_when_the_budget_does_not_bind():
    rng = random.Random(0)
    for _ in range(150):
        lengths = [rng.randint(1, 40) for _ in range(rng.randint(1, 7))]
        overhead = rng.choice([0, 3, 16, 100])
        plan = plan_forwards(lengths, 10**6, overhead)
        cheapest = min(cost(p, lengths, overhead) for p in partitions(list(range(len(lengths)))))
        assert cost(plan, lengths, overhead) == cheapest, (lengths, overhead, plan)
    # No overhead: one forward per length, nothing padded.
    plan = plan_forwards([4, 9, 4, 1, 9], 10**6, 0)
    assert sorted(sorted(f) for f in plan) == [[0, 2], [1, 4], [3]]


def test_the_plan_holds_the_budget_and_never_pads_more_than_filling_forwards():
    rng = random.Random(1)
    for _ in range(300):
        lengths = [rng.randint(1, 60) for _ in range(rng.randint(1, 60))]
        budget, overhead = rng.choice([8, 30, 100, 1000]), rng.choice([0, 4, 64, 1000])
        plan = plan_forwards(lengths, budget, overhead)
        assert sorted(i for f in plan for i in f) == list(range(len(lengths)))  # every row once
        assert all(len(f) == 1 or len(f) * max(lengths[i] for i in f) <= budget for f in plan)
        assert all(lengths[f[0]] == max(lengths[i] for i in f) for f in plan)  # longest row first
        assert cost(plan, lengths, overhead) <= cost(fill_to_budget(lengths, budget), lengths, overhead)


class GatedForward:
    """Holds the first forward until `open()`, so that what is submitted meanwhile waits together; then
    records each forward's row lengths and answers each row with its first token id."""

    def __init__(self):
        self.entered, self.gate, self.seen = threading.Event(), threading.Event(), []

    def __call__(self, rows):
        self.entered.set()
        assert self.gate.wait(10)
        if any(r["input_ids"][0] == 7 for r in rows):
            raise RuntimeError("bad row")
        self.seen.append([len(r["input_ids"]) for r in rows])
        return torch.tensor([[float(r["input_ids"][0])] for r in rows])


def test_a_mixed_length_burst_is_grouped_by_length_and_each_request_gets_its_own_rows():
    rng = random.Random(2)
    overhead = 2
    forward, padded = GatedForward(), []
    batcher = Batcher(
        forward,
        max_batch_tokens=100_000,
        max_wait_s=0,
        overhead_tokens=overhead,
        on_batch=lambda rows, tokens: padded.append(tokens),
    )
    ids = itertools.count(100)  # each row's first id is its own, so answers show whose rows they are
    requests = []  # (row ids, row lengths) of each request: short questions and long answers, mixed
    for _ in range(40):
        lengths = [rng.choice([rng.randint(3, 6), rng.randint(30, 34)]) for _ in range(rng.randint(1, 3))]
        requests.append(([next(ids) for _ in lengths], lengths))
    try:
        held = batcher.submit(rows_of(1))  # the worker holds this one at the gate...
        assert forward.entered.wait(10)
        futures = [  # ...while the burst queues up, to be planned as one
            batcher.submit([{"input_ids": [i] * n} for i, n in zip(row_ids, lengths, strict=True)])
            for row_ids, lengths in requests
        ]
        forward.gate.set()
        held.result(timeout=10)
        for (row_ids, _), future in zip(requests, futures, strict=True):
            assert future.result(timeout=10)[:, 0].tolist() == row_ids
    finally:
        batcher.close()
    lengths = [n for _, row_lengths in requests for n in row_lengths]
    real = sum(lengths)
    burst = padded[1:]
    assert sum(len(f) for f in forward.seen[1:]) == len(lengths)  # the burst, and nothing else
    # The plan costs no more than one forward per distinct length (which pads nothing), so its padding
    # is at most `overhead` per forward saved. One padded forward would pad every row to the longest.
    bound = real + overhead * (len(set(lengths)) - len(burst))
    assert sum(burst) <= bound
    assert 1 - real / bound < 0.1 < 1 - real / (len(lengths) * max(lengths))
    assert burst == [len(f) * max(f) for f in forward.seen[1:]]  # on_batch: rows x longest


def test_a_failing_forward_fails_only_the_requests_with_rows_in_it():
    forward = GatedForward()
    batcher = Batcher(forward, max_batch_tokens=1000, max_wait_s=0, overhead_tokens=1)
    try:
        held = batcher.submit(rows_of(1))
        assert forward.entered.wait(10)
        bad = batcher.submit([{"input_ids": [7] * 30}])  # its own forward: 27 padded tokens apart
        good = [batcher.submit(rows_of(3, 3)), batcher.submit(rows_of(3))]
        forward.gate.set()
        held.result(timeout=10)
        with pytest.raises(RuntimeError, match="bad row"):
            bad.result(timeout=10)
        assert [g.result(timeout=10)[:, 0].tolist() for g in good] == [[3, 3], [3]]
        assert batcher.submit(rows_of(5)).result(timeout=10)[0, 0] == 5  # the worker goes on
    finally:
        batcher.close()
