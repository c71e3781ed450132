"""Tokenization for the pooling tasks (classify, rm, embed, rerank, score), shared by training collators,
evaluation and tests so that a model is trained on exactly what vLLM will feed it.

The rule: tokenize as vLLM does for pooling requests, i.e. the tokenizer's own special tokens
(`add_special_tokens=True`: [CLS]/[SEP] for BERT, a bos where the tokenizer adds one) and nothing else.
In particular we never append eos to decoder inputs. transformers' decoder ForSequenceClassification
(Qwen2, Llama, ... in transformers 5.x `GenericForSequenceClassification`) finds the token it scores as
the rightmost token whose id is not `pad_token_id`; when pad == eos an appended eos is skipped and the
model is trained on the token before it, while vLLM scores the true last token. Pair inputs (rerank,
score) go through the tokenizer's `text_pair`, which is how vLLM's /score and /rerank build them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import BatchEncoding, PreTrainedTokenizerBase


def ensure_pad_token(tokenizer: PreTrainedTokenizerBase) -> bool:
    """Give a tokenizer without a pad token its eos as pad (Llama-style decoders). Returns True if it did.

    Consequence of pad == eos: transformers' decoder ForSequenceClassification cannot tell a real eos from
    padding, so an input must not end with eos (`encode_texts` never appends one; `seq_cls=True` checks).
    Pooling by attention mask (EmbeddingModel, sentence-transformers, vLLM) is unaffected.
    """
    if tokenizer.pad_token is not None:
        return False
    if tokenizer.eos_token is None:
        raise ValueError("the tokenizer has neither a pad nor an eos token; set tokenizer.pad_token first")
    tokenizer.pad_token = tokenizer.eos_token
    return True


def rows_ending_with_pad(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, pad_token_id: int
) -> list[int]:
    """Rows whose last attended token has the pad id: there a pad-id search (transformers' decoder
    ForSequenceClassification) scores a different token than mask-based pooling (vLLM)."""
    from mg_heads.pooling import last_token_index

    rows = torch.arange(input_ids.shape[0])
    last_ids = input_ids[rows, last_token_index(attention_mask)]
    return (last_ids == pad_token_id).nonzero().flatten().tolist()


def encode_texts(
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    text_pairs: Sequence[str] | None = None,
    *,
    max_length: int,
    padding_side: str | None = None,
    seq_cls: bool = False,
) -> BatchEncoding:
    """Tokenize a batch (or a batch of pairs) into padded tensors: input_ids, attention_mask (and
    token_type_ids where the tokenizer makes them).

    Texts longer than `max_length` tokens are truncated to it (pairs: the longer side first), as vLLM does
    with `truncate_prompt_tokens`. `padding_side` "left"/"right" overrides the tokenizer's; pooling by
    mask is correct with either, except "cls" which needs "right". `seq_cls=True` (inputs of a decoder
    ForSequenceClassification) raises if a row ends with the pad token, see `rows_ending_with_pad`.
    """
    if tokenizer.pad_token is None:
        raise ValueError("the tokenizer has no pad token; call mg_heads.tokenize.ensure_pad_token(tokenizer)")
    if text_pairs is not None and len(text_pairs) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(text_pairs)} text pairs")
    batch = tokenizer(
        list(texts),
        list(text_pairs) if text_pairs is not None else None,
        padding=True,
        truncation=True,
        max_length=max_length,
        padding_side=padding_side,
        return_tensors="pt",
    )
    if seq_cls:
        bad = rows_ending_with_pad(batch["input_ids"], batch["attention_mask"], tokenizer.pad_token_id)
        if bad:
            raise ValueError(
                f"rows {bad} end with the pad token {tokenizer.pad_token!r}: transformers' "
                "ForSequenceClassification would score an earlier token than vLLM; strip it from the text"
            )
    return batch
