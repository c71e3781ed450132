"""Length-grouped encoding: run one batch through the encoder in a few chunks of similar length, so that
little compute goes to padding, and put the outputs back in the batch's order.

The batch itself is not changed: every row still meets every other row of the batch as an in-batch
negative, so the loss is the loss of the padded batch (up to float rounding); only the forward pass is
split. A padded batch of short queries and long answers spends a third of its positions on padding
(bench/bench_embed_train.py); sorting rows by length and cutting the sorted list where the lengths jump
removes most of it.

Where to cut is a small dynamic programme over the sorted lengths. A chunk costs its padded size
(rows x longest row) plus a fixed overhead per forward call (kernel launches, Python, small matmuls being
less efficient), expressed in tokens: `CHUNK_OVERHEAD_TOKENS`, measured on all-MiniLM-L6-v2 on a CPU.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypedDict

import torch
from transformers import PreTrainedTokenizerBase

from mg_heads.tokenize import encode_texts

# One more forward call costs about as much as this many tokens of compute (MiniLM, CPU, fp32: ~25 ms a
# call against ~0.37 ms a token). A higher value gives fewer, more padded chunks.
CHUNK_OVERHEAD_TOKENS = 64


class LengthGroups(TypedDict):
    """A batch encoded as chunks of similar length. A plain dict at run time, so the HF Trainer moves its
    tensors to the device like any other input."""

    chunks: list[dict[str, torch.Tensor]]  # padded encodings (input_ids, attention_mask, ...)
    restore: torch.Tensor  # index into the concatenated chunk outputs, giving them in batch order


def cut_points(lengths: Sequence[int], overhead: int = CHUNK_OVERHEAD_TOKENS) -> list[list[int]]:
    """Row indices grouped into chunks minimising sum(rows x longest) + overhead x chunks.

    Rows are sorted by length; a chunk is a run of that order, so its cost is its size times the length
    of its last (longest) row."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    sorted_lengths = [lengths[i] for i in order]
    n = len(order)
    best = [0.0] + [float("inf")] * n  # best[j]: cheapest split of the first j sorted rows
    start = [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(j):
            cost = best[i] + (j - i) * sorted_lengths[j - 1] + overhead
            if cost < best[j]:
                best[j], start[j] = cost, i
    chunks, j = [], n
    while j > 0:
        chunks.append(order[start[j] : j])
        j = start[j]
    return chunks[::-1]


def encode_length_groups(
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    *,
    max_length: int,
    overhead: int = CHUNK_OVERHEAD_TOKENS,
) -> LengthGroups:
    """`encode_texts` for each chunk of similar length (same truncation, special tokens and padding side)."""
    texts = list(texts)
    lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]]
    chunks = cut_points(lengths, overhead)
    chunk_order = [i for chunk in chunks for i in chunk]
    restore = torch.empty(len(texts), dtype=torch.long)
    restore[torch.tensor(chunk_order, dtype=torch.long)] = torch.arange(len(texts))
    encodings = [
        dict(encode_texts(tokenizer, [texts[i] for i in chunk], max_length=max_length)) for chunk in chunks
    ]
    return LengthGroups(chunks=encodings, restore=restore)


def encode_groups(model: Callable[..., torch.Tensor], groups: LengthGroups) -> torch.Tensor:
    """The model's outputs ([rows, ...]) for every chunk, concatenated and put back in batch order."""
    outputs = torch.cat([model(**chunk) for chunk in groups["chunks"]])
    return outputs.index_select(0, groups["restore"].to(outputs.device))
