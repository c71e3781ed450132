"""Export a trained task model as a folder that vLLM, transformers and sentence-transformers load as it is.

| task     | layout                                                                   |
| classify | <Arch>ForSequenceClassification, id2label/label2id, problem_type         |
| rm       | <Arch>ForSequenceClassification, num_labels 1, problem_type regression   |
| rerank   | cross-encoder <Arch>ForSequenceClassification, num_labels 1, sigmoid     |
| score    | cross-encoder <Arch>ForSequenceClassification, num_labels 1, regression  |
| embed    | base model + sentence-transformers modules.json, 1_Pooling, 2_Normalize  |

Never value-head files, never a modules.json beside a classifier. LoRA is always merged (vLLM 0.8.5 rejects
adapters with modules_to_save). Every folder gets `mg_export.json`: what it is, how it was trained and the
exact `vllm serve` commands. The folder is built beside `out_dir` and renamed into place (an existing one is
renamed away first, then deleted), so a reader never sees half a folder.
"""

from __future__ import annotations

import copy
import json
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn
from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

from mg_data.tasks import POOLING_TASKS
from mg_fs import atomic_dir
from mg_heads import __version__
from mg_heads.classification import head_spec, pad_token_id_for
from mg_heads.embedding import EmbeddingModel
from mg_heads.lora import is_lora, merge
from mg_heads.pooling import is_encoder
from mg_heads.tokenize import ensure_pad_token

TASKS = POOLING_TASKS  # every pooling task exports (mg_data.tasks: the one task vocabulary)
EXPORT_FILE = "mg_export.json"
NEWEST_VLLM = "vllm>=0.33"  # the key of `serve` whose command `Export.serve_command` is


@dataclass(frozen=True)
class Export:
    """What `export` wrote: the folder and what its mg_export.json says, typed."""

    path: Path
    task: str
    architecture: str
    problem_type: str | None
    labels: list[str] | None
    pooling: str | None
    normalize: bool | None
    max_length: int
    serve: dict  # vLLM generation -> {"command": str | None, "note": ...}, as in mg_export.json

    @property
    def serve_command(self) -> str:
        """The command that serves the folder on current vLLM."""
        return self.serve[NEWEST_VLLM]["command"]


# What sentence-transformers' CrossEncoder applies to the logit; vLLM reads the same key (problem_type first).
CROSS_ENCODER_ACTIVATION = {
    "rerank": "torch.nn.modules.activation.Sigmoid",
    "score": "torch.nn.modules.linear.Identity",
}
# Architectures vLLM 0.8.5 registers (vllm-compat.md).
VLLM_085_EMBED = {
    "BertModel",
    "RobertaModel",
    "XLMRobertaModel",
    "LlamaModel",
    "MistralModel",
    "Gemma2Model",
    "Qwen2Model",
}
VLLM_085_CROSS_ENCODERS = {
    "BertForSequenceClassification",
    "RobertaForSequenceClassification",
    "XLMRobertaForSequenceClassification",
    "ModernBertForSequenceClassification",
}
VLLM_085_DECODER_CLASSIFIERS = {"Qwen2ForSequenceClassification"}


def export(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    out_dir: str | Path,
    *,
    task: str,
    max_length: int,
    labels: list[str] | None = None,
    pooling: str | None = None,
    normalize: bool | None = None,
    training: dict | None = None,
    matryoshka_dims: list[int] | None = None,
) -> Export:
    """Write the vLLM-ready folder for `task` to `out_dir` (replacing it) and return what it wrote.

    `model`: an EmbeddingModel for embed, a transformers ForSequenceClassification otherwise, either with
    LoRA adapters or without (LoRA is merged on a copy; the given model is left as it is). `labels` names
    the classify outputs (default: the config's id2label). `pooling`/`normalize` must agree with the
    EmbeddingModel when given. `training` is recorded as is in mg_export.json. Prints nothing.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, not {task!r}")
    if matryoshka_dims and task != "embed":
        raise ValueError("matryoshka_dims only apply to task embed")
    model = merge(model, copy_first=True) if is_lora(model) else model
    if tokenizer.pad_token is None:
        # The folder's own loaders batch with padding (sentence-transformers, CrossEncoder).
        tokenizer = copy.deepcopy(tokenizer)
        ensure_pad_token(tokenizer)
    out_dir = Path(out_dir).resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # Built in a temp folder beside out_dir and swapped in whole; a killed export's folder is removed by the
    # next one (mg_fs.clean_stale_temps).
    with atomic_dir(out_dir) as tmp:
        with _no_progress_bars():
            if task == "embed":
                info = _write_embed(model, tokenizer, tmp, max_length, pooling, normalize, matryoshka_dims)
            else:
                info = _write_seq_cls(model, tokenizer, tmp, task, labels)
        info = {
            "format": 1,
            "task": task,
            **info,
            "max_length": max_length,
            "training": training,
            "mg_heads_version": __version__,
            "serve": serve_commands(out_dir, task, info["architecture"], info["problem_type"]),
        }
        (tmp / EXPORT_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return Export(
        path=out_dir,
        task=task,
        architecture=info["architecture"],
        problem_type=info["problem_type"],
        labels=info["labels"],
        pooling=info["pooling"],
        normalize=info["normalize"],
        max_length=max_length,
        serve=info["serve"],
    )


def _write_embed(model, tokenizer, out_dir, max_length, pooling, normalize, matryoshka_dims) -> dict:
    if not isinstance(model, EmbeddingModel):
        raise TypeError(f"task embed exports an EmbeddingModel, not {type(model).__name__}")
    # The folder must describe the model as trained; a different pooling here would silently change it.
    if pooling is not None and pooling != model.pooling:
        raise ValueError(f"pooling={pooling!r} but the model pools with {model.pooling!r}")
    if normalize is not None and normalize != model.normalize:
        raise ValueError(f"normalize={normalize} but the model has normalize={model.normalize}")
    model.save_pretrained(out_dir, tokenizer, max_length=max_length, matryoshka_dims=matryoshka_dims)
    return {
        "architecture": type(model.backbone).__name__,
        "num_labels": None,
        "problem_type": None,
        "labels": None,
        "pooling": model.pooling,
        "normalize": model.normalize,
        "matryoshka_dimensions": sorted(matryoshka_dims, reverse=True) if matryoshka_dims else None,
    }


def _label_names(config: PretrainedConfig) -> list[str]:
    """id2label's names in index order. A built config always has id2label, keyed by int (transformers
    converts the JSON's string keys when the config is made), though its annotation allows None and str."""
    id2label: dict[Any, str] = config.id2label or {}
    return [id2label[i] for i in range(len(id2label))]


def _write_seq_cls(model, tokenizer, out_dir, task, labels) -> dict:
    arch = type(model).__name__
    if not isinstance(model, PreTrainedModel) or not arch.endswith("ForSequenceClassification"):
        raise TypeError(f"task {task} exports a ForSequenceClassification model, not {arch}")
    config = model.config
    if task == "classify":
        problem_type = config.problem_type or (
            "regression" if config.num_labels == 1 else "single_label_classification"
        )
        if labels is None and not (problem_type == "regression" and config.num_labels == 1):
            labels = _label_names(config)
        spec = head_spec(task, labels, problem_type)
    else:
        spec = head_spec(task)
    if spec.num_labels != config.num_labels:
        raise ValueError(f"task {task} needs num_labels={spec.num_labels}, the model has {config.num_labels}")

    model.save_pretrained(out_dir)
    # Fix the head config on a copy: the caller's model keeps its own (a forward with labels may have set
    # problem_type, e.g. to "regression" for a one-output reranker, which would drop vLLM's sigmoid).
    config = copy.deepcopy(config)
    config.architectures = [arch]
    config.problem_type = spec.problem_type
    if spec.id2label is not None:
        config.id2label = dict(spec.id2label)
        config.label2id = {name: i for i, name in spec.id2label.items()}
    if config.pad_token_id is None:
        config.pad_token_id = pad_token_id_for(tokenizer)
    if task in CROSS_ENCODER_ACTIVATION:
        config.sentence_transformers = {"activation_fn": CROSS_ENCODER_ACTIVATION[task]}
    config.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return {
        "architecture": arch,
        "num_labels": spec.num_labels,
        "problem_type": spec.problem_type,
        "labels": list(spec.id2label.values()) if spec.id2label else None,
        # Which token the head reads: [CLS] through bert.pooler for encoders, the last token for decoders.
        "pooling": "cls" if is_encoder(config) else "last",
        "normalize": None,
        "matryoshka_dimensions": None,
    }


def serve_commands(out_dir: Path, task: str, arch: str, problem_type: str | None) -> dict:
    """The `vllm serve` command per vLLM generation, with a note where the served output differs."""
    model = shlex.quote(str(out_dir))
    convert = "embed" if task == "embed" else "classify"
    new = {"command": f"vllm serve {model} --runner pooling --convert {convert}"}
    if task in ("rerank", "score"):
        new["note"] = "POST /score or /rerank (one-output classifier)"
    return {"vllm>=0.33": new, "vllm==0.8.5": _serve_085(model, task, arch, problem_type)}


def _serve_085(model: str, task: str, arch: str, problem_type: str | None) -> dict:
    if task == "embed":
        if arch in VLLM_085_EMBED:
            return {"command": f"vllm serve {model} --task embed"}
        return {"command": None, "note": f"{arch} is not registered in vLLM 0.8.5"}
    if arch in VLLM_085_CROSS_ENCODERS:
        if task in ("rerank", "score"):
            return {"command": f"vllm serve {model} --task score"}
        return {"command": f"vllm serve {model} --task classify"}
    if arch not in VLLM_085_DECODER_CLASSIFIERS:
        return {"command": None, "note": f"{arch} is not registered in vLLM 0.8.5"}
    if task == "rerank":
        return {"command": None, "note": "vLLM 0.8.5 scores pairs only with BERT-family cross-encoders"}
    if problem_type == "single_label_classification":
        return {"command": f"vllm serve {model} --task classify"}
    # 0.8.5 applies softmax to every decoder classifier: always 1.0 for one output, wrong for multi-label.
    override = shlex.quote(json.dumps({"softmax": False}))
    note = "returns the raw score" if problem_type == "regression" else "returns logits: apply a sigmoid"
    return {
        "command": f"vllm serve {model} --task classify --override-pooler-config {override}",
        "note": note,
    }


@contextmanager
def _no_progress_bars() -> Iterator[None]:
    # transformers 5 draws a "Writing model shards" bar in save_pretrained; export prints nothing.
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()
