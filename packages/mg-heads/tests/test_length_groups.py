"""Length-grouped encoding gives the padded batch's outputs and gradients, in the batch's order, for less
padded compute."""

import itertools

import pytest
import torch
from conftest import assert_close
from transformers import AutoTokenizer

from mg_heads.embedding import EmbeddingModel
from mg_heads.length_groups import cut_points, encode_groups, encode_length_groups
from mg_heads.tokenize import encode_texts, ensure_pad_token

# Short and long rows mixed, as queries and answers are in one batch of FAQ data.
TEXTS = [
    "refund?",
    "a much longer sentence that needs padding in the others of its batch, and then some more words",
    "hello",
    "where is my parcel",
    "the cat sat on the mat while the dog slept under the table in the warm kitchen",
    "机器学习很有趣",
    "ok",
    "how do I change the delivery address of an order that has already shipped",
]


def brute_force_cost(lengths, overhead):
    """The cheapest split of the sorted lengths into runs, trying every set of cut positions."""
    ordered = sorted(lengths)
    n, best = len(ordered), float("inf")
    for k in range(n):
        for cuts in itertools.combinations(range(1, n), k):
            bounds = [0, *cuts, n]
            cost = sum((b - a) * ordered[b - 1] + overhead for a, b in itertools.pairwise(bounds))
            best = min(best, cost)
    return best


@pytest.mark.parametrize("overhead", [0, 5, 40, 1000])
def test_cut_points_is_the_cheapest_split(overhead):
    lengths = [3, 40, 5, 41, 12, 11, 90, 4]
    chunks = cut_points(lengths, overhead)
    assert sorted(i for c in chunks for i in c) == list(range(len(lengths)))
    cost = sum(len(c) * max(lengths[i] for i in c) + overhead for c in chunks)
    assert cost == brute_force_cost(lengths, overhead)


def test_cut_points_extremes():
    lengths = [7, 3, 9, 3]
    assert len(cut_points(lengths, overhead=10**9)) == 1  # calls are expensive: one padded batch
    assert len(cut_points(lengths, overhead=0)) == 3  # free calls: one chunk per distinct length


@pytest.mark.parametrize("fixture", ["tiny_encoder_dir", "tiny_decoder_dir"])
def test_grouped_outputs_and_gradients_equal_the_padded_batch(fixture, request):
    folder = request.getfixturevalue(fixture)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    ensure_pad_token(tokenizer)
    model = EmbeddingModel.from_pretrained(folder).eval()

    groups = encode_length_groups(tokenizer, TEXTS, max_length=64, overhead=0)
    assert len(groups["chunks"]) > 1  # the test must exercise more than one chunk
    grouped = encode_groups(model, groups)
    model.zero_grad()
    grouped.sum().backward()
    grouped_grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]

    model.zero_grad()
    padded = model(**encode_texts(tokenizer, TEXTS, max_length=64))
    padded.sum().backward()
    padded_grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]

    assert_close(grouped, padded)  # same rows, same order
    assert len(grouped_grads) == len(padded_grads)
    for g, p in zip(grouped_grads, padded_grads, strict=True):
        assert_close(g, p)


def test_grouping_removes_padding(tiny_encoder_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    groups = encode_length_groups(tokenizer, TEXTS, max_length=64)
    padded = encode_texts(tokenizer, TEXTS, max_length=64)["input_ids"].numel()
    grouped = sum(chunk["input_ids"].numel() for chunk in groups["chunks"])
    assert grouped < 0.8 * padded
    real = int(encode_texts(tokenizer, TEXTS, max_length=64)["attention_mask"].sum())
    assert sum(int(c["attention_mask"].sum()) for c in groups["chunks"]) == real  # no token lost


def test_truncation_is_that_of_encode_texts(tiny_encoder_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    groups = encode_length_groups(tokenizer, TEXTS, max_length=6, overhead=0)
    rows = torch.cat([c["attention_mask"].sum(1) for c in groups["chunks"]])[groups["restore"]]
    expected = encode_texts(tokenizer, TEXTS, max_length=6)["attention_mask"].sum(1)
    assert rows.tolist() == expected.tolist()
