"""group_by_length over normalized examples: every example once an epoch, batches of similar length, and
batches still drawn from a random group of examples (not one global sort)."""

from __future__ import annotations

import random

from mg_train.trainer import SimilarLengthBatches, text_length

BATCH = 8


def lengths(n: int = 640, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    return [rng.choice([rng.randint(5, 20), rng.randint(40, 200)]) for _ in range(n)]


def batches(order: list[int]) -> list[list[int]]:
    return [order[i : i + BATCH] for i in range(0, len(order), BATCH)]


def padded_share(order: list[int], sizes: list[int]) -> float:
    real = padded = 0
    for batch in batches(order):
        real += sum(sizes[i] for i in batch)
        padded += max(sizes[i] for i in batch) * len(batch)
    return 1 - real / padded


def test_every_example_once_and_far_less_padding_than_random():
    sizes = lengths()
    order = list(SimilarLengthBatches(BATCH, lengths=sizes, seed=0))
    assert sorted(order) == list(range(len(sizes)))
    shuffled = list(range(len(sizes)))
    random.Random(0).shuffle(shuffled)
    assert padded_share(order, sizes) < 0.5 * padded_share(shuffled, sizes)


def test_batches_come_from_small_random_groups_not_one_sort():
    """A global sort would put the same rows together every epoch; groups of GROUP batches mix them."""
    sizes = lengths()
    first = list(SimilarLengthBatches(BATCH, lengths=sizes, seed=0))
    second = list(SimilarLengthBatches(BATCH, lengths=sizes, seed=1))
    assert {frozenset(b) for b in batches(first)} != {frozenset(b) for b in batches(second)}
    group = SimilarLengthBatches.GROUP * BATCH
    for start in range(0, len(first), group):  # each group is a random draw: its lengths span the range
        chunk = [sizes[i] for i in first[start : start + group]]
        assert min(chunk) < 25 and max(chunk) > 100


def test_the_order_depends_on_seed_and_epoch_only():
    sizes = lengths()
    sampler = SimilarLengthBatches(BATCH, lengths=sizes, seed=3)
    first, second = list(sampler), list(sampler)
    assert first != second  # a new order each epoch
    resumed = SimilarLengthBatches(BATCH, lengths=sizes, seed=3)
    resumed.set_epoch(1)
    assert list(resumed) == second  # a resumed run (or another process) sees the same order


def test_text_length_counts_every_text_of_an_example():
    example = {"query": "abc", "positives": ["de"], "negatives": ["fghi", "j"], "scores": None}
    assert text_length(example) == 10
    assert text_length({"messages": [{"role": "user", "content": "你好"}]}) == len("user") + 2
