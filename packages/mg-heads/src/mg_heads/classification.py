"""Sequence classifiers for classify, rm, rerank and score: transformers' `AutoModelForSequenceClassification`
with the config vLLM reads (num_labels, problem_type, id2label/label2id, pad_token_id).

Heads: decoders (Qwen2/Qwen3/Llama ForSequenceClassification) have a top-level `score` Linear without bias
and score the last non-pad token; the BERT family has `bert.pooler` + `classifier`. Both are what vLLM
loads. Task conventions (vllm-compat.md), see `head_spec`:

| task     | num_labels  | problem_type                                     | vLLM activation        |
| classify | len(labels) | single_label_ / multi_label_classification,      | softmax / sigmoid /    |
|          | (1: regr.)  | regression                                       | none                   |
| rm       | 1           | regression                                       | none (raw reward)      |
| rerank   | 1           | None (cross-encoder)                             | sigmoid                |
| score    | 1           | regression                                       | none                   |
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from torch import nn
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from mg_data.tasks import PoolingTask

# The pooling tasks (mg_data.tasks.POOLING_TASKS) whose model is a sequence classifier: all but embed.
SEQ_CLS_TASKS: tuple[PoolingTask, ...] = ("classify", "rm", "rerank", "score")
# transformers' PretrainedConfig.problem_type values.
ProblemType = Literal["single_label_classification", "multi_label_classification", "regression"]
PROBLEM_TYPES: tuple[ProblemType, ...] = get_args(ProblemType)


@dataclass(frozen=True)
class HeadSpec:
    """The head config of a task: what `load_sequence_classifier` and `export` put in config.json."""

    num_labels: int
    problem_type: ProblemType | None
    id2label: dict[int, str] | None = None


def head_spec(task: str, labels: list[str] | None = None, problem_type: str | None = None) -> HeadSpec:
    """The head for `task`. classify: one output per label with `problem_type` (default single-label),
    or one output for regression. rm/score: one output, regression. rerank: one output, no problem_type,
    so vLLM and sentence-transformers' CrossEncoder apply a sigmoid."""
    if task == "classify":
        problem_type = problem_type or "single_label_classification"
        if problem_type not in PROBLEM_TYPES:
            raise ValueError(f"problem_type must be one of {PROBLEM_TYPES}, not {problem_type!r}")
        if problem_type == "regression" and not labels:
            return HeadSpec(1, problem_type)
        if not labels:
            raise ValueError(f"{problem_type} needs the label names")
        return HeadSpec(len(labels), problem_type, dict(enumerate(labels)))
    if problem_type is not None:
        raise ValueError(f"task {task!r} has a fixed problem_type; do not pass one")
    if task in ("rm", "score"):
        return HeadSpec(1, "regression")
    if task == "rerank":
        return HeadSpec(1, None)
    raise ValueError(f"task must be one of {SEQ_CLS_TASKS}, not {task!r}")


def pad_token_id_for(tokenizer: PreTrainedTokenizerBase) -> int:
    """The tokenizer's pad id, else its eos id (see mg_heads.tokenize.ensure_pad_token for what pad == eos
    implies)."""
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad_id is None:
        raise ValueError("the tokenizer has neither a pad nor an eos token")
    return pad_id


def load_sequence_classifier(
    path: str | Path,
    *,
    num_labels: int,
    problem_type: str | None,
    id2label: dict[int, str] | None = None,
    tokenizer: PreTrainedTokenizerBase | None = None,
    **hf_kwargs,
) -> PreTrainedModel:
    """`AutoModelForSequenceClassification` from any transformers folder (a causal LM, a base encoder, a
    sentence-transformers folder's root), head newly initialised, config set for vLLM.

    `pad_token_id` comes from `tokenizer` (loaded from `path` when not given): its pad token, else its eos.
    With pad == eos transformers' decoder classifiers score the last token that is not eos, so inputs must
    not end with eos (mg_heads.tokenize.encode_texts never appends one).
    """
    if problem_type is not None and problem_type not in PROBLEM_TYPES:
        raise ValueError(f"problem_type must be one of {PROBLEM_TYPES} or None, not {problem_type!r}")
    if id2label is not None and len(id2label) != num_labels:
        raise ValueError(f"id2label has {len(id2label)} labels but num_labels is {num_labels}")
    tokenizer = tokenizer if tokenizer is not None else AutoTokenizer.from_pretrained(path)
    labels = {}
    if id2label is not None:
        labels = {"id2label": dict(id2label), "label2id": {name: i for i, name in id2label.items()}}
    return AutoModelForSequenceClassification.from_pretrained(
        path,
        num_labels=num_labels,
        problem_type=problem_type,
        pad_token_id=pad_token_id_for(tokenizer),
        **labels,
        **hf_kwargs,
    )


def head_module_name(model: nn.Module) -> str:
    """ "score" for decoder classifiers, "classifier" for the BERT family."""
    for name in ("score", "classifier"):
        if name in dict(model.named_children()):
            return name
    raise ValueError(f"{type(model).__name__} has neither a `score` nor a `classifier` head")
