"""An mg-train config (a parsed TrainJob) as LLaMA-Factory's training arguments, for one release.

Every key the user gave is translated to LLaMA-Factory's name and value, or passed on as it is when it is a
transformers TrainingArguments key (LLaMA-Factory's TrainingArguments subclass it), or refused in one line
naming it when LLaMA-Factory has nothing that does the same. The defaults mg-train uses where they differ
from LLaMA-Factory's (LoRA targets and dropout, cutoff length, gradient checkpointing off, no reporters,
the save and eval strategies, ...) are written too, so the job trains as it would natively. The data keys
(dataset, dataset_dir, eval_dataset) are added by dataset.py.
"""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from mg_lf_bridge.errors import BridgeError
from mg_lf_bridge.versions import has_argument

# The stages LLaMA-Factory trains; mg-train's other tasks (classify, embed, rerank, score, grpo) are its own.
STAGES = ("pt", "sft", "rm", "dpo", "kto", "ppo")

# mg-train's flash-attention values -> LLaMA-Factory's `flash_attn`.
FLASH_ATTN = {"eager": "disabled", "sdpa": "sdpa", "flash_attention_2": "fa2", "flash_attention_3": "fa3"}
# TRL's DPO loss names that LLaMA-Factory's `pref_loss` has (it also has kto_pair: task kto here).
PREF_LOSSES = ("sigmoid", "hinge", "ipo", "orpo", "simpo")

# Our keys with another name (and the same value) in LLaMA-Factory.
RENAMED = {
    "model_name_or_path": "model_name_or_path",
    "finetuning_type": "finetuning_type",
    "quantization_bit": "quantization_bit",
    "trust_remote_code": "trust_remote_code",
    "val_size": "val_size",
    "max_samples": "max_samples",
    "template": "template",
    "beta": "pref_beta",
    "label_smoothing": "dpo_label_smoothing",
    "simpo_gamma": "simpo_gamma",
    "pref_ftx": "pref_ftx",
    "ld_alpha": "ld_alpha",
    "desirable_weight": "kto_chosen_weight",
    "undesirable_weight": "kto_rejected_weight",
    "use_liger_kernel": "enable_liger_kernel",
}
# Translated by a function below, or set by the bridge itself.
SPECIAL = {
    "task",
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "lora_target_modules",
    "max_length",
    "attn_implementation",
    "packing",
    "train_on",
    "loss_type",
    "gradient_checkpointing",
    "train_file",
    "eval_file",
    "output_dir",
    "resume_from_checkpoint",
    "overwrite_output_dir",
    "bf16",
    "report_to",
    "warmup_steps",
}
# Keys that change nothing about what is trained: not passed on, and said so in one line.
NOT_USED = {
    "preview_samples": "LLaMA-Factory prints its own first sample",
    "eval_generate": "LLaMA-Factory evaluates the loss during training, without generating",
    "eval_max_new_tokens": "LLaMA-Factory evaluates the loss during training, without generating",
    "metrics_style": "LLaMA-Factory evaluates the loss during training, without generating",
    "remove_unused_columns": "LLaMA-Factory sets it itself",
}
# TrainingArguments whose value mg-train chooses (its defaults differ from transformers' or TRL's, or depend on
# the data): written even when not given, so LLaMA-Factory trains with the same ones.
TRAINING_DEFAULTS = (
    "learning_rate",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "logging_steps",
    "save_strategy",
    "save_total_limit",
    "eval_strategy",
    "load_best_model_at_end",
    "metric_for_best_model",
    "greater_is_better",
    "seed",
    "fp16",
)


@dataclass
class Translation:
    args: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def translate(job, version: str, where: Callable[[str], str] = lambda key: "config") -> Translation:
    """LLaMA-Factory `version`'s arguments for the mg-train job (a mg_train.config.TrainJob), without the data
    keys and output_dir (the bridge sets them). Raises BridgeError naming the first key it cannot translate."""
    from transformers import TrainingArguments

    stage = job.task
    if stage not in STAGES:
        raise BridgeError(
            f"{where('task')}: task {stage}: LLaMA-Factory has no such stage (it trains {', '.join(STAGES)}); "
            "train it natively (without --backend llamafactory)"
        )
    training_fields = {f.name for f in fields(TrainingArguments)}
    out: dict[str, Any] = {"stage": stage, "do_train": True}
    notes: list[str] = []
    unused: list[str] = []
    for key, value in job.raw.items():
        if key in SPECIAL:
            continue
        if key in NOT_USED:
            unused.append(key)
        elif key in RENAMED:
            name = RENAMED[key]
            if not has_argument(version, name):
                raise BridgeError(
                    f"{where(key)}: {key}: LLaMA-Factory {version} has no {name} (a later release has)"
                )
            out[name] = plain(value)
        elif key in training_fields:
            out[key] = plain(value)
        else:
            raise BridgeError(
                f"{where(key)}: {key}: LLaMA-Factory has no equivalent; remove it or train natively (without "
                "--backend llamafactory)"
            )
    out.update(_model(job, where))
    out.update(_method(job, stage, where))
    out.update(_training(job, training_fields))
    if unused:
        notes.append("not used on LLaMA-Factory: " + ", ".join(f"{k} ({NOT_USED[k]})" for k in unused))
    return Translation(args=out, notes=notes)


def _model(job, where) -> dict[str, Any]:
    model = job.model
    out: dict[str, Any] = {"model_name_or_path": model.model_name_or_path, "cutoff_len": model.max_length}
    if model.attn_implementation:
        if model.attn_implementation not in FLASH_ATTN:
            raise BridgeError(
                f"{where('attn_implementation')}: attn_implementation {model.attn_implementation}: LLaMA-Factory "
                f"has {', '.join(FLASH_ATTN)} only"
            )
        out["flash_attn"] = FLASH_ATTN[model.attn_implementation]
    if model.finetuning_type == "lora":
        out.update(
            finetuning_type="lora",
            lora_rank=model.lora_r,
            lora_alpha=model.lora_alpha,
            lora_dropout=model.lora_dropout,
            lora_target=lora_target(model.lora_target_modules, model.model_name_or_path, where),
        )
    else:
        out["finetuning_type"] = model.finetuning_type
    return out


def lora_target(targets, model_path: str, where) -> str:
    """LLaMA-Factory's comma list (or `all`). Not given: peft's default for the architecture, which mg-train
    uses (LLaMA-Factory's own default is every linear layer)."""
    if targets == "all-linear":
        return "all"
    if targets:
        return ",".join(targets)
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as DEFAULTS

    model_type = _model_type(model_path)
    if model_type not in DEFAULTS:
        raise BridgeError(
            f"{where('lora_target_modules')}: lora_target: peft has no default modules for model type "
            f"{model_type or '(unknown)'}; name them (e.g. lora_target: all)"
        )
    return ",".join(DEFAULTS[model_type])


def _model_type(path: str) -> str | None:
    try:
        with open(os.path.join(path, "config.json"), encoding="utf-8") as f:
            return json.load(f).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None


def _method(job, stage: str, where) -> dict[str, Any]:
    """The task's own keys: packing and the trained tokens (pt, sft), the preference loss (dpo, kto)."""
    raw, args, out = job.raw, job.train, {}
    if "packing" in raw or stage == "pt":
        packing = bool(getattr(args, "packing", False))
        out["packing"] = packing
        if stage == "sft" and packing:
            # mg-train's packing keeps samples apart: LLaMA-Factory's neat_packing (sft only there)
            out["neat_packing"] = True
    train_on = raw.get("train_on", "assistant")
    if train_on == "all":
        out["train_on_prompt"] = True
    elif train_on == "last_assistant":
        out["mask_history"] = True
    if stage in ("dpo", "kto"):
        out["pref_beta"] = args.beta
    if "loss_type" in raw:
        out.update(_loss(stage, raw["loss_type"], where))
    return out


def _loss(stage: str, value, where) -> dict[str, Any]:
    names = [value] if isinstance(value, str) else list(value)
    if stage == "kto":
        if names != ["kto"]:
            raise BridgeError(f"{where('loss_type')}: loss_type {value}: LLaMA-Factory's kto has only kto")
        return {}
    if len(names) != 1 or names[0] not in PREF_LOSSES:
        raise BridgeError(
            f"{where('loss_type')}: loss_type {value}: LLaMA-Factory's pref_loss is one of "
            f"{', '.join(PREF_LOSSES)} (or kto_pair)"
        )
    return {"pref_loss": names[0]}


def _training(job, training_fields: set[str]) -> dict[str, Any]:
    """The TrainingArguments mg-train decides (its defaults), and what it does differently from LLaMA-Factory's
    defaults: bf16 decided per machine, gradient checkpointing off, no HF reporters."""
    args, raw = job.train, job.raw
    out: dict[str, Any] = {}
    for key in TRAINING_DEFAULTS:
        if key in training_fields and key not in raw and getattr(args, key) is not None:
            out[key] = plain(getattr(args, key))
    if args.eval_strategy != "no" or "eval_strategy" in raw:
        out["per_device_eval_batch_size"] = args.per_device_eval_batch_size
    for strategy, steps in (("save_strategy", "save_steps"), ("eval_strategy", "eval_steps")):
        if plain(getattr(args, strategy)) == "steps" and steps not in raw:
            out[steps] = getattr(args, steps)
    warmup = raw.get("warmup_steps")
    if isinstance(warmup, float) and 0 < warmup < 1:
        # transformers 5 reads warmup_steps < 1 as a fraction; the transformers 4 of LLaMA-Factory <= 0.9.4
        # wants an integer there, and every release reads warmup_ratio (LLaMA-Factory's examples use it)
        out["warmup_ratio"] = warmup
    elif warmup is not None:
        out["warmup_steps"] = warmup
    out["bf16"] = bool(args.bf16)
    out["report_to"] = plain(raw.get("report_to", "none"))
    if not args.gradient_checkpointing:
        out["disable_gradient_checkpointing"] = True
    return out


def plain(value: Any) -> Any:
    """A value as YAML writes it (transformers turns some strings into enums)."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    return value
