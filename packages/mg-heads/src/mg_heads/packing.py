"""Packing for causal-LM training: several samples in one row, each seeing only itself.

Padding every batch to its longest sample spends most of a GPU on padding for SFT-like lengths (59% of
the slots at 1.5B; isolated packing trained ~5.7x faster, shared/gpu/README.md). Packing is only correct
if the samples of a row stay apart: a token must attend only to earlier tokens of its own sample, its
positions must restart at 0, and no label may ask the last token of one sample to predict the first token
of the next.

Restarted position_ids alone do not keep samples apart in transformers 5. The modelling code derives a
document mask from them only when no attention_mask is passed AND no cache is built; a 2D mask (what
every padding collator returns) or `use_cache` on (the config default, also in train mode) silently turns
it off, and the packed samples attend to each other (relative logit error ~1 here and on the H200,
shared/gpu/README.md). So `collate_packed` always passes an explicit mask, which transformers uses as it
is (masking_utils `_preprocess_mask_arguments` returns any 4D tensor or BlockMask unchanged):

- sdpa: a 4D bool mask, True = may attend; sdpa takes bool masks directly.
- eager: a 4D float mask, 0 = may attend, a very negative number = may not. The eager attention ADDS the
  mask to the scores, so a bool mask there adds 1/0 and leaks (measured: relative error ~1). float32,
  so that any model dtype promotes to it without overflow.
- flex_attention: a BlockMask from a document-id tensor, built on CPU like the other tensors (a BlockMask
  is not a tensor: whoever moves the batch must call its `.to(device)`). On CPU torch 2.15 compiles its
  forward on first use and has no backward: train with sdpa there.
- flash_attention_2/3: no mask; the rows become one flat row whose restarting position_ids transformers
  turns into varlen cu_seqlens.

Padding tokens attend to themselves only, so no softmax row is empty (no NaN) and none of them is seen by
a real token.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

IGNORE_INDEX = -100
MASKED_ATTN_IMPLEMENTATIONS = ("sdpa", "eager", "flex_attention")
FLAT_ATTN_IMPLEMENTATIONS = ("flash_attention_2", "flash_attention_3")
PADDING_DOC = -1  # document id of padding positions


@dataclass(frozen=True)
class Sample:
    """One tokenized training sample; labels are not shifted (the *ForCausalLM loss shifts them)."""

    input_ids: list[int]
    labels: list[int]

    def __post_init__(self) -> None:
        if len(self.input_ids) != len(self.labels):
            raise ValueError(
                f"a Sample needs as many labels as input_ids, got {len(self.labels)} and {len(self.input_ids)}"
            )


def pack(lengths: list[int], row_length: int) -> list[list[int]]:
    """Sample indices per row, every row's total length <= row_length, by first-fit decreasing.

    Longest first, each into the first row with room (ties broken by index, so the result is deterministic).
    A length > row_length raises ValueError: the caller truncates or splits first.
    """
    if row_length < 1:
        raise ValueError(f"row_length must be at least 1, got {row_length}")
    for i, n in enumerate(lengths):
        if not 1 <= n <= row_length:
            raise ValueError(
                f"sample {i} has length {n}; packing needs 1 <= length <= row_length ({row_length})"
            )
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    room = _RoomTree(len(lengths), row_length)
    rows: list[list[int]] = []
    for i in order:
        row = room.first_with(lengths[i])
        if row == len(rows):
            rows.append([])
        rows[row].append(i)
        room.take(row, lengths[i])
    return rows


class _RoomTree:
    """Free room of every possible row in a max segment tree, so that first fit costs O(log n), not O(rows).

    Unopened rows have the full row_length, so "the first row with room" may be a new one.
    """

    def __init__(self, n_rows: int, row_length: int) -> None:
        self.size = 1
        while self.size < max(n_rows, 1):
            self.size *= 2
        self.tree = [row_length] * (2 * self.size)

    def first_with(self, need: int) -> int:
        node = 1
        while node < self.size:
            node = 2 * node if self.tree[2 * node] >= need else 2 * node + 1
        return node - self.size

    def take(self, row: int, amount: int) -> None:
        node = row + self.size
        self.tree[node] -= amount
        while node > 1:
            node //= 2
            self.tree[node] = max(self.tree[2 * node], self.tree[2 * node + 1])


def split_long(sample: Sample, row_length: int) -> list[Sample]:
    """Consecutive chunks of at most row_length tokens (pre-training text longer than a row)."""
    if row_length < 1:
        raise ValueError(f"row_length must be at least 1, got {row_length}")
    return [
        Sample(sample.input_ids[start : start + row_length], sample.labels[start : start + row_length])
        for start in range(0, len(sample.input_ids), row_length)
    ]


def collate_packed(rows: list[list[Sample]], *, pad_token_id: int, attn_implementation: str) -> dict:
    """One batch of packed rows -> input_ids, labels, position_ids and the mask that keeps samples apart.

    input_ids/labels/position_ids are [B, T] (T = longest row, right-padded), except for flash attention,
    where all rows become one [1, sum] row without a mask. Labels are -100 on padding and on the first
    token of every sample after the first, so that no shifted label crosses a sample boundary.
    """
    if attn_implementation in FLAT_ATTN_IMPLEMENTATIONS:
        rows = [[sample for row in rows for sample in row]]
    elif attn_implementation not in MASKED_ATTN_IMPLEMENTATIONS:
        supported = ", ".join(MASKED_ATTN_IMPLEMENTATIONS + FLAT_ATTN_IMPLEMENTATIONS)
        raise ValueError(f"packing supports attn_implementation {supported}; got {attn_implementation!r}")
    width = max(sum(len(s.input_ids) for s in row) for row in rows)
    input_ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    position_ids = torch.zeros((len(rows), width), dtype=torch.long)
    documents = torch.full((len(rows), width), PADDING_DOC, dtype=torch.long)
    for b, row in enumerate(rows):
        start = 0
        for doc, sample in enumerate(row):
            end = start + len(sample.input_ids)
            input_ids[b, start:end] = torch.tensor(sample.input_ids)
            labels[b, start:end] = torch.tensor(sample.labels)
            if start > 0:
                labels[b, start] = IGNORE_INDEX
            position_ids[b, start:end] = torch.arange(end - start)
            documents[b, start:end] = doc
            start = end
    batch = {"input_ids": input_ids, "labels": labels, "position_ids": position_ids}
    if attn_implementation in MASKED_ATTN_IMPLEMENTATIONS:
        batch["attention_mask"] = _document_mask(documents, attn_implementation)
    return batch


def _may_attend(documents: torch.Tensor, b, q, k):
    """Same sample and not in the future; a padding position sees itself only."""
    same = (documents[b, q] == documents[b, k]) & (documents[b, q] != PADDING_DOC)
    return (same & (q >= k)) | (q == k)


def _flex_mask_mod(documents: torch.Tensor, b, h, q, k):
    return _may_attend(documents, b, q, k)


def _document_mask(documents: torch.Tensor, attn_implementation: str):
    batch, width = documents.shape
    if attn_implementation == "flex_attention":
        from torch.nn.attention.flex_attention import create_block_mask

        # functools.partial of a module-level function, not a lambda: the BlockMask keeps its mask_mod and
        # must pickle to leave a DataLoader worker.
        may_attend = functools.partial(_flex_mask_mod, documents)
        return create_block_mask(may_attend, batch, None, width, width, device=documents.device)
    b = torch.arange(batch)[:, None, None]
    q = torch.arange(width)[None, :, None]
    k = torch.arange(width)[None, None, :]
    allowed = _may_attend(documents, b, q, k)[:, None]  # [B, 1, T, T]
    if attn_implementation == "sdpa":
        return allowed
    return torch.zeros(allowed.shape).masked_fill_(~allowed, torch.finfo(torch.float32).min)


def collate_padded(samples: list[Sample], *, pad_token_id: int) -> dict:
    """The unpacked baseline: one sample per row, right-padded, 2D attention_mask, labels -100 on padding."""
    width = max(len(s.input_ids) for s in samples)
    input_ids = torch.full((len(samples), width), pad_token_id, dtype=torch.long)
    labels = torch.full((len(samples), width), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(samples), width), dtype=torch.long)
    for b, sample in enumerate(samples):
        n = len(sample.input_ids)
        input_ids[b, :n] = torch.tensor(sample.input_ids)
        labels[b, :n] = torch.tensor(sample.labels)
        attention_mask[b, :n] = 1
    return {"input_ids": input_ids, "labels": labels, "attention_mask": attention_mask}
