"""Export a trained task model as a folder that vLLM, transformers and sentence-transformers load as it is.

| task     | layout                                                                   |
| classify | <Arch>ForSequenceClassification, id2label/label2id, problem_type         |
| rm       | <Arch>ForSequenceClassification, num_labels 1, problem_type regression   |
| rerank   | cross-encoder <Arch>ForSequenceClassification, num_labels 1, sigmoid     |
| score    | cross-encoder <Arch>ForSequenceClassification, num_labels 1, regression  |
| embed    | base model + sentence-transformers modules.json, 1_Pooling, 2_Normalize  |
| pt, sft, dpo, kto, grpo, ppo | <Arch>ForCausalLM, tokenizer with its chat template, generation_config |

Never value-head files, never a modules.json (beside a classifier or a causal LM). LoRA is always merged
into the folder (vLLM 0.8.5 rejects adapters with modules_to_save); a generative model's adapter can also be
written to a folder of its own, which vLLM serves on the base model with --enable-lora. Every folder gets
`mg_export.json`: what it is, how it was trained and the exact `vllm serve` commands. The folder is built
beside `out_dir` and renamed into place (an existing one is renamed away first, then deleted), so a reader
never sees half a folder.
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

import torch
from peft import LoraConfig, PeftModel
from torch import nn
from transformers import GenerationConfig, PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

from mg_data.tasks import GENERATIVE_TASKS, POOLING_TASKS
from mg_fs import atomic_dir
from mg_heads import __version__
from mg_heads.classification import head_spec, pad_token_id_for
from mg_heads.embedding import EmbeddingModel
from mg_heads.lora import is_lora, merge
from mg_heads.pooling import is_encoder
from mg_heads.tokenize import ensure_pad_token

TASKS = POOLING_TASKS + GENERATIVE_TASKS  # every task exports (mg_data.tasks: the one task vocabulary)
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
    adapter: Path | None = None  # generative LoRA runs: the PEFT adapter folder written beside `path`
    adapter_serve: dict | None = None  # like `serve`, for the adapter on its base model

    @property
    def serve_command(self) -> str:
        """The command that serves the folder on current vLLM."""
        return self.serve[NEWEST_VLLM]["command"]

    @property
    def adapter_serve_command(self) -> str | None:
        """The command that serves the adapter on its base model on current vLLM (None without one)."""
        return self.adapter_serve[NEWEST_VLLM]["command"] if self.adapter_serve else None


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
    adapter_dir: str | Path | None = None,
) -> Export:
    """Write the vLLM-ready folder for `task` to `out_dir` (replacing it) and return what it wrote.

    `model`: an EmbeddingModel for embed, a transformers ForSequenceClassification otherwise, either with
    LoRA adapters or without (LoRA is merged on a copy; the given model is left as it is). `labels` names
    the classify outputs (default: the config's id2label). `pooling`/`normalize` must agree with the
    EmbeddingModel when given. `training` is recorded as is in mg_export.json. Prints nothing.

    Generative tasks take a transformers *ForCausalLM (with LoRA or not, or inside a training wrapper);
    with `adapter_dir`, a LoRA model's adapter is also written there (see `export_causal_lm`).
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, not {task!r}")
    if task in GENERATIVE_TASKS:
        return export_causal_lm(
            model,
            tokenizer,
            out_dir,
            task=task,
            max_length=max_length,
            training=training,
            adapter_dir=adapter_dir,
        )
    if adapter_dir is not None:
        raise ValueError("adapter_dir is for generative tasks; a pooling export always merges its adapters")
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
        dtype = saved_dtype(model)
        info = {
            "format": 1,
            "task": task,
            **info,
            "dtype": dtype,
            "max_length": max_length,
            "training": training,
            "mg_heads_version": __version__,
            "serve": serve_commands(out_dir, task, info["architecture"], info["problem_type"], dtype),
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


def saved_dtype(model: nn.Module) -> str:
    """The dtype the weights are saved in, as `vllm serve --dtype` names it."""
    first = next(model.parameters(), None)
    dtype = first.dtype if first is not None else torch.float32
    return DTYPE_NAMES.get(dtype, str(dtype).removeprefix("torch."))


def serve_commands(out_dir: Path, task: str, arch: str, problem_type: str | None, dtype: str) -> dict:
    """The `vllm serve` command per vLLM generation, with a note where the served output differs. The dtype
    is the saved one on purpose: vLLM's `auto` serves float32 pooling models in float16 (measured: an rm's
    scores moved 0.037 on SmolLM2, 0.0086 on the tiny model; with float32 they agree to 1e-4 or better)."""
    model = shlex.quote(str(out_dir))
    convert = "embed" if task == "embed" else "classify"
    new = {"command": f"vllm serve {model} --runner pooling --convert {convert} --dtype {dtype}"}
    if task in ("rerank", "score"):
        new["note"] = "POST /score or /rerank (one-output classifier)"
    old = _serve_085(model, task, arch, problem_type)
    if old["command"]:
        old["command"] += f" --dtype {dtype}"
    return {"vllm>=0.33": new, "vllm==0.8.5": old}


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


# --- generative tasks: a plain *ForCausalLM folder, and the PEFT adapter beside it -------------------------

# The ranks vLLM accepts for --max-lora-rank (LoRAConfig; 0.8.5 and 0.33 both take these).
VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)
DTYPE_NAMES = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}


def export_causal_lm(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    out_dir: str | Path,
    *,
    task: str,
    max_length: int,
    training: dict | None = None,
    adapter_dir: str | Path | None = None,
) -> Export:
    """Write `out_dir` as a plain *ForCausalLM folder that transformers loads and `vllm serve` serves as it
    is: the weights (LoRA merged, on a copy), the tokenizer with its chat template, generation_config.json
    (the model's, with the tokenizer's eos among its stop tokens and a pad id) and mg_export.json.

    With `adapter_dir` (a LoRA model only), the PEFT adapter is written there first, with the tokenizer:
    `PeftModel.from_pretrained(base, adapter_dir)` gives the merged folder's model. The model may be inside
    a training wrapper (DDP, DeepSpeed's engine, torch.compile); the given model is left as it is.
    """
    if task not in GENERATIVE_TASKS:
        raise ValueError(f"task must be one of {GENERATIVE_TASKS}, not {task!r}")
    model = unwrap(model)
    base = model.get_base_model() if isinstance(model, PeftModel) else model
    arch = type(base).__name__
    if not isinstance(base, PreTrainedModel) or not arch.endswith("ForCausalLM"):
        raise TypeError(f"task {task} exports a transformers ForCausalLM model, not {arch}")
    if adapter_dir is not None and not isinstance(model, PeftModel):
        raise ValueError("adapter_dir is for a LoRA model; this model has no adapters (finetuning_type full)")
    if tokenizer.pad_token is None:
        # Batched generation (transformers, our eval) pads; pad = eos, as the base model's users do.
        tokenizer = copy.deepcopy(tokenizer)
        ensure_pad_token(tokenizer)
    dtype = saved_dtype(base)
    out_dir = Path(out_dir).resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    adapter = adapter_info = None
    with _no_progress_bars():
        if adapter_dir is not None:
            assert isinstance(model, PeftModel)  # checked above; narrows the type
            adapter = Path(adapter_dir).resolve()
            adapter_info = _write_adapter(model, tokenizer, adapter, dtype)
        merged = merge(model, copy_first=True) if is_lora(model) else model
        assert isinstance(merged, PreTrainedModel)  # a merged PeftModel is its base model
        serve = generate_serve_commands(out_dir, dtype)
        with atomic_dir(out_dir) as tmp:
            merged.save_pretrained(tmp)
            _generation_config(merged, tokenizer).save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            info = {
                "format": 1,
                "task": task,
                "architecture": arch,
                "dtype": dtype,
                "chat_template": bool(tokenizer.chat_template),
                "lora": _lora_summary(model) if isinstance(model, PeftModel) else None,
                "adapter": str(adapter) if adapter else None,
                "max_length": max_length,
                "training": training,
                "mg_heads_version": __version__,
                "serve": serve,
                "adapter_serve": adapter_info,
            }
            (tmp / EXPORT_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return Export(
        path=out_dir,
        task=task,
        architecture=arch,
        problem_type=None,
        labels=None,
        pooling=None,
        normalize=None,
        max_length=max_length,
        serve=serve,
        adapter=adapter,
        adapter_serve=adapter_info,
    )


def unwrap(model: nn.Module) -> nn.Module:
    """The transformers (or peft) model inside training wrappers: DDP, DataParallel, DeepSpeed's engine and
    FSDP hold it as `module`, torch.compile as `_orig_mod`."""
    while not isinstance(model, PreTrainedModel | PeftModel):
        inner = getattr(model, "_orig_mod", None)
        if inner is None:
            inner = getattr(model, "module", None)
        if not isinstance(inner, nn.Module):
            raise TypeError(
                f"expected a transformers model (or a training wrapper of one), not {type(model).__name__}"
            )
        model = inner
    return model


def _write_adapter(
    model: PeftModel, tokenizer: PreTrainedTokenizerBase, adapter_dir: Path, dtype: str
) -> dict:
    """The adapter (before any merge: peft merges in place), with the tokenizer: vLLM serving the adapter on
    the base model takes the tokenizer, and its chat template, from here (--tokenizer)."""
    adapter_dir.parent.mkdir(parents=True, exist_ok=True)
    with atomic_dir(adapter_dir) as tmp:
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(tmp)
    return adapter_serve_commands(adapter_dir, _lora_config(model), dtype)


def _lora_config(model: PeftModel) -> LoraConfig:
    config = model.peft_config[model.active_adapter]
    if not isinstance(config, LoraConfig):
        raise TypeError(f"expected LoRA adapters, not {type(config).__name__}")
    return config


def _lora_summary(model: PeftModel) -> dict:
    config = _lora_config(model)
    targets = config.target_modules
    if isinstance(targets, set | list):
        # peft expands "all-linear" to every module's full name; the kinds of layer say the same, shorter.
        targets = sorted({name.rsplit(".", 1)[-1] for name in targets})
    return {
        "r": config.r,
        "alpha": config.lora_alpha,
        "target_modules": targets,
        "base_model": config.base_model_name_or_path,
    }


def _generation_config(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> GenerationConfig:
    """The model's generation config (the base model's, loaded with it), on a copy, with the tokenizer's eos
    among the stop tokens (a chat template set for training ends turns with it; vLLM and generate stop on
    these ids) and a pad id (generate warns and guesses without one)."""
    if model.generation_config is not None:
        config = copy.deepcopy(model.generation_config)
    else:
        config = GenerationConfig.from_model_config(model.config)
    eos = config.eos_token_id
    stops = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in stops:
        stops.append(tokenizer.eos_token_id)
    if stops:
        config.eos_token_id = stops[0] if len(stops) == 1 else stops
    if config.pad_token_id is None:
        config.pad_token_id = tokenizer.pad_token_id
    return config


def generate_serve_commands(out_dir: Path, dtype: str) -> dict:
    """`vllm serve` for the merged folder: the generate runner, nothing to convert. The dtype is stated
    because vLLM's `auto` downcasts float32 weights to bf16/fp16: the command serves the weights in the
    precision they were saved in."""
    model = shlex.quote(str(out_dir))
    new = {"command": f"vllm serve {model} --runner generate --dtype {dtype}"}
    old = {"command": f"vllm serve {model} --task generate --dtype {dtype}"}
    if dtype == "float32":
        for entry in (new, old):
            entry["note"] = "float32 weights served in float32; --dtype bfloat16 halves the memory"
    return {NEWEST_VLLM: new, "vllm==0.8.5": old}


def adapter_serve_commands(adapter_dir: Path, config: LoraConfig, dtype: str) -> dict:
    """`vllm serve BASE --enable-lora --lora-modules NAME=ADAPTER`: the base model with the adapter as a
    second model, NAME in requests. The tokenizer (and chat template) comes from the adapter folder."""
    base = config.base_model_name_or_path
    if not base:
        entry: dict = {"command": None, "note": "the adapter does not name its base model"}
        return {NEWEST_VLLM: entry, "vllm==0.8.5": entry}
    if config.modules_to_save:
        trained = sorted(config.modules_to_save)
        note = f"the adapter trains {trained} in full (modules_to_save), which vLLM rejects"
        entry = {"command": None, "note": note + "; serve the merged folder"}
        return {NEWEST_VLLM: entry, "vllm==0.8.5": entry}
    rank = next((r for r in VLLM_LORA_RANKS if r >= config.r), None)
    if rank is None:
        entry = {
            "command": None,
            "note": f"vLLM serves LoRA ranks up to {VLLM_LORA_RANKS[-1]}, not {config.r}",
        }
        return {NEWEST_VLLM: entry, "vllm==0.8.5": entry}
    adapter = shlex.quote(str(adapter_dir))
    name = shlex.quote(f"{adapter_name(adapter_dir)}={adapter_dir}")
    command = (
        f"vllm serve {shlex.quote(base)} --tokenizer {adapter} --enable-lora --lora-modules {name} "
        f"--max-lora-rank {rank} --dtype {dtype}"
    )
    entry = {"command": command, "note": f"requests name the model {adapter_name(adapter_dir)!r}"}
    return {NEWEST_VLLM: entry, "vllm==0.8.5": dict(entry)}


def adapter_name(adapter_dir: Path) -> str:
    """The served name of an adapter: its run's folder name (`<output_dir>/adapter` -> the output_dir's)."""
    parent = adapter_dir.parent.name
    return parent if adapter_dir.name == "adapter" and parent else adapter_dir.name


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
